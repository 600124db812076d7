/**
 * Boots a Linux guest under qemu-system-x86_64 with software emulation (TCG: this machine's
 * nested KVM cannot run a paging kernel) and reads its serial console until a marker appears,
 * the guest stops, or time runs out.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { MARKER_DONE } from './initramfs.js';
import { ensureDebianKernel } from './kernel.js';

export class GuestBootError extends HvmptError {
  /** Everything the guest printed before the failure. */
  readonly output: string;
  constructor(message: string, output: string) {
    super(message, { input: 'linux guest', at: 'serial console' });
    this.output = output;
  }
}

export interface BootOptions {
  /** A bzImage; default: Debian's kernel from the cache (fetched on first use). */
  readonly kernel?: string;
  /** The initrd: bytes (from buildInitrd) or a file. */
  readonly initrd: Uint8Array | string;
  /** Kernel parameters after the harness's own (console=ttyS0 panic=-1 loglevel=3); later ones win in Linux. */
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
  /** More QEMU arguments: devices, -virtfs, -netdev… */
  readonly qemuArgs?: readonly string[];
  /** Stop reading at this text or pattern; default the harness's `@@hvmpt-done` line. */
  readonly marker?: string | RegExp;
  /** Default 120 s: software emulation on a busy 2-core machine is slow. */
  readonly timeoutMs?: number;
  /** Hears every piece of console output as it arrives (progress, live logs). */
  readonly onOutput?: (text: string) => void;
  readonly qemu?: string;
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

function parseSections(output: string): Map<string, GuestSection> {
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

/** Boots, waits for the marker, and returns what the guest printed; QEMU is always stopped. */
export async function bootGuest(options: BootOptions): Promise<GuestRun> {
  const kernel = options.kernel ?? ensureDebianKernel((m) => process.stderr.write(`hvmpt guest: ${m}\n`)).vmlinuz;
  const marker = options.marker ?? new RegExp(`^${MARKER_DONE} rc=\\d+$`, 'm');
  const timeoutMs = options.timeoutMs ?? 120_000;
  const started = Date.now();
  const qemu = options.qemu ?? 'qemu-system-x86_64';
  const append = ['console=ttyS0', 'panic=-1', 'loglevel=3', ...(options.append ?? [])].join(' ');
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-guest-'));
  let output = '';
  try {
    const initrd = typeof options.initrd === 'string' ? options.initrd : join(dir, 'initrd.cpio');
    if (typeof options.initrd !== 'string') writeFileSync(initrd, options.initrd);
    const media =
      options.via === 'grub'
        ? ['-cdrom', grubIso(dir, kernel, initrd, append), '-boot', 'd']
        : ['-kernel', kernel, '-initrd', initrd, '-append', append];
    const args = [
      '-machine', options.machine ?? 'pc',
      '-accel', 'tcg',
      '-m', options.memory ?? '512M',
      '-smp', String(options.cpus ?? 1),
      '-nodefaults', '-no-reboot', '-display', 'none',
      '-serial', 'stdio',
      ...media,
      ...(options.qemuArgs ?? []),
    ];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        if (err) reject(err);
        else resolve();
      };
      const seen = (): boolean => (typeof marker === 'string' ? output.includes(marker) : marker.test(output));
      const timer = setTimeout(() => {
        finish(new GuestBootError(`no ${String(marker)} within ${timeoutMs / 1000} s; the console ended with:\n${tail(output) || '(nothing)'}`, output));
      }, timeoutMs);
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
      child.on('error', (err) => finish(new GuestBootError(`cannot run ${qemu}: ${err.message} (Debian package qemu-system-x86)`, output)));
      child.on('close', (code, signal) => {
        if (seen()) return finish();
        finish(
          new GuestBootError(
            `${qemu} stopped (${signal ?? `exit ${code}`}) before ${String(marker)}` +
              (stderr.trim() !== '' ? `; it said: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : '') +
              `; the console ended with:\n${tail(output) || '(nothing)'}`,
            output,
          ),
        );
      });
    });
  } finally {
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
