import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFacts } from '../src/host/facts/archive.js';
import { collectorScriptPath } from '../src/host/facts/collector.js';
import { analyze } from '../src/hw/facts/analyze.js';
import { readSnapshot } from '../src/hw/facts/snapshot.js';
import { monitorWindows } from '../src/cli/facts-analysis.js';
import { CLI, REPO_ROOT } from '../test/helpers/paths.js';
import { runLabHost } from '../test/helpers/lab-hosts.js';
import { median } from './stats.js';

/**
 * `npm run bench -- host [rounds] [--lab]`: `hvmpt collect` and `hvmpt analyze` as a user runs
 * them (node's start included), on this machine and on the archive of the biggest lab host
 * (.cache/facts/lab-q35-iommu.tar, which the lab test leaves; booted here when missing, or
 * with --lab, which also times the collector inside the lab host under TCG). The peer is
 * pciutils reading the same machine: `lspci -Dvvvnnxxxx`, and decoding the same functions from
 * a dump with `lspci -F`. Goal: under 1 s each. Medians of `rounds` runs.
 */
function wall(command: string, args: readonly string[]): number {
  const t = performance.now();
  const r = spawnSync(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${r.stderr.toString().trim()}`);
  return (performance.now() - t) / 1000;
}

export async function main(args: readonly string[]): Promise<void> {
  const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-host-'));
  const line = (name: string, v: number, unit = 's'): void => void process.stdout.write(`${name} ${unit}: ${v.toFixed(unit === 's' ? 3 : 1)}\n`);
  try {
    const here = join(dir, 'here.tar');
    const runs = (f: () => number): number => median(Array.from({ length: rounds }, f));
    line('collect this machine (hvmpt collect)', runs(() => wall(process.execPath, [CLI, 'collect', '--out', here])));
    line('collect this machine (the sh script alone)', runs(() => wall('sh', [collectorScriptPath(), '--out', here])));
    line('peer: lspci -Dvvvnnxxxx this machine', runs(() => wall('lspci', ['-Dvvvnnxxxx'])));
    line('analyze this machine (hvmpt analyze)', runs(() => wall(process.execPath, [CLI, 'analyze', here])));
    const inProcess = (archive: string): number => {
      const t = performance.now();
      analyze(readSnapshot(readFacts(archive)), { windows: monitorWindows(1n << 30n), memory: 1n << 30n });
      return performance.now() - t;
    };
    inProcess(here);
    line('analyze this machine in process (read + analyze)', runs(() => inProcess(here)), 'ms');

    const cache = join(REPO_ROOT, '.cache', 'facts');
    const lab = join(cache, 'lab-q35-iommu.tar');
    if (!existsSync(lab) || args.includes('--lab')) {
      process.stderr.write('bench: booting the lab host (QEMU TCG, a minute or two)\n');
      const r = await runLabHost((hosts) => hosts.find((h) => h.name === 'q35-iommu')!);
      mkdirSync(cache, { recursive: true });
      writeFileSync(lab, r.root);
      line('collect inside the lab host (busybox sh under QEMU TCG: relative only)', r.collectSeconds);
    }
    line('analyze the lab host\'s archive (hvmpt analyze)', runs(() => wall(process.execPath, [CLI, 'analyze', lab])));
    inProcess(lab);
    line('analyze the lab host\'s archive in process', runs(() => inProcess(lab)), 'ms');
    // The peer decodes the same functions: lspci -F on their config spaces, as a dump.
    const dump = join(dir, 'lab.lspci');
    const s = readSnapshot(readFacts(lab));
    writeFileSync(dump, s.pci.functions.map((f) => `${f.dir.slice(f.dir.lastIndexOf('/') + 1)} Function\n${hexLines(f.config!.bytes)}\n`).join('\n'));
    line('peer: lspci -F -vvvnn on the lab host\'s config spaces', runs(() => wall('lspci', ['-F', dump, '-vvvnn'])));
    process.stdout.write(`lab archive: ${s.pci.functions.length} functions, ${s.acpi.images.length} ACPI tables, ${readFileSync(lab).length} bytes\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function hexLines(bytes: Uint8Array): string {
  const out: string[] = [];
  for (let o = 0; o < bytes.length; o += 16) out.push(`${o.toString(16).padStart(2, '0')}: ${[...bytes.subarray(o, o + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  return out.join('\n');
}
