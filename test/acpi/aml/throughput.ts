import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import { allMachines, HEADER_LENGTH } from './fixtures.js';

/**
 * AML parse + re-encode throughput over every fixture DSDT/SSDT, beside `iasl -d` on the same
 * tables (one process per table, as a user runs it). Not a test: run it after a build with
 * `node dist/test/acpi/aml/throughput.js [iterations]`. Prints `name: value` lines; the first
 * iteration (cold JIT) is reported apart from the median of the rest.
 */

const iterations = Math.max(2, Number(process.argv[2] ?? 15));
const machines = allMachines();
const tables = machines.flatMap((m) => m.tables);
const bytes = tables.reduce((n, t) => n + t.body.length, 0);

function once(): { parse: number; encode: number } {
  let parse = 0;
  let encode = 0;
  for (const m of machines) {
    const t0 = performance.now();
    const trees = parseAmlTables(m.tables.map((t) => ({ body: t.body, table: t.label, baseOffset: HEADER_LENGTH })));
    const t1 = performance.now();
    for (const tr of trees) encodeAml(tr.terms);
    parse += t1 - t0;
    encode += performance.now() - t1;
  }
  return { parse, encode };
}

const runs = Array.from({ length: iterations }, once);
const warm = runs.slice(1).sort((a, b) => a.parse + a.encode - (b.parse + b.encode));
const median = warm[Math.floor(warm.length / 2)]!;
const total = median.parse + median.encode;

const out = mkdtempSync(join(tmpdir(), 'hvmpt-throughput-'));
const t0 = performance.now();
let failed = 0;
for (const m of machines) {
  for (const t of m.tables) {
    const r = spawnSync('iasl', ['-d', '-p', join(out, `${m.name}-${t.name}`), t.path], { stdio: 'ignore' });
    if (r.status !== 0) failed++;
  }
}
const iasl = performance.now() - t0;
rmSync(out, { recursive: true, force: true });

const lines = [
  `aml tables: ${tables.length}`,
  `aml bytes: ${bytes}`,
  `hvmpt cold first iteration ms: ${(runs[0]!.parse + runs[0]!.encode).toFixed(1)}`,
  `hvmpt parse median ms: ${median.parse.toFixed(1)}`,
  `hvmpt encode median ms: ${median.encode.toFixed(1)}`,
  `hvmpt parse+encode median ms: ${total.toFixed(1)}`,
  `hvmpt parse+encode MB/s: ${(bytes / 1e6 / (total / 1000)).toFixed(1)}`,
  `iasl -d all tables ms: ${iasl.toFixed(1)}${failed > 0 ? ` (${failed} crashed)` : ''}`,
  `ratio iasl/hvmpt (warm): ${(iasl / total).toFixed(1)}`,
  `ratio iasl/hvmpt (cold): ${(iasl / (runs[0]!.parse + runs[0]!.encode)).toFixed(1)}`,
];
process.stdout.write(lines.join('\n') + '\n');
