import { createConnection } from 'node:net';
import type { Command } from 'commander';
import { IoError, UsageError } from '../errors.js';
import { readInputText } from '../plan/input.js';
import { CONTROL_VERBS, controlPath } from './control-socket.js';
import { setExitStatus } from './output.js';

interface CtlOptions {
  forceAfter?: string;
  timeout?: string;
}

/** One request on a control socket: the greeting read, the request sent, the reply with its id read back. */
export function controlRequest(path: string, execute: string, args: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.setEncoding('utf8');
    let buffer = '';
    let greeted = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new IoError(`no reply to ${execute} within ${timeoutMs / 1000} s`, { input: path }));
    }, timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new IoError(`cannot reach the control socket: ${err.code ?? err.message}`, { input: path }));
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (!greeted && 'hvmpt' in msg) {
          greeted = true;
          socket.write(JSON.stringify({ execute, arguments: args, id: 1 }) + '\n');
          continue;
        }
        if (msg['id'] === 1 || ('error' in msg && !('event' in msg))) {
          clearTimeout(timer);
          socket.end();
          resolve(msg);
          return;
        }
      }
    });
    socket.once('end', () => {
      clearTimeout(timer);
      reject(new IoError(`the control socket closed before replying to ${execute}`, { input: path }));
    });
  });
}

export function registerCtl(program: Command): void {
  program
    .command('ctl')
    .description(
      'speak to a running machine through its control socket (hvmpt run --control): status (exits, memory slots, irqfds, fds), ' +
        'devices (the bus as the guest has it), attach ENTRY (a pci.passthrough entry as JSON or YAML, or @FILE: checked, bound to vfio-pci ' +
        "(backend: uio: uio_pci_generic, in an identity layout) and hot-plugged; the guest's acpiphp brings it up), detach NAME|BDF [--force-after S] (the guest is asked to eject it, then it is " +
        'reset, closed and given back to its host driver), stop. Prints the reply as one JSON object; exits 1 when it is an error.',
    )
    .summary('control a running machine: status, devices, attach, detach, stop (docs/hotplug.md)')
    .argument('<socket>', 'unix:PATH or PATH (the path hvmpt run printed)')
    .argument('<verb>', 'status | devices | attach | detach | stop')
    .argument('[arg]', 'attach: the entry (JSON, YAML, or @FILE); detach: the device name or guest address')
    .option('--force-after <seconds>', 'detach: take the device back after this long if the guest has not ejected it')
    .option('--timeout <seconds>', 'how long to wait for the reply (default: 600)')
    .action(async (socketSpec: string, verb: string, arg: string | undefined, opts: CtlOptions) => {
      if (!(CONTROL_VERBS as readonly string[]).includes(verb)) throw new UsageError(`'${verb}' is not a verb (${CONTROL_VERBS.join(', ')})`, { input: 'ctl' });
      const path = socketSpec.startsWith('unix:') ? controlPath(socketSpec)! : socketSpec;
      const args: Record<string, unknown> = {};
      if (verb === 'attach') {
        if (arg === undefined) throw new UsageError('attach needs the entry: JSON, YAML, or @FILE', { input: 'attach' });
        args['entry'] = arg.startsWith('@') ? readInputText(arg.slice(1), 'plan') : arg;
      } else if (verb === 'detach') {
        if (arg === undefined) throw new UsageError('detach needs a device name or guest address', { input: 'detach' });
        args['device'] = arg;
      } else if (arg !== undefined) throw new UsageError(`${verb} takes no argument`, { input: verb });
      if (opts.forceAfter !== undefined) {
        const s = Number(opts.forceAfter);
        if (verb !== 'detach') throw new UsageError('only detach takes it', { input: '--force-after' });
        if (!(s >= 0 && s <= 3600)) throw new UsageError(`'${opts.forceAfter}' is not a number of seconds from 0 to 3600`, { input: '--force-after' });
        args['force-after'] = s;
      }
      const timeoutS = opts.timeout === undefined ? 600 : Number(opts.timeout);
      if (!(timeoutS > 0 && timeoutS <= 86400)) throw new UsageError(`'${opts.timeout}' is not a positive number of seconds`, { input: '--timeout' });
      const reply = await controlRequest(path, verb, args, timeoutS * 1000);
      process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
      if ('error' in reply) setExitStatus(1);
    });
}
