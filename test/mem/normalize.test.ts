import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { normalizeE820, typeRank, type E820Entry, type E820Type } from '../../src/hw/mem/e820.js';
import { mulberry32 } from '../../src/util/rng.js';
import { CLI } from '../helpers/paths.js';

/**
 * E820 normalization is a sweep in O(n log n) (issue 9, item 5): checked against the
 * definition (each piece between boundaries goes to its highest-ranked covering type) on
 * random maps, and run on 200,000 entries, disjoint and nested. The bounds on those are hang
 * guards; the time is measured by `npm run bench -- inputs`.
 */

const TYPES: readonly E820Type[] = ['usable', 'reserved', 'acpi', 'nvs', 'unusable', 'pmem', '1:1', 'type-20'];

/** The definition, piece by piece (quadratic: for small maps only). */
function reference(entries: readonly E820Entry[]): { entries: E820Entry[]; overlapped: bigint } {
  const live = entries.filter((e) => e.end > e.start);
  const points = [...new Set(live.flatMap((e) => [e.start, e.end]))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: E820Entry[] = [];
  let overlapped = 0n;
  for (let i = 0; i + 1 < points.length; i++) {
    const [start, end] = [points[i]!, points[i + 1]!];
    const covering = live.filter((e) => e.start <= start && e.end >= end);
    if (covering.length === 0) continue;
    if (covering.length > 1) overlapped += end - start;
    const type = covering.map((e) => e.type).reduce((a, b) => (typeRank(b) > typeRank(a) ? b : a));
    const last = out[out.length - 1];
    if (last !== undefined && last.end === start && last.type === type) out[out.length - 1] = { start: last.start, end, type };
    else out.push({ start, end, type });
  }
  return { entries: out, overlapped };
}

test('the sweep gives what the definition gives, and warns over exactly the overlapping stretches', () => {
  const rnd = mulberry32(20261201);
  const int = (n: number): number => Math.floor(rnd() * n);
  for (let round = 0; round < 400; round++) {
    const entries: E820Entry[] = Array.from({ length: 1 + int(40) }, () => {
      const start = BigInt(int(64)) * 0x1000n;
      return { start, end: start + BigInt(int(24)) * 0x1000n, type: TYPES[int(TYPES.length)]! };
    });
    const got = normalizeE820(entries);
    const want = reference(entries);
    assert.deepEqual(got.map.entries, want.entries, `round ${round}`);
    const warned = got.warnings.reduce((n, w) => n + (w.kind === 'overlap' ? w.range.end - w.range.start : 0n), 0n);
    assert.equal(warned, want.overlapped, `round ${round}: overlap warnings cover the overlaps`);
    for (const w of got.warnings) if (w.kind === 'overlap') assert.match(w.message, new RegExp(`\\): treated as ${w.winner.replace(/[-:]/g, '\\$&')}$`));
  }
});

test('an overlap warning lists the types weakest first, counting repeats', () => {
  const MiB = 0x10_0000n;
  const { warnings } = normalizeE820([
    { start: 0n, end: 4n * MiB, type: 'reserved' },
    { start: MiB, end: 2n * MiB, type: 'usable' },
    { start: MiB, end: 3n * MiB, type: 'usable' },
  ]);
  assert.deepEqual(
    warnings.map((w) => w.message),
    ['entries overlap at [mem 0x100000-0x1fffff] (usable ×2, reserved): treated as reserved', 'entries overlap at [mem 0x200000-0x2fffff] (usable, reserved): treated as reserved'],
  );
});

test('200,000 entries: disjoint ones and nested ones normalize (a quadratic sweep would not end)', { timeout: 300_000 }, () => {
  const n = 200_000;
  const disjoint: E820Entry[] = Array.from({ length: n }, (_, i) => ({ start: BigInt(i) * 0x20_0000n, end: BigInt(i) * 0x20_0000n + 0x10_0000n, type: i % 2 === 0 ? 'usable' : 'reserved' }));
  assert.equal(normalizeE820(disjoint).map.entries.length, n);
  // Every entry covers all that follow it: n pieces, each under a growing pile of entries.
  const top = BigInt(n) * 0x1000n;
  const nested: E820Entry[] = Array.from({ length: n }, (_, i) => ({ start: BigInt(i) * 0x1000n, end: top, type: i === n / 2 ? 'reserved' : 'usable' }));
  const r = normalizeE820(nested);
  assert.deepEqual(r.map.entries, [
    { start: 0n, end: BigInt(n / 2) * 0x1000n, type: 'usable' },
    { start: BigInt(n / 2) * 0x1000n, end: top, type: 'reserved' },
  ]);
});

test('e820 show on a 200,000-entry boot log ends, every entry printed (the bound is a hang guard)', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-e820-big-'));
  try {
    const log = join(dir, 'big.dmesg');
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      const start = 0x1_0000_0000 + i * 0x20_0000;
      lines.push(`[    0.000000] BIOS-e820: [mem 0x${start.toString(16).padStart(16, '0')}-0x${(start + 0xf_ffff).toString(16).padStart(16, '0')}] ${i % 2 === 0 ? 'usable' : 'reserved'}`);
    }
    writeFileSync(log, lines.join('\n') + '\n');
    const r = spawnSync(process.execPath, [CLI, 'e820', 'show', log, '--format', 'xen'], { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20 });
    assert.equal(r.signal, null, 'it hung');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split('\n').length, 200_001);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
