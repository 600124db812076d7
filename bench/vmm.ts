import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asm, microBios } from '../src/vmm/guest/asm.js';
import { microConfig } from '../src/vmm/guest/micro.js';
import { buildGrubImage, GRUB_END_MARK } from '../src/host/firmware/grub.js';
import { firmwarePath } from '../src/host/firmware/locate.js';
import { runMachine } from '../src/vmm/runner.js';

/**
 * `npm run bench -- vmm [--iterations N] [--repeat R] [--boots B] [--only exit|boot]`
 *
 * Bench 1, config-space exit round trip: one micro guest (a 64 KiB BIOS image looping
 * "out 0xCF8, eax; in eax, 0xCFC", then writing isa-debug-exit) run by hvmpt, by
 * `qemu-system-x86_64 -accel kvm -bios` and by a bare C KVM_RUN loop (bench/c/kvm_exit.c,
 * compiled here with cc). Each is run at two loop counts and the per-exit time is the
 * difference divided by the difference in exits, which cancels start-up and VM creation.
 *
 * Bench 2, start to GRUB's last line: `hvmpt run` on a plan with Debian's SeaBIOS and the GRUB
 * report image, against `qemu-system-x86_64 -accel kvm -bios bios-256k.bin -kernel grub.img`
 * with the same RAM and no devices beyond the i440FX defaults, both as fresh processes, timed
 * from spawn to the end mark on the serial port.
 *
 * Bench 3, memory: each process's resident set when GRUB's last line appears, less the
 * resident part of the memory backing the guest (see residentKb); and the private anonymous
 * part of that, which leaves out file pages (the node or qemu binary, shared libraries).
 */
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '..', '..');

function loopImage(iterations: number): Uint8Array {
  const a = new Asm(16);
  a.movImm('ecx', iterations, 4).label('top');
  a.movImm('edx', 0xcf8, 2).movImm('eax', 0x8000_0000, 4).outDx(4);
  a.movImm('edx', 0xcfc, 2).inDx(4);
  a.decEcx().jnz('top');
  a.movImm('edx', 0xf4, 2).movImm('eax', 0, 1).outDx(1).cli().hlt();
  return microBios(a.bytes());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function hvmptNs(image: Uint8Array): Promise<number> {
  const config = { ...microConfig(new Uint8Array(0)), firmware: { name: 'bench-loop', image } };
  const r = await runMachine(config, { timeoutMs: 600_000 });
  if (r.reason.kind !== 'debug-exit') throw new Error(`hvmpt run ended with ${JSON.stringify(r.reason)}`);
  return r.report.vcpuNs;
}

function qemuNs(file: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('qemu-system-x86_64', ['-accel', 'kvm', '-machine', 'pc', '-m', '16', '-bios', file, '-display', 'none', '-nodefaults', '-no-reboot', '-device', 'isa-debug-exit,iobase=0xf4,iosize=1'], { encoding: 'utf8' });
  const ns = Number(process.hrtime.bigint() - t0);
  if (r.status !== 1) throw new Error(`qemu exited ${r.status}: ${r.stderr}`);
  return ns;
}

function cNs(binary: string, file: string): number {
  const r = spawnSync(binary, [file], { encoding: 'utf8' });
  const m = /exits (\d+) ns (\d+)/.exec(r.stdout);
  if (r.status !== 0 || m === null) throw new Error(`kvm_exit failed: ${r.stderr}`);
  return Number(m[2]);
}

function arg(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

async function exitBench(args: readonly string[]): Promise<void> {
  const n2 = arg(args, '--iterations', 100_000);
  const n1 = Math.max(1, Math.floor(n2 / 10));
  const repeat = arg(args, '--repeat', 7);
  const exitsDelta = 2 * (n2 - n1);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-'));
  try {
    const small = join(dir, 'small.bin');
    const large = join(dir, 'large.bin');
    const imgSmall = loopImage(n1);
    const imgLarge = loopImage(n2);
    writeFileSync(small, imgSmall);
    writeFileSync(large, imgLarge);
    const binary = join(dir, 'kvm_exit');
    const cc = spawnSync('cc', ['-O2', '-o', binary, join(REPO, 'bench', 'c', 'kvm_exit.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);

    // The three are interleaved round by round, so load from other work on the machine falls
    // on all of them alike. Each figure is the best round: interference from other work only
    // ever adds time, so the minimum is the steadiest estimate of what an exit costs.
    const samples = { hv: [] as number[], qe: [] as number[], c: [] as number[] };
    const us = (a: number, b: number): number => (b - a) / exitsDelta / 1000;
    for (let i = 0; i < repeat; i++) {
      samples.hv.push(us(await hvmptNs(imgSmall), await hvmptNs(imgLarge)));
      samples.qe.push(us(qemuNs(small), qemuNs(large)));
      samples.c.push(us(cNs(binary, small), cNs(binary, large)));
    }
    const hv = Math.min(...samples.hv);
    const qe = Math.min(...samples.qe);
    const c = Math.min(...samples.c);
    const out = [
      `exits_per_run: ${2 * n2 + 1}`,
      `exit_us_hvmpt: ${hv.toFixed(3)}`,
      `exit_us_qemu: ${qe.toFixed(3)}`,
      `exit_us_c: ${c.toFixed(3)}`,
      `ratio_hvmpt_over_qemu: ${(hv / qe).toFixed(3)}`,
      `ratio_hvmpt_over_c: ${(hv / c).toFixed(3)}`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BOOT_RAM_MIB = 256;

/**
 * Resident kB of a process, and of the memory it backs the guest with, from /proc/PID/smaps.
 * Guest memory is every anonymous mapping advised for huge pages (VmFlags `hg`): QEMU advises
 * each RAM block (RAM, BIOS, option ROMs) and hvmpt each mapping it hands KVM, and neither
 * advises anything else. What is left is the monitor's own cost.
 */
function residentKb(pid: number): { total: number; guest: number; anonymous: number } {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  let total = 0;
  let guest = 0;
  let anonymousTotal = 0;
  let rss = 0;
  let anonymous = false;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head !== null) {
      anonymous = head[1] === '';
      rss = 0;
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r !== null) {
      rss = Number(r[1]);
      total += rss;
      continue;
    }
    // Anonymous pages of any mapping: unnamed ones, [heap], [stack], written private file pages.
    const a = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (a !== null) {
      anonymousTotal += Number(a[1]);
      continue;
    }
    if (line.startsWith('VmFlags:') && anonymous && / hg\b/.test(line)) guest += rss;
  }
  return { total, guest, anonymous: anonymousTotal };
}

interface BootSample {
  readonly seconds: number;
  /** Resident beyond guest memory: all of it, and the private anonymous part (no file pages). */
  readonly extraKb: number;
  readonly extraAnonKb: number;
}

function timeToMark(command: string, argv: readonly string[]): Promise<BootSample> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, [...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command}: no "${GRUB_END_MARK}" within 300 s; stderr: ${err}`));
    }, 300_000);
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (done || !out.includes(GRUB_END_MARK)) return;
      done = true;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const mem = residentKb(child.pid!);
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolvePromise({ seconds, extraKb: mem.total - mem.guest, extraAnonKb: mem.anonymous - mem.guest });
    });
    child.on('exit', (code) => {
      if (done) return;
      clearTimeout(timer);
      reject(new Error(`${command} exited ${code} before GRUB's last line; stderr: ${err}`));
    });
  });
}

async function bootBench(args: readonly string[]): Promise<void> {
  const boots = arg(args, '--boots', 3);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-boot-bench-'));
  try {
    const grub = join(dir, 'grub.img');
    writeFileSync(grub, buildGrubImage());
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: ${BOOT_RAM_MIB}M }\nmachine:\n  boot: { kind: grub-report }\n`);
    const cli = join(REPO, 'dist', 'src', 'cli', 'bin.js');
    const qemuArgs = ['-accel', 'kvm', '-machine', 'pc', '-m', String(BOOT_RAM_MIB), '-bios', firmwarePath('seabios'), '-kernel', grub, '-display', 'none', '-nodefaults', '-serial', 'stdio', '-no-reboot'];
    const hv: BootSample[] = [];
    const qe: BootSample[] = [];
    for (let i = 0; i < boots; i++) {
      hv.push(await timeToMark(process.execPath, [cli, 'run', plan]));
      qe.push(await timeToMark('qemu-system-x86_64', qemuArgs));
    }
    const bs = median(hv.map((s) => s.seconds));
    const bq = median(qe.map((s) => s.seconds));
    const mh = median(hv.map((s) => s.extraKb)) / 1024;
    const mq = median(qe.map((s) => s.extraKb)) / 1024;
    const ah = median(hv.map((s) => s.extraAnonKb)) / 1024;
    const aq = median(qe.map((s) => s.extraAnonKb)) / 1024;
    process.stdout.write(
      [
        `boot_s_hvmpt: ${bs.toFixed(2)}`,
        `boot_s_qemu: ${bq.toFixed(2)}`,
        `ratio_boot_hvmpt_over_qemu: ${(bs / bq).toFixed(3)}`,
        `rss_beyond_guest_mib_hvmpt: ${mh.toFixed(1)}`,
        `rss_beyond_guest_mib_qemu: ${mq.toFixed(1)}`,
        `ratio_rss_hvmpt_over_qemu: ${(mh / mq).toFixed(3)}`,
        `anon_beyond_guest_mib_hvmpt: ${ah.toFixed(1)}`,
        `anon_beyond_guest_mib_qemu: ${aq.toFixed(1)}`,
        `ratio_anon_hvmpt_over_qemu: ${(ah / aq).toFixed(3)}`,
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(args: readonly string[]): Promise<void> {
  const i = args.indexOf('--only');
  const only = i >= 0 ? args[i + 1] : undefined;
  if (only === undefined || only === 'exit') await exitBench(args);
  if (only === undefined || only === 'boot') await bootBench(args);
}
