/**
 * Boots a Linux guest under qemu-system-x86_64 (software emulation by default: this machine's
 * nested KVM cannot run a paging kernel) and reads its serial console until a marker appears,
 * the guest stops, or time runs out.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { MARKER_DONE } from './initramfs.js';
import { acquireGuestSlot } from './slots.js';
import { ensureDebianKernel } from './kernel.js';

export class GuestBootError extends HvmptError {
  /** Everything the guest printed before the failure. */
  readonly output: string;
  /**
   * What went wrong: QEMU could not start, QEMU stopped first, time ran out, the guest fell
   * asleep for good (a TCG QEMU that used no CPU for ASLEEP_MS), or the boot media could not be made.
   */
  readonly failure: 'spawn' | 'stopped' | 'timeout' | 'asleep' | 'setup';
  /** QEMU's last stderr lines, when it stopped. */
  readonly qemuSaid: string;
  /** How QEMU ended, when it stopped: `exit N` or the signal's name. */
  readonly qemuEnded: string;
  constructor(message: string, output: string, failure: GuestBootError['failure'] = 'setup', qemuSaid = '', qemuEnded = '') {
    super(message, { input: 'linux guest', at: 'serial console' });
    this.output = output;
    this.failure = failure;
    this.qemuSaid = qemuSaid;
    this.qemuEnded = qemuEnded;
  }
}

export interface BootOptions {
  /** A bzImage; default: Debian's kernel from the cache (fetched on first use). */
  readonly kernel?: string;
  /** The initrd: bytes (from buildInitrd) or a file (not used with `commandLine`). */
  readonly initrd?: Uint8Array | string;
  /** Kernel parameters after the harness's own (HARNESS_APPEND); later ones win in Linux. */
  readonly append?: readonly string[];
  /**
   * How the kernel gets loaded. `direct` (default): QEMU loads it and passes `append` as is.
   * `grub`: SeaBIOS boots a GRUB rescue CD (grub-mkrescue, Debian grub-pc-bin and xorriso)
   * whose grub.cfg `linux` line holds `append` verbatim, so GRUB's quoting rules apply to it
   * (write `\$` for a literal dollar, as in any grub.cfg). About 5 s slower.
   */
  readonly via?: 'direct' | 'grub';
  /** QEMU -m; default 512M. */
  readonly memory?: string;
  /** QEMU -machine; default pc (i440FX). q35 for PCIe and intel-iommu. */
  readonly machine?: string;
  readonly cpus?: number;
  /** QEMU -accel: tcg (default) or kvm, where /dev/kvm can run a paging guest. */
  readonly accel?: 'tcg' | 'kvm';
  /** QEMU -cpu; default QEMU's own for the accelerator. */
  readonly cpu?: string;
  /**
   * More serial ports after the console (COM2, COM3, …), each raw: every byte the guest
   * sends reaches its listener, and all of it has arrived when bootGuest returns.
   */
  readonly serialPorts?: ReadonlyArray<(bytes: Uint8Array) => void>;
  /** Stops the guest at once; bootGuest then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** More QEMU arguments: devices, -virtfs, -netdev… */
  readonly qemuArgs?: readonly string[];
  /** Stop reading at this text or pattern; default the harness's `@@hvmpt-done` line. */
  readonly marker?: string | RegExp;
  /** Default 300 s: software emulation on a 2-core machine that other work shares can be very slow (a hang net, not a budget). Infinity: no limit. */
  readonly timeoutMs?: number;
  /** Under TCG, how long QEMU may use no CPU before the guest counts as asleep for good (ASLEEP_MS). */
  readonly asleepMs?: number;
  /** Hears every piece of console output as it arrives (progress, live logs). */
  readonly onOutput?: (text: string) => void;
  /** Hears when QEMU is about to start, after any wait for a guest slot (which no boot timer should count). */
  readonly onStart?: () => void;
  readonly qemu?: string;
  /**
   * A whole QEMU command line to run as it is (an export's, say): the harness adds nothing,
   * and kernel, initrd, append, via, memory, machine, cpus and qemuArgs are not used. The
   * console must be on stdio (`-serial stdio`).
   */
  readonly commandLine?: readonly string[];
}

export interface GuestSection {
  readonly output: string;
  readonly rc: number;
}

export interface GuestRun {
  /** The serial console, carriage returns removed. */
  readonly output: string;
  /** Output of each `section NAME cmd` the script ran. */
  readonly sections: ReadonlyMap<string, GuestSection>;
  /** The script's exit status from the done marker, when the default init ran. */
  readonly rc: number | undefined;
  readonly durationMs: number;
  /** The output of one section; throws, showing the console's end, when the guest never ran it. */
  section(name: string): string;
}

const TAIL_LINES = 25;

function tail(text: string): string {
  return text.trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
}

/** The `section NAME cmd` outputs in a console: what ran between `@@hvmpt-begin NAME` and `@@hvmpt-end NAME rc=N`. */
export function parseSections(output: string): Map<string, GuestSection> {
  const sections = new Map<string, GuestSection>();
  const re = /^@@hvmpt-begin (\S+)\n([\s\S]*?)^@@hvmpt-end \1 rc=(\d+)$/gm;
  for (const m of output.matchAll(re)) sections.set(m[1]!, { output: m[2]!, rc: Number(m[3]) });
  return sections;
}

/** A GRUB rescue CD holding the kernel, the initrd and a grub.cfg that boots them with `cmdline` on the serial console. */
function grubIso(dir: string, kernel: string, initrd: string, cmdline: string): string {
  const tree = join(dir, 'iso');
  mkdirSync(join(tree, 'boot', 'grub'), { recursive: true });
  copyFileSync(kernel, join(tree, 'boot', 'vmlinuz'));
  copyFileSync(initrd, join(tree, 'boot', 'initrd'));
  writeFileSync(
    join(tree, 'boot', 'grub', 'grub.cfg'),
    ['set timeout=0', 'serial --unit=0 --speed=115200', 'terminal_input serial', 'terminal_output serial',
      'menuentry "hvmpt guest" {', `  linux /boot/vmlinuz ${cmdline}`, '  initrd /boot/initrd', '}', ''].join('\n'),
  );
  const iso = join(dir, 'guest.iso');
  const r = spawnSync('grub-mkrescue', ['-o', iso, tree], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new GuestBootError(
      `grub-mkrescue failed (Debian packages grub-pc-bin, grub-common, xorriso): ${r.error?.message ?? r.stderr.trim().split('\n').slice(-2).join(' / ')}`,
      '',
    );
  }
  return iso;
}

/** A listening unix socket for one extra serial port; QEMU connects to it as it starts. */
interface PortListener {
  readonly path: string;
  readonly server: Server;
  /** Resolves when QEMU's connection has closed (after its last byte), or at once if none came. */
  ended(): Promise<void>;
}

async function listenForPort(path: string, listener: (bytes: Uint8Array) => void): Promise<PortListener> {
  let socket: Socket | undefined;
  let closed: Promise<void> | undefined;
  const server = createServer((s) => {
    socket = s;
    closed = new Promise((resolve) => s.once('close', () => resolve()));
    s.on('data', (d: Buffer) => listener(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    server,
    ended: () => (socket === undefined ? Promise.resolve() : closed!),
  };
}

/**
 * The harness's own kernel parameters. no_timer_check: on a loaded machine TCG can miss the
 * window of Linux's IO-APIC timer check, which then panics ("IO-APIC + timer doesn't work").
 */
export const HARNESS_APPEND = ['console=ttyS0', 'panic=-1', 'loglevel=3', 'no_timer_check'] as const;

/**
 * A TCG guest whose QEMU used no CPU for this long has lost its timer interrupt and sleeps for
 * good (docs/lab.md, Limits): an idle Linux under TCG still wakes many times a second.
 */
export const ASLEEP_MS = 90_000;
/** The words every asleep failure carries, which `npm test` looks for to run a file once more. */
export const ASLEEP_WORDS = 'the guest fell asleep for good';

/**
 * The CPU time a process's threads have had, in ns (/proc/PID/task/TID/schedstat: exact, where
 * /proc/PID/stat's clock ticks can miss a QEMU that wakes briefly now and then), or undefined
 * once it is gone.
 */
function cpuNs(pid: number): bigint | undefined {
  try {
    let sum = 0n;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        sum += BigInt(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? '0');
      } catch {
        // A thread that ended between the listing and the read.
      }
    }
    return sum;
  } catch {
    return undefined;
  }
}

/** How long to wait, after QEMU is stopped, for the last bytes already on their way. */
const DRAIN_MS = 5_000;

/** Whether `command` would run: a path that is executable, or a name found on PATH. */
function runnable(command: string): boolean {
  const candidates = command.includes('/') ? [command] : (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, command));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Boots, waits for the marker, and returns what the guest printed; QEMU is always stopped. */
export async function bootGuest(options: BootOptions): Promise<GuestRun> {
  const kernel = options.commandLine !== undefined ? '' : (options.kernel ?? ensureDebianKernel((m) => process.stderr.write(`hvmpt guest: ${m}\n`)).vmlinuz);
  const marker = options.marker ?? new RegExp(`^${MARKER_DONE} rc=\\d+$`, 'm');
  const timeoutMs = options.timeoutMs ?? 300_000;
  const qemu = options.qemu ?? 'qemu-system-x86_64';
  // Checked before a slot is waited for: a machine without QEMU fails at once, not after the queue.
  if (!runnable(qemu)) throw new GuestBootError(`cannot run ${qemu}: spawn ${qemu} ENOENT (Debian package qemu-system-x86)`, '', 'spawn');
  // One software-emulated guest per core machine-wide; the time waiting for a slot is not the guest's.
  const release = await acquireGuestSlot((n) => process.stderr.write(`hvmpt guest: waiting for one of ${n} guest slots (other QEMU guests are running on this machine)\n`), undefined, options.signal);
  const started = Date.now();
  options.onStart?.();
  const append = [...HARNESS_APPEND, ...(options.append ?? [])].join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-guest-'));
  const ports: PortListener[] = [];
  let output = '';
  try {
    const harnessArgs = async (given: Uint8Array | string | undefined): Promise<string[]> => {
      if (given === undefined) throw new GuestBootError('bootGuest needs an initrd (or a whole commandLine)', '');
      const initrd = typeof given === 'string' ? given : join(dir, 'initrd.cpio');
      if (typeof given !== 'string') writeFileSync(initrd, given);
      const media = options.via === 'grub' ? ['-cdrom', grubIso(dir, kernel, initrd, append), '-boot', 'd'] : ['-kernel', kernel, '-initrd', initrd, '-append', append];
      const portArgs: string[] = [];
      for (const [i, listener] of (options.serialPorts ?? []).entries()) {
        const port = await listenForPort(join(dir, `com${i + 2}.sock`), listener);
        ports.push(port);
        portArgs.push('-chardev', `socket,id=com${i + 2},path=${port.path}`, '-serial', `chardev:com${i + 2}`);
      }
      return [
        '-machine', options.machine ?? 'pc',
        '-accel', options.accel ?? 'tcg',
        ...(options.cpu === undefined ? [] : ['-cpu', options.cpu]),
        '-m', options.memory ?? '512M',
        '-smp', String(options.cpus ?? 1),
        '-nodefaults', '-no-reboot', '-display', 'none',
        '-serial', 'stdio',
        ...portArgs,
        ...media,
        ...(options.qemuArgs ?? []),
      ];
    };
    const args = options.commandLine ?? (await harnessArgs(options.initrd));
    await new Promise<void>((resolve, reject) => {
      const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const childClosed = new Promise<void>((r) => child.once('close', () => r()));
      let stderr = '';
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(asleep);
        options.signal?.removeEventListener('abort', onAbort);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        // Whatever QEMU wrote before it stopped is still in the pipes and sockets: read it all.
        const drained = Promise.all([child.pid === undefined ? Promise.resolve() : childClosed, ...ports.map((p) => p.ended())]);
        void Promise.race([drained, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]).then(() => (err === undefined ? resolve() : reject(err)));
      };
      const seen = (): boolean => (typeof marker === 'string' ? output.includes(marker) : marker.test(output));
      const onAbort = (): void => finish(options.signal?.reason ?? new GuestBootError('stopped', output));
      const timer =
        timeoutMs === Infinity
          ? undefined
          : setTimeout(() => {
              finish(new GuestBootError(`no ${String(marker)} within ${timeoutMs / 1000} s; the console ended with:\n${tail(output) || '(nothing)'}`, output, 'timeout'));
            }, timeoutMs);
      // Only a TCG QEMU's CPU time says the guest sleeps: a KVM guest's idle is the host's.
      const accelAt = args.indexOf('-accel');
      const tcg = accelAt >= 0 && (args[accelAt + 1] ?? '').startsWith('tcg');
      const asleepMs = options.asleepMs ?? ASLEEP_MS;
      let ran: bigint | undefined;
      let ranSince = Date.now();
      const asleep =
        tcg && child.pid !== undefined
          ? setInterval(() => {
              const now = cpuNs(child.pid!);
              if (now === undefined) return;
              if (now !== ran) [ran, ranSince] = [now, Date.now()];
              else if (Date.now() - ranSince >= asleepMs) {
                finish(new GuestBootError(`${ASLEEP_WORDS}: its QEMU (TCG) used no CPU for ${asleepMs / 1000} s, the sign of a kernel that lost its timer interrupt (docs/lab.md, Limits); the console ended with:\n${tail(output) || '(nothing)'}`, output, 'asleep'));
              }
            }, Math.min(5_000, asleepMs / 4))
          : undefined;
      if (options.signal?.aborted === true) return onAbort();
      options.signal?.addEventListener('abort', onAbort);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        const text = chunk.replace(/\r/g, '');
        output += text;
        options.onOutput?.(text);
        if (seen()) finish();
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderr += chunk;
      });
      child.on('error', (err) => finish(new GuestBootError(`cannot run ${qemu}: ${err.message} (Debian package qemu-system-x86)`, output, 'spawn')));
      child.on('close', (code, signal) => {
        if (seen()) return finish();
        const said = stderr.trim().split('\n').slice(-3).join(' / ');
        const ended = signal ?? `exit ${code}`;
        finish(
          new GuestBootError(
            `${qemu} stopped (${ended}) before ${String(marker)}` +
              (said !== '' ? `; it said: ${said}` : '') +
              `; the console ended with:\n${tail(output) || '(nothing)'}`,
            output,
            'stopped',
            said,
            ended,
          ),
        );
      });
    });
  } finally {
    release();
    for (const p of ports) p.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const sections = parseSections(output);
  const rc = /^@@hvmpt-done rc=(\d+)$/m.exec(output);
  return {
    output,
    sections,
    rc: rc === null ? undefined : Number(rc[1]),
    durationMs: Date.now() - started,
    section(name: string): string {
      const s = sections.get(name);
      if (s === undefined) throw new GuestBootError(`the guest printed no section '${name}'; the console ended with:\n${tail(output)}`, output);
      return s.output;
    },
  };
}
