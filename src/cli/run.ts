import { createConnection, type Socket } from 'node:net';
import type { Command } from 'commander';
import { HvmptError, InputError, IoError, UsageError } from '../errors.js';
import { MAX_TIMEOUT_S } from '../plan/machine.js';
import { closePluginSockets, preparePlan } from '../plugin/load.js';
import type { PolicyChange } from '../plugin/api.js';
import { openPassthrough, type OpenedPassthrough } from '../host/backends/open.js';
import { claimIdentityRanges, type IdentityClaim } from '../host/mem/identity-host.js';
import { resolvePlatformInputs } from '../host/plan/inputs.js';
import { loadSys } from '../native/index.js';
import { IommuFaultWatch } from '../host/iommu-faults.js';
import { sysfsName } from '../hw/pci/host-function.js';
import type { Plan } from '../plan/schema.js';
import { composeMachine, type ComposedMachine } from '../platform/compose.js';
import { startMachine, type RunningMachine, type RunResult } from '../vmm/runner.js';
import { readdirSync } from 'node:fs';
import { CONTROL_VERBS, ControlRequestError, controlPath, openControlSocket, type ControlServer } from './control-socket.js';
import { ControlRefusal, HotplugHost } from './hotplug-host.js';
import { VERSION } from './version.js';
import type { PlatformInputs } from '../platform/inputs.js';
import { renderReport } from '../report/html.js';
import { runRecordSchema } from '../report/run-record.js';
import { writeReport } from './report.js';
import { kvmRoute } from './lab.js';
import { openLogFile, OutputFile, type LogFile } from './out-file.js';
import { setExitStatus } from './output.js';
import { runPlanInLab } from './run-lab.js';
import type { StopReason } from '../vmm/vcpu-loop.js';

/** The guest did not end the way a finished guest does (power-off or halt). */
export class GuestRunError extends HvmptError {}

interface RunOptions {
  lab: boolean;
  control?: string;
  serial?: string;
  timeout?: string;
  firmwareLog?: string;
  report?: string;
  reportHtml?: string;
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
    .option('--control <unix:PATH|none>', 'the control socket `hvmpt ctl` speaks to (status, devices, attach, detach, stop; docs/hotplug.md); default unix:$XDG_RUNTIME_DIR/hvmpt-PID.sock (or under the temporary directory), printed at start')
    .option('--report-html <FILE>', 'write the platform and what the run recorded as one HTML page (what hvmpt report --run shows)')
    .option(
      '--no-lab',
      'where /dev/kvm is missing or cannot run the plan (a Linux plan on a KVM that cannot page), fail instead of running the plan ' +
        'in a lab host (hvmpt lab); HVMPT_KVM=lab forces the lab, HVMPT_KVM=direct forbids it',
    )
    .action(async (planFile: string, opts: RunOptions) => {
      for (const [option, value] of [['--serial', opts.serial], ['--firmware-log', opts.firmwareLog], ['--report', opts.report]] as const) {
        if (value === '') throw new UsageError("'' names no file", { input: option });
      }
      // Policies first (they change the plan as written), then the device plug-ins' modules.
      const prepared = await preparePlan(planFile);
      const plan = prepared.plan;
      for (const c of prepared.changes) process.stderr.write(`hvmpt: policy ${c.policy}: ${c.action} ${c.target}: ${c.why}\n`);
      const timeoutS = opts.timeout === undefined ? plan.machine.timeout : Number(opts.timeout);
      // Checked now, so a bad --control is a usage error before anything runs.
      controlPath(opts.control);
      if (timeoutS !== undefined && !(timeoutS > 0 && timeoutS <= MAX_TIMEOUT_S)) {
        throw new UsageError(`'${opts.timeout}' is not a positive number of seconds up to ${MAX_TIMEOUT_S} (24 days, the longest a timer runs)`, { input: '--timeout' });
      }
      const inputs = resolvePlatformInputs(plan, planFile, { plugins: prepared.plugins });
      // Claimed before anything runs, so a report path that cannot be written fails now; the
      // report takes its place only once it is whole.
      const report = opts.report === undefined ? undefined : OutputFile.claim(opts.report, 'the run report');
      try {
        const route = opts.lab ? kvmRoute(plan.machine.boot.kind === 'linux' || plan.machine.boot.kind === 'probe') : { lab: false as const };
        if (route.lab) {
          // Composed here even though a lab host will run the plan, so a bad plan fails before a lab boots.
          composeMachine(plan, inputs);
          if ((plan.pci?.passthrough ?? []).length > 0) {
            throw new InputError(`${route.why}, and a lab host does not have this machine's devices to pass through: run the plan on a host whose /dev/kvm works, or inside \`hvmpt lab\` with the lab's devices`);
          }
          if (opts.control !== undefined && opts.control !== 'none') {
            throw new UsageError(`${route.why}: the plan would run in a lab host, where a control socket is out of reach; run where /dev/kvm works (HVMPT_KVM=direct), or inside \`hvmpt lab\``, { input: '--control' });
          }
          return setExitStatus(await runPlanInLab(planFile, plan, opts, report, route.why));
        }
        // Identity RAM: the live host checked and the range locked before any device is opened.
        const identityComposed = plan.memory.layout === 'identity' ? composeMachine(plan, inputs) : undefined;
        const claim = identityComposed?.config.identityRam !== undefined ? claimIdentity(identityComposed) : undefined;
        if (claim === undefined && (plan.pci?.passthrough ?? []).some((e) => e.backend === 'uio')) {
          process.stderr.write("hvmpt: warning: backend uio in an ordinary layout: the device's DMA reaches host-physical addresses, not this guest's RAM (use memory.layout: identity)\n");
        }
        // Passthrough devices are checked and opened before anything else happens; they are
        // reset and released whatever way the run ends (the kernel releases them if hvmpt dies).
        let devices: OpenedPassthrough;
        try {
          devices = openPassthrough(loadSys(), plan, inputs);
        } catch (err) {
          claim?.release();
          throw err;
        }
        // vfio-user servers are connected for the run (the vCPU thread drives them over these sockets).
        const connected = (plan.pci?.plugins ?? []).some((p) => 'socket' in p) ? (await preparePlugins(planFile)) : undefined;
        try {
          const runInputs = connected === undefined ? devices.inputs : { ...devices.inputs, plugins: connected };
          await runComposed(plan, planFile, runInputs, composeMachine(plan, runInputs), opts, report, timeoutS, devices, prepared.changes);
        } finally {
          if (connected !== undefined) closePluginSockets(connected);
          devices.close();
          claim?.release();
        }
      } finally {
        report?.abandon();
      }
    });
}

/**
 * Identity layouts: the live host must have the carve and no other guest may hold it. Said once:
 * without an IOMMU nothing confines the device's DMA.
 */
function claimIdentity(composed: ComposedMachine): IdentityClaim {
  const identity = composed.identity!;
  const ranges = identity.guests[0]!.identity;
  const claim = claimIdentityRanges(ranges, identity.kernelParams);
  process.stderr.write(
    `hvmpt: warning: identity layout: the guest's RAM is the host's own ${ranges.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`).join(', ')} (through /dev/mem); ` +
      'without an IOMMU a passed-through device can DMA anywhere in the host\'s memory, whatever the guest programs it to do: the protection map covers CPU accesses only (docs/memory.md)\n',
  );
  return claim;
}

/** The plan's plug-ins again, this time with the vfio-user connections kept for the run. */
async function preparePlugins(planFile: string): Promise<Awaited<ReturnType<typeof preparePlan>>['plugins']> {
  return (await preparePlan(planFile, { connect: true })).plugins;
}

async function runComposed(
  plan: Plan, planFile: string, inputs: PlatformInputs, composed: ComposedMachine, opts: RunOptions, report: OutputFile | undefined, timeoutS: number | undefined,
  devices: OpenedPassthrough, policies: readonly PolicyChange[],
): Promise<void> {
  for (const line of composed.summary) process.stderr.write(`hvmpt: ${line}\n`);
  const firmwareLogFile = opts.firmwareLog ?? plan.machine.firmwareLog;
  const firmwareLog = firmwareLogFile === undefined ? undefined : openLogFile(firmwareLogFile, 'the firmware log');
  const serial = await openSerial(opts.serial ?? plan.machine.serial);
  const deadline = timeoutS === undefined ? undefined : Date.now() + timeoutS * 1000;
  // A passed-through device's DMA outside the guest's memory is stopped by the IOMMU; the host kernel logs it.
  const ptNames = new Map((devices.inputs.passthrough ?? []).map((p, i) => [sysfsName(p.host.address), plan.pci?.passthrough?.[i]?.name ?? `pt${i}`]));
  const faults = new IommuFaultWatch(
    loadSys(),
    new Set(ptNames.keys()),
    (f) => process.stderr.write(`hvmpt: ${ptNames.get(f.device)} (${f.device}): IOMMU fault: DMA ${f.access} at 0x${f.address.toString(16)} blocked${f.reason === '' ? '' : ` (${f.reason})`}; the guest goes on\n`),
    (why) => process.stderr.write(`hvmpt: note: ${why}\n`),
  );
  let result: RunResult;
  let boots = 0;
  let current: RunningMachine | undefined;
  const note = (text: string): void => void process.stderr.write(`hvmpt: ${text}\n`);
  const hotplug = new HotplugHost({ plan, sys: loadSys(), inputs, uses: composed.devices, machine: () => current, note });
  const control = await startControl(opts.control, planFile, hotplug, () => current);
  try {
    for (;;) {
      boots++;
      const running = startMachine(composed.config, {
        onSerial: (b) => serial.write(b),
        onDebug: (b) => firmwareLog?.write(b),
        onNote: (text) => process.stderr.write(`hvmpt: ${text}\n`),
        onFault: (f) => process.stderr.write(`hvmpt: device ${f.device} failed (contained, the guest goes on): ${f.message}\n`),
        onControlEvent: (e) => {
          control?.event('DEVICE_REMOVED', e.removal);
          hotplug.removed(e.removal);
        },
        timeoutMs: deadline === undefined ? undefined : Math.max(1, deadline - Date.now()),
      });
      current = running;
      const interrupt = (): void => running.stop('interrupted');
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      for (const sig of signals) process.once(sig, interrupt);
      serial.onInput((b) => running.sendSerial(b));
      try {
        result = await running.done;
        // The vCPU thread lets go of the devices (interrupts, DMA, mappings) before they are reset or released here.
        await running.closed;
      } finally {
        current = undefined;
        // Hot-plugged devices went with the machine: their fds close, and each goes back to its host driver.
        hotplug.closeAll();
        for (const sig of signals) process.removeListener(sig, interrupt);
      }
      if (result.reason.kind === 'reset' && plan.machine.onReset === 'restart') {
        const reset = devices.resetAll();
        process.stderr.write(`hvmpt: guest reset (${result.reason.source}); booting again${reset.length > 0 ? ` (reset ${reset.join(', ')})` : ''}\n`);
        continue;
      }
      break;
    }
    faults.close();
  } finally {
    await control?.close();
  }
  // A log that failed to write does not keep the report from being written.
  const closed = await Promise.allSettled([serial.close(), firmwareLog?.close()]);
  const record = { reason: result.reason, boots, wallMs: result.wallMs, devices: composed.devices, policies, ...result.report, iommuFaults: faults.faults.map((f) => ({ ...f, address: `0x${f.address.toString(16)}` })) };
  report?.commit(encodeJson(record));
  if (opts.reportHtml !== undefined) {
    // Through the same schema a saved report is read with: the page shows what --report would hold.
    writeReport(opts.reportHtml, renderReport({ plan, planFile, composed, inputs, run: runRecordSchema.parse(JSON.parse(JSON.stringify(record))) }));
  }
  const r = result.report;
  const actions = new Map<string, number>();
  for (const m of r.barMappings) if (m.action !== 'unmapped') actions.set(m.action, (actions.get(m.action) ?? 0) + 1);
  if (actions.size > 0) process.stderr.write(`hvmpt: BAR mappings: ${[...actions].map(([a, n]) => `${n} ${a}`).join(', ')} (details in --report)\n`);
  process.stderr.write(
    `hvmpt: ${describe(result.reason)} after ${(result.wallMs / 1000).toFixed(1)} s, ${r.exits} exits; ` +
      `${r.unclaimed.length} unclaimed port/address kinds, ${r.deviceFaults.length} device faults, ${r.fwCfgRefusals.length} fw_cfg refusals\n`,
  );
  for (const c of closed) if (c.status === 'rejected') throw c.reason;
  if (result.reason.kind !== 'poweroff' && result.reason.kind !== 'halt') {
    throw new GuestRunError(describe(result.reason), { input: planFile });
  }
}

/** The control socket for the run, or none (`--control none`); its path is printed at start. */
async function startControl(spec: string | undefined, planFile: string, hotplug: HotplugHost, machine: () => RunningMachine | undefined): Promise<ControlServer | undefined> {
  const path = controlPath(spec);
  if (path === undefined) return undefined;
  const server = await openControlSocket(path, { version: VERSION, plan: planFile, pid: process.pid, verbs: CONTROL_VERBS }, async (verb, args) => {
    switch (verb) {
      case 'status': {
        const status = await hotplug.status();
        // The monitor's own fds: a leak shows here (every attach opens a container, a group and a device).
        return { ...status, fds: readdirSync('/proc/self/fd').length, attached: hotplug.heldDevices() };
      }
      case 'devices':
        return { devices: await hotplug.devices() };
      case 'attach':
        if (args['entry'] === undefined) throw new ControlRequestError('attach: arguments.entry: the pci.passthrough entry (an object, or JSON/YAML text)');
        return hotplug.attach(args['entry']);
      case 'detach': {
        const device = args['device'];
        const force = args['force-after'];
        if (typeof device !== 'string' || device === '') throw new ControlRequestError('detach: arguments.device: the device name or guest address');
        if (force !== undefined && (typeof force !== 'number' || !(force >= 0 && force <= 3600))) throw new ControlRequestError('detach: arguments.force-after: seconds from 0 to 3600');
        return hotplug.detach(device, force);
      }
      case 'stop': {
        const m = machine();
        if (m === undefined) throw new ControlRefusal('the machine is not running');
        m.stop('stopped through the control socket');
        return { stopping: true };
      }
    }
  });
  process.stderr.write(`hvmpt: control socket: unix:${server.path} (hvmpt ctl unix:${server.path} status)\n`);
  return server;
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
      return `guest triple-faulted (KVM shutdown exit)${reason.state === undefined ? '' : `; ${reason.state}`}`;
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
  const file: LogFile = openLogFile(target, 'the serial output');
  return { write: (b) => file.write(b), onInput: () => {}, close: () => file.close() };
}

function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
}
