import { createWriteStream, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import type { Command } from 'commander';
import { HvmptError, IoError, UsageError } from '../errors.js';
import { loadPlan } from '../plan/schema.js';
import { composeMachine } from '../vmm/compose.js';
import { startMachine, type RunResult } from '../vmm/runner.js';
import type { StopReason } from '../vmm/vcpu-loop.js';

/** The guest did not end the way a finished guest does (power-off or halt). */
export class GuestRunError extends HvmptError {}

interface RunOptions {
  serial?: string;
  timeout?: string;
  firmwareLog?: string;
  report?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      "boot a plan on hvmpt's own KVM monitor: SeaBIOS on the composed platform (PCI bus, E820, ACPI tables over fw_cfg), " +
        "then the plan's boot target, with the guest's serial port on stdout (or a file or socket); a summary and the " +
        'refused accesses go to stderr. Exits 0 when the guest powers off or halts, 1 when it resets, crashes or runs past --timeout.',
    )
    .summary("boot a plan on hvmpt's own KVM monitor (SeaBIOS, then the plan's boot target)")
    .argument('<plan>', 'the plan (YAML or JSON): memory, pci and machine sections (see docs/vmm.md and examples/desktop.yaml)')
    .option('--serial <stdout|FILE|unix:PATH|tcp:HOST:PORT>', "where the guest's COM1 goes (overrides machine.serial); a socket also carries input to the guest")
    .option('--timeout <seconds>', 'stop the guest after this long (overrides machine.timeout)')
    .option('--firmware-log <FILE>', "write the firmware's port-0x402 log (SeaBIOS's debug output) here")
    .option('--report <FILE>', 'write the run report (why it ended, exits, refused accesses, device faults) as JSON')
    .action(async (planFile: string, opts: RunOptions) => {
      const plan = loadPlan(planFile);
      const timeoutS = opts.timeout === undefined ? plan.machine.timeout : Number(opts.timeout);
      if (timeoutS !== undefined && !(timeoutS > 0)) throw new UsageError(`--timeout '${opts.timeout}' is not a positive number of seconds`);
      const composed = composeMachine(plan, planFile);
      for (const line of composed.summary) process.stderr.write(`hvmpt: ${line}\n`);
      const serial = await openSerial(opts.serial ?? plan.machine.serial);
      const firmwareLogFile = opts.firmwareLog ?? plan.machine.firmwareLog;
      const firmwareLog = firmwareLogFile === undefined ? undefined : createWriteStream(firmwareLogFile);
      const deadline = timeoutS === undefined ? undefined : Date.now() + timeoutS * 1000;
      let result: RunResult;
      let boots = 0;
      for (;;) {
        boots++;
        const running = startMachine(composed.config, {
          onSerial: (b) => serial.write(b),
          onDebug: (b) => firmwareLog?.write(b),
          onFault: (f) => process.stderr.write(`hvmpt: device ${f.device} failed (contained, the guest goes on): ${f.message}\n`),
          timeoutMs: deadline === undefined ? undefined : Math.max(1, deadline - Date.now()),
        });
        const interrupt = (): void => running.stop('interrupted');
        process.once('SIGINT', interrupt);
        serial.onInput((b) => running.sendSerial(b));
        try {
          result = await running.done;
        } finally {
          process.removeListener('SIGINT', interrupt);
        }
        if (result.reason.kind === 'reset' && plan.machine.onReset === 'restart') {
          process.stderr.write(`hvmpt: guest reset (${result.reason.source}); booting again\n`);
          continue;
        }
        break;
      }
      await serial.close();
      if (firmwareLog !== undefined) await new Promise((r) => firmwareLog.end(r));
      if (opts.report !== undefined) writeFileSync(opts.report, JSON.stringify({ reason: result.reason, boots, wallMs: result.wallMs, devices: composed.devices, ...result.report }, null, 2) + '\n');
      const r = result.report;
      const actions = new Map<string, number>();
      for (const m of r.barMappings) if (m.action !== 'unmapped') actions.set(m.action, (actions.get(m.action) ?? 0) + 1);
      if (actions.size > 0) process.stderr.write(`hvmpt: BAR mappings: ${[...actions].map(([a, n]) => `${n} ${a}`).join(', ')} (details in --report)\n`);
      process.stderr.write(
        `hvmpt: ${describe(result.reason)} after ${(result.wallMs / 1000).toFixed(1)} s, ${r.exits} exits; ` +
          `${r.unclaimed.length} unclaimed port/address kinds, ${r.deviceFaults.length} device faults, ${r.fwCfgRefusals.length} fw_cfg refusals\n`,
      );
      if (result.reason.kind !== 'poweroff' && result.reason.kind !== 'halt') {
        throw new GuestRunError(describe(result.reason), { input: planFile });
      }
    });
}

function describe(reason: StopReason): string {
  switch (reason.kind) {
    case 'poweroff':
      return `guest powered off (${reason.source})`;
    case 'halt':
      return 'guest halted with interrupts off';
    case 'reset':
      return `guest reset (${reason.source})`;
    case 'debug-exit':
      return `guest wrote isa-debug-exit (status ${reason.code})`;
    case 'stopped':
      return `guest stopped: ${reason.why}`;
    case 'triple-fault':
      return 'guest triple-faulted (KVM shutdown exit)';
    case 'error':
      return `monitor error: ${reason.message}`;
  }
}

/** Where COM1 goes: stdout, a file, or a socket (unix:PATH, tcp:HOST:PORT) that also feeds input. */
interface SerialSink {
  write(bytes: Uint8Array): void;
  onInput(listener: (bytes: Uint8Array) => void): void;
  close(): Promise<void>;
}

async function openSerial(target: string): Promise<SerialSink> {
  if (target === 'stdout') {
    // Typed or piped input goes to the guest's console. A terminal stays in its normal (line)
    // mode, so Ctrl-C still stops the run; its newlines become the carriage returns a firmware
    // console expects.
    const stdin = process.stdin;
    let listener: ((bytes: Uint8Array) => void) | undefined;
    const onData = (d: Buffer): void => {
      const bytes = stdin.isTTY === true ? Buffer.from(d.toString('latin1').replace(/\n/g, '\r'), 'latin1') : d;
      listener?.(new Uint8Array(bytes));
    };
    stdin.on('data', onData);
    stdin.on('error', () => {});
    return {
      write: (b) => void process.stdout.write(b),
      onInput: (l) => {
        listener = l;
      },
      close: async () => {
        stdin.off('data', onData);
        stdin.pause();
        stdin.destroy();
      },
    };
  }
  const sock = /^unix:(.+)$/.exec(target);
  const tcp = /^tcp:(?:(.+):)?(\d+)$/.exec(target);
  if (sock !== null || tcp !== null) {
    const socket: Socket = await new Promise((resolve, reject) => {
      const s = sock !== null ? createConnection(sock[1]!) : createConnection(Number(tcp![2]), tcp![1] ?? '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', (err: NodeJS.ErrnoException) => reject(new IoError(`cannot connect the serial port: ${err.code ?? err.message}`, { input: target })));
    });
    socket.on('error', () => {});
    return {
      write: (b) => void socket.write(b),
      onInput: (listener) => {
        socket.removeAllListeners('data');
        socket.on('data', (d: Buffer) => listener(new Uint8Array(d)));
      },
      close: () => new Promise((r) => socket.end(r)),
    };
  }
  const file = createWriteStream(target);
  await new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', (err: NodeJS.ErrnoException) => reject(new IoError(`cannot write the serial output: ${err.code ?? err.message}`, { input: target })));
  });
  return { write: (b) => void file.write(b), onInput: () => {}, close: () => new Promise((r) => file.end(r)) };
}
