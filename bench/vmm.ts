import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asm, microBios } from '../tools/guest/asm.js';
import { configLoop, microConfig, smpLoopImage } from '../tools/guest/micro.js';
import { buildGrubImage, GRUB_END_MARK } from '../src/host/firmware/grub.js';
import { firmwarePath } from '../src/host/firmware/locate.js';
import { hvmptEntry } from '../src/host/package-root.js';
import { runMachine } from '../src/vmm/runner.js';
import { kvmRoute, labAccel } from '../src/cli/lab.js';
import { compileCli } from '../src/cli/code-cache.js';
import { median } from './stats.js';

/**
 * `npm run bench -- vmm [--iterations N] [--repeat R] [--boots B] [--only exit|smp|boot|start]`
 *
 * Where this machine's /dev/kvm cannot run guests (or HVMPT_KVM=lab), the whole benchmark runs
 * in a lab host (`hvmpt lab`, docs/lab.md) and its first line says so: the figures are then the
 * lab's, and each ratio compares hvmpt with QEMU-KVM and the C loop run in that same lab host.
 *
 * Bench 1, config-space exit round trip: one micro guest (a 64 KiB BIOS image looping
 * "out 0xCF8, eax; in eax, 0xCFC", then writing isa-debug-exit) run by hvmpt, by
 * `qemu-system-x86_64 -accel kvm -bios` and by a bare C KVM_RUN loop (bench/c/kvm_exit.c,
 * compiled here with cc). Each is run at two loop counts and the per-exit time is the
 * difference divided by the difference in exits, which cancels start-up and VM creation.
 *
 * Bench 1b, the same round trip with two vCPUs (real mode, the second woken by INIT/SIPI
 * through the x2APIC MSRs): once made by the boot vCPU while the other sits halted, and once
 * made by the other vCPU while the boot one sits halted — hvmpt's device models all live in
 * the boot vCPU's thread, so this one's exits are handed over (shared words, a kick, a wait);
 * QEMU's vCPU threads take its global lock instead. No C peer: it runs one vCPU.
 *
 * Bench 2, start to GRUB's last line: `hvmpt run` on a plan with Debian's SeaBIOS and the GRUB
 * report image, against `qemu-system-x86_64 -accel kvm -bios bios-256k.bin -kernel grub.img`
 * with the same RAM and no devices beyond the i440FX defaults, both as fresh processes, timed
 * from spawn to the end mark on the serial port.
 *
 * Bench 3, memory: each process's resident set when GRUB's last line appears, less the
 * resident part of the memory backing the guest (see residentKb); and the private anonymous
 * part of that, which leaves out file pages (the node or qemu binary, shared libraries).
 *
 * Bench 4, start: from spawning `hvmpt run` to SeaBIOS's first line in its firmware log, against
 * QEMU-KVM's spawn to the same line (its debugcon at 0x402). In a lab host this is
 * `lab_overhead_s`: node starting and loading hvmpt under TCG over 9p.
 */
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '..', '..');

function loopImage(iterations: number): Uint8Array {
  return microBios(configLoop(new Asm(16), iterations).bytes());
}

/** The boot vCPU's time in its loop; with `wall`, the whole run's (the other vCPUs' loops have no clock of their own). */
async function hvmptNs(image: Uint8Array, cpus = 1, wall = false): Promise<number> {
  const config = { ...microConfig(new Uint8Array(0)), firmware: { name: 'bench-loop', image }, cpus };
  const r = await runMachine(config, { timeoutMs: 600_000 });
  if (r.reason.kind !== 'debug-exit') throw new Error(`hvmpt run ended with ${JSON.stringify(r.reason)}`);
  return wall ? r.wallMs * 1e6 : r.report.vcpuNs;
}

/** A run of hvmpt with its CF8 queueing off: each config round trip then makes two exits, as QEMU's and the C loop's do. */
async function withoutQueue(run: () => Promise<number>): Promise<number> {
  process.env['HVMPT_COALESCED_PIO'] = 'off';
  try {
    return await run();
  } finally {
    delete process.env['HVMPT_COALESCED_PIO'];
  }
}

function qemuNs(file: string, cpus = 1): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('qemu-system-x86_64', ['-accel', 'kvm', '-machine', 'pc', '-smp', String(cpus), '-m', '16', '-bios', file, '-display', 'none', '-nodefaults', '-no-reboot', '-device', 'isa-debug-exit,iobase=0xf4,iosize=1'], { encoding: 'utf8' });
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
    // The per-exit figures take hvmpt with its CF8 queueing off (HVMPT_COALESCED_PIO=off): two
    // exits per round trip, as the C loop makes. The round-trip figures take it as it runs.
    const samples = { hv: [] as number[], hvQueued: [] as number[], qe: [] as number[], c: [] as number[] };
    const us = (a: number, b: number): number => (b - a) / exitsDelta / 1000;
    for (let i = 0; i < repeat; i++) {
      samples.hv.push(us(await withoutQueue(() => hvmptNs(imgSmall)), await withoutQueue(() => hvmptNs(imgLarge))));
      samples.hvQueued.push(2 * us(await hvmptNs(imgSmall), await hvmptNs(imgLarge)));
      samples.qe.push(us(qemuNs(small), qemuNs(large)));
      samples.c.push(us(cNs(binary, small), cNs(binary, large)));
    }
    const hv = Math.min(...samples.hv);
    const hvQueued = Math.min(...samples.hvQueued);
    const qe = Math.min(...samples.qe);
    const c = Math.min(...samples.c);
    const out = [
      `exits_per_run: ${2 * n2 + 1}`,
      `exit_us_hvmpt: ${hv.toFixed(3)}`,
      `exit_us_qemu: ${qe.toFixed(3)}`,
      `exit_us_c: ${c.toFixed(3)}`,
      `ratio_hvmpt_over_qemu: ${(hv / qe).toFixed(3)}`,
      `ratio_hvmpt_over_c: ${(hv / c).toFixed(3)}`,
      `config_roundtrip_us_hvmpt: ${hvQueued.toFixed(3)}`,
      `config_roundtrip_us_qemu: ${(2 * qe).toFixed(3)}`,
      `config_roundtrip_ratio_hvmpt_over_qemu: ${(hvQueued / (2 * qe)).toFixed(3)}`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function smpBench(args: readonly string[]): Promise<void> {
  const n2 = arg(args, '--iterations', 100_000);
  const n1 = Math.max(1, Math.floor(n2 / 10));
  const repeat = arg(args, '--repeat', 7);
  const exitsDelta = 2 * (n2 - n1);
  const us = (a: number, b: number): number => (b - a) / exitsDelta / 1000;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-smp-'));
  try {
    const images = { boot: [smpLoopImage(n1, 'boot'), smpLoopImage(n2, 'boot')], ap: [smpLoopImage(n1, 'ap'), smpLoopImage(n2, 'ap')] } as const;
    const files = { boot: [join(dir, 'boot1.bin'), join(dir, 'boot2.bin')], ap: [join(dir, 'ap1.bin'), join(dir, 'ap2.bin')] } as const;
    for (const k of ['boot', 'ap'] as const) files[k].forEach((f, i) => writeFileSync(f, images[k][i]!));
    const samples = { hvBoot: [] as number[], hvAp: [] as number[], qeBoot: [] as number[], qeAp: [] as number[] };
    for (let i = 0; i < repeat; i++) {
      samples.hvBoot.push(us(await withoutQueue(() => hvmptNs(images.boot[0], 2)), await withoutQueue(() => hvmptNs(images.boot[1], 2))));
      samples.hvAp.push(us(await withoutQueue(() => hvmptNs(images.ap[0], 2, true)), await withoutQueue(() => hvmptNs(images.ap[1], 2, true))));
      samples.qeBoot.push(us(qemuNs(files.boot[0], 2), qemuNs(files.boot[1], 2)));
      samples.qeAp.push(us(qemuNs(files.ap[0], 2), qemuNs(files.ap[1], 2)));
    }
    const [hb, ha, qb, qa] = [samples.hvBoot, samples.hvAp, samples.qeBoot, samples.qeAp].map((xs) => Math.min(...xs)) as [number, number, number, number];
    process.stdout.write(
      [
        `smp_exit_us_hvmpt_boot_vcpu: ${hb.toFixed(3)}`,
        `smp_exit_us_qemu_boot_vcpu: ${qb.toFixed(3)}`,
        `smp_ratio_boot_vcpu_hvmpt_over_qemu: ${(hb / qb).toFixed(3)}`,
        `smp_exit_us_hvmpt_other_vcpu: ${ha.toFixed(3)}`,
        `smp_exit_us_qemu_other_vcpu: ${qa.toFixed(3)}`,
        `smp_ratio_other_vcpu_hvmpt_over_qemu: ${(ha / qa).toFixed(3)}`,
      ].join('\n') + '\n',
    );
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
    const cli = hvmptEntry(import.meta.url);
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

const SEABIOS_FIRST_LINE = 'SeaBIOS (version';

/** Seconds from spawning `argv` until `log` holds SeaBIOS's first line (polled every 5 ms). */
function timeToSeabios(command: string, argv: readonly string[], log: string): Promise<number> {
  rmSync(log, { force: true });
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, [...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    const finish = (f: () => void): void => {
      clearInterval(poll);
      clearTimeout(timer);
      child.kill('SIGKILL');
      f();
    };
    const poll = setInterval(() => {
      if (existsSync(log) && readFileSync(log, 'latin1').includes(SEABIOS_FIRST_LINE)) {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        finish(() => resolvePromise(seconds));
      }
    }, 5);
    const timer = setTimeout(() => finish(() => reject(new Error(`${command}: no "${SEABIOS_FIRST_LINE}" within 300 s; stderr: ${err}`))), 300_000);
    child.on('exit', (code) => {
      if (code !== null && code !== 0) finish(() => reject(new Error(`${command} exited ${code} before SeaBIOS's first line; stderr: ${err}`)));
    });
  });
}

/** Seconds a command takes, start to exit. */
function timed(command: string, argv: readonly string[], env: Record<string, string> = {}): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(command, [...argv], { stdio: 'ignore', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${command} ${argv.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function startBench(args: readonly string[]): Promise<void> {
  const runs = arg(args, '--boots', 3);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-start-bench-'));
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: ${BOOT_RAM_MIB}M }\nmachine:\n  boot: { kind: grub-report }\n`);
    const log = join(dir, 'firmware.log');
    const cli = hvmptEntry(import.meta.url);
    const qemuArgs = ['-accel', 'kvm', '-machine', 'pc', '-m', String(BOOT_RAM_MIB), '-bios', firmwarePath('seabios'), '-display', 'none', '-nodefaults', '-no-reboot',
      '-chardev', `file,id=fw,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=fw'];
    const hv: number[] = [];
    const qe: number[] = [];
    const node: number[] = [];
    const version: number[] = [];
    const versionCold: number[] = [];
    for (let i = 0; i < runs; i++) {
      hv.push(await timeToSeabios(process.execPath, [cli, 'run', plan, '--firmware-log', log, '--no-lab'], log));
      qe.push(await timeToSeabios('qemu-system-x86_64', qemuArgs, log));
      node.push(timed(process.execPath, ['-e', '0']));
      version.push(timed(process.execPath, [cli, '--version']));
      versionCold.push(timed(process.execPath, [cli, '--version'], { HVMPT_CODE_CACHE: 'off' }));
    }
    // Whether this node takes the build's code cache (another node, or other V8 flags, would not).
    const cache = compileCli(join(dirname(cli), 'hvmpt-cli.cjs'), join(dirname(cli), 'hvmpt-cli.cache')).cache;
    // In a lab host this is the lab's overhead: what node and hvmpt cost before the guest runs.
    const name = process.env['HVMPT_LAB'] === '1' ? 'lab_overhead_s' : 'start_to_seabios_s';
    const h = median(hv);
    const q = median(qe);
    process.stdout.write(
      [
        `${name}: ${h.toFixed(2)}`,
        `${name}_qemu: ${q.toFixed(2)}`,
        `ratio_${name}_hvmpt_over_qemu: ${(h / q).toFixed(2)}`,
        // Where the time goes: node alone, and node loading the whole CLI (hvmpt --version).
        `node_start_s: ${median(node).toFixed(2)}`,
        `cli_load_s: ${median(version).toFixed(2)}`,
        `cli_load_s_no_code_cache: ${median(versionCold).toFixed(2)}`,
        `code_cache: ${cache}`,
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same benchmark, run by the same hvmpt in a lab host, its lines streamed after one saying so. */
async function inLab(args: readonly string[], why: string): Promise<void> {
  const accel = labAccel();
  process.stdout.write(`lab: ${why}: the benchmark runs in a ${accel.kind === 'kvm' ? 'KVM' : 'TCG'} lab host; each ratio is against QEMU-KVM and the C loop in that lab\n`);
  const bench = join(REPO, 'dist', 'bench', 'run.js');
  const r = spawnSync(process.execPath, [hvmptEntry(import.meta.url), 'lab', '--memory', '3G', '--cpus', '2', '--', process.execPath, bench, 'vmm', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

export async function main(args: readonly string[]): Promise<void> {
  const route = kvmRoute(false);
  if (route.lab) return inLab(args, route.why);
  const i = args.indexOf('--only');
  const only = i >= 0 ? args[i + 1] : undefined;
  if (only === undefined || only === 'exit') await exitBench(args);
  if (only === undefined || only === 'smp') await smpBench(args);
  if (only === undefined || only === 'boot') await bootBench(args);
  if (only === undefined || only === 'start') await startBench(args);
}
