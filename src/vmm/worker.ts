/**
 * The boot vCPU's thread: builds the machine (every device model lives here) and runs the boot
 * vCPU's loop with device dispatch in this thread, serving the other vCPUs' device exits too.
 * It talks to the main thread only through shared rings (guest output), the shared control
 * words, and a handful of messages (started, fault, done, failed). Started with its machine,
 * or ahead of it (runner.ts prestartVcpuThread), in which case a 'start' message brings it.
 */
import { HvmptError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { SIGUSR2 } from '../native/sys.js';
import { ByteRing } from './byte-ring.js';
import { Machine, type LoadedDevicePlugins } from './machine.js';
import { importPlugin, validateOptions } from '../plugin/modules.js';
import type { PluginAttachment } from '../platform/plugins.js';
import { runVcpu } from './vcpu-loop.js';
import { serveVcpuThread } from './vcpu-thread.js';
import type { WorkerInput, WorkerMessage } from './worker-protocol.js';
import type { ControlMessage, ControlRequest } from './control-protocol.js';
import { receiveMessageOnPort } from 'node:worker_threads';

/**
 * Device plug-ins are loaded here, in the thread that runs them, by the module URL the main
 * thread resolved: their handlers are closures of this thread, never copies. Options are
 * validated again by the plug-in's own schema (the main thread already reported any problem).
 */
async function loadPlugins(attachments: readonly PluginAttachment[]): Promise<LoadedDevicePlugins> {
  const loaded = new Map<string, { definition: Awaited<ReturnType<typeof importPlugin<'device'>>>; options: unknown }>();
  for (const a of attachments) {
    const definition = await importPlugin(a.module, a.export, 'device');
    const o = await validateOptions(definition.options, a.options, `${a.path}.options`);
    if ('problems' in o) throw new HvmptError(o.problems.map((p) => `${p.path}: ${p.message}`).join('; '), { input: a.module });
    loaded.set(a.name, { definition, options: o.value });
  }
  return loaded;
}

serveVcpuThread<WorkerInput, WorkerMessage>('start', async (input, post) => {
  const sys = loadSys();
  const plugins = await loadPlugins(input.config.pci?.plugins ?? []);
  const requests = input.requests;
  const machine = new Machine(
    sys,
    input.config,
    {
      serial: new ByteRing(input.serial),
      debug: new ByteRing(input.debug),
      serialIn: new ByteRing(input.serialIn),
      note: (text) => post({ type: 'note', text }),
      removed: (removal) => requests?.postMessage({ event: 'removed', removal } satisfies ControlMessage),
    },
    new Int32Array(input.control),
    plugins,
  );
  if (requests !== undefined) {
    // Requests are read between exits, whenever the main thread kicks this vCPU (it does after each one).
    const pull = machine.control.onKick;
    machine.control.onKick = () => {
      pull();
      for (let m = receiveMessageOnPort(requests); m !== undefined; m = receiveMessageOnPort(requests)) {
        const r = m.message as ControlRequest;
        let reply: ControlMessage;
        try {
          reply = { id: r.id, ok: true, result: machine.serveControl(r) };
        } catch (err) {
          // A request that fails leaves the guest running: a bug in it is reported, not fatal.
          reply = { id: r.id, ok: false, error: err instanceof HvmptError ? err.message : `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` };
        }
        requests.postMessage(reply);
      }
    };
  }
  machine.ledger.onFault = (f) => post({ type: 'fault', fault: f });
  // Before the main thread learns this thread's id and can kick it.
  machine.vcpu.armKick(SIGUSR2);
  const apFds = machine.vcpus.slice(1).map((v) => v.fd);
  post({ type: 'started', thread: sys.threadSelf(), vcpuFd: machine.vcpu.fd, runSize: machine.kvm.vcpuMmapSize, apFds });
  const reason = runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control, machine.watchdog());
  post({ type: 'done', reason, report: machine.report() });
  return () => {
    machine.close();
    requests?.close();
  };
});
