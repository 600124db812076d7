import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asm, microBios } from '../src/vmm/guest/asm.js';
import { microConfig } from '../src/vmm/guest/micro.js';
import { runMachine } from '../src/vmm/runner.js';

/**
 * `npm run bench -- vmm [--iterations N] [--repeat R]`
 *
 * Bench 1, config-space exit round trip: one micro guest (a 64 KiB BIOS image looping
 * "out 0xCF8, eax; in eax, 0xCFC", then writing isa-debug-exit) run by hvmpt, by
 * `qemu-system-x86_64 -accel kvm -bios` and by a bare C KVM_RUN loop (bench/c/kvm_exit.c,
 * compiled here with cc). Each is run at two loop counts and the per-exit time is the
 * difference divided by the difference in exits, which cancels start-up and VM creation.
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

export async function main(args: readonly string[]): Promise<void> {
  const n2 = arg(args, '--iterations', 100_000);
  const n1 = Math.max(1, Math.floor(n2 / 10));
  const repeat = arg(args, '--repeat', 5);
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

    // The three are interleaved round by round, so load from other work on the machine
    // falls on all of them alike; each figure is the median over the rounds.
    const samples = { hv: [] as number[], qe: [] as number[], c: [] as number[] };
    const us = (a: number, b: number): number => (b - a) / exitsDelta / 1000;
    for (let i = 0; i < repeat; i++) {
      samples.hv.push(us(await hvmptNs(imgSmall), await hvmptNs(imgLarge)));
      samples.qe.push(us(qemuNs(small), qemuNs(large)));
      samples.c.push(us(cNs(binary, small), cNs(binary, large)));
    }
    const hv = median(samples.hv);
    const qe = median(samples.qe);
    const c = median(samples.c);
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
