import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError } from '../src/errors.js';
import { normalizeE820 } from '../src/hw/mem/e820.js';
import { formatLinux } from '../src/hw/mem/e820-format.js';
import { parseE820Text, selectMap } from '../src/hw/mem/e820-parse.js';
import { INPUT_LIMITS, readInputBytes, readInputText } from '../src/plan/input.js';

/**
 * `npm run bench -- inputs [rounds]`: the big inputs of issue 9, timed (the tests only bound
 * them). A 200,000-entry boot log through `e820 show`'s pipeline (read, parse, normalize,
 * print), against GNU sort ordering the same lines: the O(n log n) floor any normalization
 * has; normalization alone at 5,000 to 200,000 entries, to show its growth; and refusing
 * /dev/zero and a 1 GB sparse file, against `head -c` reading the cap from /dev/zero.
 */

function logText(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const start = 0x1_0000_0000 + i * 0x20_0000;
    lines.push(`[    0.000000] BIOS-e820: [mem 0x${start.toString(16).padStart(16, '0')}-0x${(start + 0xf_ffff).toString(16).padStart(16, '0')}] ${i % 2 === 0 ? 'usable' : 'reserved'}`);
  }
  return lines.join('\n') + '\n';
}

/** Best of `rounds` runs, after one warm-up, in ms. */
function best(rounds: number, f: () => void): number {
  f();
  let min = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    f();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

export async function main(args: readonly string[]): Promise<void> {
  const rounds = Number(args[0] ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-inputs-'));
  const line = (name: string, v: number, digits = 1): void => void process.stdout.write(`${name}: ${v.toFixed(digits)}\n`);
  try {
    const log = join(dir, 'big.dmesg');
    writeFileSync(log, logText(200_000));
    const pipeline = best(rounds, () => {
      const parsed = parseE820Text(readInputText(log, 'e820'), log);
      formatLinux(normalizeE820(selectMap(parsed, log).entries).map);
    });
    const sort = best(rounds, () => {
      const r = spawnSync('sort', ['-o', '/dev/null', log], { env: { ...process.env, LC_ALL: 'C' } });
      if (r.status !== 0) throw new Error('sort failed');
    });
    line('e820 show pipeline, 200000 entries (read, parse, normalize, print) ms', pipeline);
    line('peer: GNU sort of the same 200000 lines ms', sort);
    line('ratio (hvmpt / GNU sort)', pipeline / sort, 2);
    for (const n of [5_000, 20_000, 200_000]) {
      const entries = selectMap(parseE820Text(logText(n), 'n'), 'n').entries;
      line(`normalize ${n} entries ms`, best(rounds, () => normalizeE820(entries)), 2);
    }

    const refuse = (path: string): void => {
      try {
        readInputBytes(path, 'e820');
      } catch (err) {
        if (err instanceof IoError) return;
        throw err;
      }
      throw new Error(`${path} was read`);
    };
    line('refuse /dev/zero (read to the 64 MiB cap) ms', best(rounds, () => refuse('/dev/zero')));
    const head = best(rounds, () => {
      const r = spawnSync('sh', ['-c', `head -c ${INPUT_LIMITS.e820.bytes + 1} /dev/zero > /dev/null`]);
      if (r.status !== 0) throw new Error('head failed');
    });
    line('peer: head -c (64 MiB + 1) /dev/zero ms', head);
    const sparse = join(dir, 'sparse.img');
    writeFileSync(sparse, '');
    truncateSync(sparse, 1 << 30);
    line('refuse a 1 GB sparse file (by its size) ms', best(rounds, () => refuse(sparse)), 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
