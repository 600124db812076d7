/**
 * The lab: a disposable host machine under QEMU — q35, the IOMMU and devices asked for,
 * Debian's kernel with kvm, vfio, uio and the virtio modules — that shares this machine's root
 * read-only and runs one command in it, at the caller's directory, with its output streamed
 * back. hvmpt's monitor, the pass-through back-ends and the tests that need a working
 * /dev/kvm run there on machines whose own /dev/kvm cannot run a paging guest.
 */
import { bootGuest, GuestBootError } from '../guest/boot.js';
import { buildInitrd } from '../guest/initramfs.js';
import { ensureDebianKernel, type DebianKernel } from '../guest/kernel.js';
import type { LabAccel } from './accel.js';
import { planLabDevices, type LabDevice, type LabIommu } from './devices.js';
import { chooseLabQemu, type LabQemu } from './qemu.js';
import { LabBootError, LabDeviceError, LabError, LabTimeoutError } from './errors.js';
import { commandFile, envFile, LAB_CMD_FILE, LAB_ENV_FILE, LAB_MARK, labScript } from './script.js';

/** Modules the lab host loads (with their dependencies); the kvm one for the other vendor fails, as it should. */
export const LAB_MODULES = [
  'kvm_amd', 'kvm_intel', 'vfio', 'vfio_pci', 'vfio_iommu_type1', 'uio_pci_generic',
  'virtio_pci', '9p', '9pnet_virtio', 'overlay', 'e1000e', 'nvme', 'virtio_blk', 'virtio_net',
] as const;

/**
 * Variables not passed into the lab: the lab decision itself (a lab never starts another),
 * node's test-runner channel, which means nothing across the lab's serial ports, and node's extra
 * CA file, which every node reads and parses at start (about 1 s a process in a TCG lab host)
 * and which has no use in a lab with no network beyond its hub.
 */
const NOT_PASSED: ReadonlySet<string> = new Set(['HVMPT_KVM', 'NODE_TEST_CONTEXT', 'NODE_EXTRA_CA_CERTS']);

export const LAB_DEFAULTS = { memory: '2G', cpus: 1, iommu: 'none' as LabIommu, bootTimeoutS: 300 };

export interface LabOptions {
  /** One argument: a shell command line. Several: an argument vector, each quoted. */
  readonly command: readonly string[];
  readonly accel: LabAccel;
  readonly iommu?: LabIommu;
  /** `--device` specs (see devices.ts). */
  readonly devices?: readonly string[];
  /** QEMU -m for the lab host; default 2G. */
  readonly memory?: string;
  readonly cpus?: number;
  /** Kernel parameters for the lab host (memmap=… carves, for example). */
  readonly append?: readonly string[];
  /** Seconds the command may run once the lab host is up; default no limit. */
  readonly timeoutS?: number;
  /** Seconds the lab host may take to come up; default 300. */
  readonly bootTimeoutS?: number;
  /**
   * A wall-clock time (ms since the epoch) past which the lab is stopped, whatever it is doing:
   * waiting for a guest slot, booting, or running the command. For a caller with a limit of its
   * own (a test file's), which timeoutS alone cannot keep: the wait for a slot comes before it.
   */
  readonly deadlineMs?: number;
  /**
   * Directories of this machine the command may write to, shared read-write at their own path
   * (each must exist); everything else of this machine stays read-only.
   */
  readonly writable?: readonly string[];
  /** Where the command runs; default this process's directory. */
  readonly cwd?: string;
  /** The command's environment; default this process's. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdout?: (bytes: Uint8Array) => void;
  readonly stderr?: (bytes: Uint8Array) => void;
  /** Hears the lab's own lines (accelerator, device addresses, warnings). */
  readonly log?: (line: string) => void;
  readonly kernel?: DebianKernel;
  /** The QEMU binary, run with no extra data directories; default chooseLabQemu's (qemu.ts). */
  readonly qemu?: string;
}

export interface PlacedDevice extends LabDevice {
  /** Where the lab host's sysfs found it, e.g. 0000:01:00.0. */
  readonly address: string;
  /** vendor:device as sysfs shows it. */
  readonly found: string;
}

export interface LabRun {
  /** The command's exit status. */
  readonly status: number;
  readonly devices: readonly PlacedDevice[];
  readonly accel: LabAccel;
  /** From starting QEMU to the command's start. */
  readonly bootMs: number;
  readonly commandMs: number;
  /** The lab host's console (kernel messages, the lab's markers). */
  readonly console: string;
}

function iommuSetup(iommu: LabIommu, accel: LabAccel): { machine: string; qemuArgs: string[]; append: string[] } {
  // Interrupt remapping under KVM needs the IOAPIC in QEMU (split irqchip); TCG has no in-kernel one.
  const machine = accel.kind === 'kvm' && iommu !== 'none' ? 'q35,kernel-irqchip=split' : 'q35';
  switch (iommu) {
    case 'intel':
      return { machine, qemuArgs: ['-device', 'intel-iommu,intremap=on'], append: ['intel_iommu=on'] };
    case 'amd':
      // Linux enables AMD-Vi whenever QEMU's IVRS table is there (amd_iommu=on is no option of its).
      return { machine, qemuArgs: ['-device', 'amd-iommu'], append: [] };
    case 'none':
      return { machine, qemuArgs: [], append: [] };
  }
}

const lines = (text: string, mark: string): string[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith(mark + ' ') || l === mark)
    .map((l) => l.slice(mark.length + 1));

/** The first line of a report by the lab kernel about itself: an oops, a panic, a lockup, a stall. */
const KERNEL_REPORT = /\] (BUG: |Oops|Kernel panic|general protection fault|watchdog: |rcu: INFO|INFO: task |corrupted stack|stack guard page)/;

/**
 * The console's last 25 lines; where those are the middle of a kernel report (a stack trace),
 * the report's first lines before them, which say what it is.
 */
export function consoleTail(text: string): string {
  const all = text.trimEnd().split('\n');
  const tail = all.slice(-25);
  let start = all.findLastIndex((l, i) => i < all.length - 25 && KERNEL_REPORT.test(l));
  if (start < 0 || tail.some((l) => KERNEL_REPORT.test(l))) return tail.join('\n');
  // A report's heading may take several such lines ("BUG: ...", then "stack guard page: ...").
  while (start > 0 && KERNEL_REPORT.test(all[start - 1]!)) start--;
  return [...all.slice(start, Math.min(start + 4, all.length - 25)), '...', ...tail].join('\n');
}

/**
 * QEMU runs the lab host with -no-reboot, so a clean exit with nothing on stderr means the lab
 * host reset itself: a reboot, or a triple fault, which leaves no panic line on the console.
 */
export function howQemuEnded(ended: string): string {
  if (ended === 'exit 0') return 'QEMU exit 0: the lab host reset itself, a reboot or a triple fault (QEMU runs it with -no-reboot)';
  return ended === '' ? 'QEMU ended' : `QEMU ${ended}`;
}

/** A panic resets the lab host too (panic=-1), and its console then says why itself. */
const PANIC = /Kernel panic - not syncing/;

/** The harness's failure, said in the lab's terms. */
function labBootError(err: GuestBootError, up: boolean): LabBootError {
  const when = up ? 'while the command ran' : 'before it came up';
  const tail = err.output.trim() === '' ? '' : `; its console ended with:\n${consoleTail(err.output)}`;
  switch (err.failure) {
    case 'spawn':
      return new LabBootError(`${err.detail}; scripts/setup.sh installs it`, err.output);
    case 'stopped': {
      if (err.qemuSaid !== '') return new LabBootError(`QEMU stopped ${up ? 'while the command ran' : 'before the lab host came up'}: ${err.qemuSaid}${tail}`, err.output);
      const how = PANIC.test(err.output) ? '' : ` (${howQemuEnded(err.qemuEnded)})`;
      return new LabBootError(`the lab host stopped ${when}${how}${tail}`, err.output);
    }
    default:
      return new LabBootError(`the lab host failed ${when}: ${err.detail}`, err.output);
  }
}

/** Boots the lab, runs the command, streams its output; resolves with its exit status. */
export async function runLab(options: LabOptions): Promise<LabRun> {
  const iommu = options.iommu ?? LAB_DEFAULTS.iommu;
  const cwd = options.cwd ?? process.cwd();
  const log = options.log ?? ((line: string) => void process.stderr.write(`hvmpt lab: ${line}\n`));
  if (options.command.length === 0) throw new LabDeviceError('no command to run', { input: 'hvmpt lab' });
  const layout = planLabDevices(options.devices ?? [], { iommu, cwd, writable: options.writable ?? [] });
  const kernel = options.kernel ?? ensureDebianKernel((m) => log(m));
  const setup = iommuSetup(iommu, options.accel);
  const initrd = buildInitrd({
    script: labScript(layout),
    kernel,
    modules: [...LAB_MODULES],
    files: [
      { path: LAB_ENV_FILE, data: envFile(options.env ?? process.env, NOT_PASSED) },
      { path: LAB_CMD_FILE, data: commandFile(cwd, options.command) },
    ],
  });
  log(options.accel.why);
  const qemu: LabQemu =
    options.qemu !== undefined ? { binary: options.qemu, args: [], why: `QEMU: ${options.qemu} (given)` } : chooseLabQemu({ accel: options.accel, iommu, override: process.env['HVMPT_LAB_QEMU'] });
  log(qemu.why);

  const abort = new AbortController();
  const bootTimeoutS = options.bootTimeoutS ?? LAB_DEFAULTS.bootTimeoutS;
  let started = Date.now();
  let upAt: number | undefined;
  let console_ = '';
  let commandTimer: NodeJS.Timeout | undefined;
  let bootTimer: NodeJS.Timeout | undefined;
  const placed: PlacedDevice[] = [];
  // The boot's time starts with QEMU's, not with the wait for a guest slot before it.
  const onStart = (): void => {
    started = Date.now();
    bootTimer = setTimeout(
      () => abort.abort(new LabBootError(`the lab host did not come up within ${bootTimeoutS} s; its console ended with:\n${consoleTail(console_)}`, console_)),
      bootTimeoutS * 1000,
    );
  };

  const cameUp = (): void => {
    clearTimeout(bootTimer);
    upAt = Date.now();
    const found = new Map(lines(console_, LAB_MARK.device).map((l) => {
      const [index, bdf, vendor, device] = l.split(' ');
      return [Number(index), { bdf: bdf!, id: `${vendor?.replace(/^0x/, '')}:${device?.replace(/^0x/, '')}` }] as const;
    }));
    for (const d of layout.devices) {
      const f = found.get(d.index);
      const where = { input: '--device', at: `#${d.index} '${d.spec}'` };
      const chain = d.chain.map((c) => `${c.slot.toString(16).padStart(2, '0')}.${c.fn}`).join(' → ');
      if (f === undefined || f.bdf === '-') {
        return abort.abort(new LabDeviceError(`the lab host's sysfs shows no device at slot path ${chain}`, where));
      }
      if (!d.ids.includes(f.id)) {
        return abort.abort(new LabDeviceError(`the lab host's sysfs shows ${f.id} at ${f.bdf}, not ${d.ids.join(' or ')}`, where));
      }
      placed.push({ ...d, address: f.bdf, found: f.id });
      log(`device #${d.index} ${d.model} at ${f.bdf} (${f.id}, id ${d.id})`);
    }
    for (const w of lines(console_, LAB_MARK.warn)) log(`warning: ${w}`);
    const failed = lines(console_, '@@hvmpt-insmod-failed');
    const kvmModules = ['kvm_amd', 'kvm_intel'];
    const others = failed.filter((m) => !kvmModules.includes(m));
    if (others.length > 0) log(`warning: modules that did not load: ${others.join(', ')}`);
    if (lines(console_, LAB_MARK.kvm)[0] !== 'yes') log(`warning: the lab host has no /dev/kvm (${failed.filter((m) => kvmModules.includes(m)).join(' and ')} did not load)`);
    if (options.timeoutS !== undefined) {
      const s = options.timeoutS;
      commandTimer = setTimeout(() => abort.abort(new LabTimeoutError(`the command ran past ${s} s`, { input: '--timeout' })), s * 1000);
    }
  };

  let pending = '';
  const onConsole = (text: string): void => {
    console_ += text;
    if (upAt !== undefined || abort.signal.aborted) return;
    pending += text;
    const complete = pending.lastIndexOf('\n');
    if (complete < 0) return;
    const seen = pending.slice(0, complete);
    pending = pending.slice(complete + 1);
    const fail = lines(seen, LAB_MARK.fail)[0];
    if (fail !== undefined) abort.abort(new LabBootError(`the lab host could not set up: ${fail}; its console ended with:\n${consoleTail(console_)}`, console_));
    else if (lines(seen, LAB_MARK.up).length > 0) cameUp();
  };

  const write = (sink: NodeJS.WriteStream) => (b: Uint8Array) => void sink.write(b);
  // Stopped from outside, the lab host goes too (QEMU is this process's child, not its group's).
  // Its console goes with the error: a caller that stops a lab host that stalled (npm test) wants
  // the lab kernel's last words (RCU stalls, soft lockups, hung tasks).
  const onSignal = (signal: NodeJS.Signals): void => {
    const tail = console_.trim() === '' ? '' : `; its console ended with:\n${consoleTail(console_)}`;
    abort.abort(new LabError(`stopped by ${signal}${tail}`, { input: 'hvmpt lab' }));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const deadline = options.deadlineMs;
  const deadlineTimer =
    deadline === undefined
      ? undefined
      : setTimeout(() => {
          const where = upAt === undefined ? 'before the command started' : `after the command ran ${Math.round((Date.now() - upAt) / 1000)} s`;
          const tail = console_.trim() === '' ? '' : `; its console ended with:\n${consoleTail(console_)}`;
          abort.abort(new LabTimeoutError(`the lab reached its deadline ${where}${tail}`, { input: 'deadlineMs', at: new Date(deadline).toISOString() }));
        }, Math.max(0, deadline - Date.now()));
  try {
    const run = await bootGuest({
      kernel: kernel.vmlinuz,
      initrd,
      machine: setup.machine,
      accel: options.accel.kind,
      cpu: options.accel.cpu,
      memory: options.memory ?? LAB_DEFAULTS.memory,
      cpus: options.cpus ?? LAB_DEFAULTS.cpus,
      append: [...setup.append, ...(options.append ?? [])],
      qemuArgs: [...qemu.args, ...setup.qemuArgs, ...layout.qemuArgs],
      serialPorts: [options.stdout ?? write(process.stdout), options.stderr ?? write(process.stderr)],
      timeoutMs: Infinity,
      signal: abort.signal,
      onOutput: onConsole,
      onStart,
      qemu: qemu.binary,
    });
    if (run.rc === undefined || upAt === undefined) throw new LabBootError(`the lab host stopped without running the command; its console ended with:\n${consoleTail(run.output)}`, run.output);
    return { status: run.rc, devices: placed, accel: options.accel, bootMs: upAt - started, commandMs: Date.now() - upAt, console: run.output };
  } catch (err) {
    if (err instanceof GuestBootError) throw labBootError(err, upAt !== undefined);
    throw err;
  } finally {
    clearTimeout(bootTimer);
    clearTimeout(commandTimer);
    clearTimeout(deadlineTimer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
