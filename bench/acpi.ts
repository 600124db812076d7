import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { defaultFixturesDir } from '../fuzz/acpi-tables.js';
import { encodeAml } from '../src/hw/acpi/aml/encode.js';
import { parseAml } from '../src/hw/acpi/aml/parse.js';
import { parseAcpidump } from '../src/hw/acpi/dump/acpidump.js';
import { DEFINITION_BLOCK_SIGNATURES } from '../src/hw/acpi/signatures.js';
import type { DefinitionBlock } from '../src/hw/acpi/tables/definition-block.js';
import { HEADER_SIZE } from '../src/hw/acpi/tables/header.js';
import { decodeTable, encodeTable } from '../src/hw/acpi/tables/table.js';

/**
 * `npm run bench -- acpi`: decode and re-encode every table of every fixture machine, the AML
 * of its DSDT/SSDTs included (parsed into a term tree and encoded back), side by side with
 * ACPICA's `iasl -d` disassembling the same tables (acpixtract's .dat files, one iasl process
 * per machine, as a user runs it on a dump).
 *
 * How the two are timed, so the comparison is fair:
 * - hvmpt warm: in one process, after warm-up passes, the median of whole passes. This is
 *   hvmpt used as a library (the monitor, a rewrite of many tables), with V8's optimizing
 *   compiler done.
 * - hvmpt cold: a fresh `node` process per run doing one pass: the first pass's own time
 *   (JIT not warmed), and the whole process's wall time (node's start and module loading
 *   included), which is what `iasl -d` pays per run.
 * - iasl: wall time of its processes (it is compiled C; it has no warm state to keep).
 * - For all tables, the two take turns over several rounds (one iasl pass, then hvmpt passes
 *   for a moment), and the ratio is the median of the rounds' ratios: this machine is shared,
 *   and taking turns puts other load on both sides alike.
 * iasl writes ASL text where hvmpt builds trees and bytes: the work is comparable (both parse
 * all AML and resolve names; iasl also formats text and writes files), not identical.
 */

/** Extra work per DSDT/SSDT, run in every pass (by default the AML parser and encoder). */
export interface AmlStage {
  readonly name: string;
  run(block: DefinitionBlock): void;
}

export const AML_STAGES: AmlStage[] = [
  {
    name: 'aml parse+encode',
    run: (block) => void encodeAml(parseAml(block.aml, { table: block.header.signature, baseOffset: HEADER_SIZE }).terms),
  },
];

interface FixtureTables {
  readonly name: string;
  readonly tables: ReadonlyArray<{ readonly signature: string; readonly data: Uint8Array }>;
}

function loadFixtures(dir: string): FixtureTables[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.acpidump.txt'))
    .sort()
    .map((f) => ({ name: f.slice(0, -'.acpidump.txt'.length), tables: parseAcpidump(readFileSync(join(dir, f), 'latin1'), f) }));
}

function isAml(signature: string): boolean {
  return DEFINITION_BLOCK_SIGNATURES.has(signature);
}

/** One pass: decode and re-encode each table (and run the AML stages on definition blocks). */
function hvmptPass(fixtures: readonly FixtureTables[], withAml: boolean): number {
  let bytes = 0;
  for (const f of fixtures) {
    for (const t of f.tables) {
      if (!withAml && isAml(t.signature)) continue;
      const table = decodeTable(t.data);
      if (table.kind === 'definitionBlock') for (const stage of AML_STAGES) stage.run(table);
      bytes += encodeTable(table).length;
    }
  }
  return bytes;
}

/** The AML round trip is exact on every fixture table, or the timing means nothing. */
function checkRoundTrip(fixtures: readonly FixtureTables[]): number {
  let n = 0;
  for (const f of fixtures) {
    for (const t of f.tables) {
      if (!isAml(t.signature)) continue;
      const table = decodeTable(t.data) as DefinitionBlock;
      const again = encodeAml(parseAml(table.aml, { table: `${f.name} ${t.signature}`, baseOffset: HEADER_SIZE }).terms);
      if (again.length !== table.aml.length || again.some((b, i) => b !== table.aml[i])) throw new Error(`${f.name} ${t.signature}: AML does not re-encode byte for byte`);
      n++;
    }
  }
  return n;
}

/** Median milliseconds of `fn` over repeated runs (at least `minRuns`, about `budgetMs` in all). */
function timeMedian(fn: () => void, minRuns: number, budgetMs: number): number {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < budgetMs && times.length < 1000)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms.toFixed(1);
}

/** A fresh process doing one pass: its first pass's time (printed by it) and its wall time. */
function coldRun(fixturesDir: string): { firstPassMs: number; processMs: number } {
  const self = fileURLToPath(import.meta.url);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [self, '--cold-child', fixturesDir], { encoding: 'utf8' });
  const processMs = performance.now() - t0;
  const m = /^first_pass_ms: ([\d.]+)$/m.exec(r.stdout);
  if (r.status !== 0 || m === null) throw new Error(`cold run failed: ${r.stderr}`);
  return { firstPassMs: Number(m[1]), processMs };
}

export async function main(args: readonly string[]): Promise<void> {
  const fixturesDir = args.includes('--fixtures') ? args[args.indexOf('--fixtures') + 1]! : defaultFixturesDir();
  const fixtures = loadFixtures(fixturesDir);
  const all = fixtures.flatMap((f) => f.tables);
  const data = all.filter((t) => !isAml(t.signature));
  const out = (name: string, value: string | number): void => void process.stdout.write(`${name}: ${value}\n`);
  out('fixtures', fixtures.length);
  out('tables_all', all.length);
  out('tables_data', data.length);
  out('tables_aml', all.length - data.length);
  out('bytes_all', all.reduce((n, t) => n + t.data.length, 0));
  out('bytes_aml', all.filter((t) => isAml(t.signature)).reduce((n, t) => n + t.data.length, 0));
  out('aml_stages', AML_STAGES.map((s) => s.name).join(',') || '0 (definition blocks as header + AML bytes)');
  out('aml_roundtrip_exact_tables', checkRoundTrip(fixtures));

  const cold = [coldRun(fixturesDir), coldRun(fixturesDir), coldRun(fixturesDir)].sort((a, b) => a.processMs - b.processMs)[1]!;
  // Warm the JIT, then time whole passes.
  for (let i = 0; i < 20; i++) hvmptPass(fixtures, true);
  const hvmptData = timeMedian(() => hvmptPass(fixtures, false), 20, 1500);
  out('hvmpt_decode_encode_data_ms', fmt(hvmptData));
  out('hvmpt_cold_first_pass_all_ms', fmt(cold.firstPassMs));
  out('hvmpt_cold_process_all_ms', fmt(cold.processMs));

  if (!haveTool('iasl') || !haveTool('acpixtract')) {
    out('hvmpt_decode_encode_all_ms', fmt(timeMedian(() => hvmptPass(fixtures, true), 20, 3000)));
    out('iasl_d_data_ms', 'unavailable (install Debian package acpica-tools)');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'hvmpt-bench-acpi-'));
  try {
    const dirs = fixtures.map((f) => {
      const dir = join(tmp, f.name);
      mkdirSync(dir);
      spawnSync('acpixtract', ['-a', join(fixturesDir, `${f.name}.acpidump.txt`)], { cwd: dir, stdio: 'ignore' });
      return dir;
    });
    const datFiles = (dir: string, withAml: boolean): string[] =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.dat') && (withAml || !/^(dsdt|ssdt\d*|psdt\d*|osdt\d*)\.dat$/.test(f)))
        .sort();
    const iaslPass = (withAml: boolean): void => {
      for (const dir of dirs) {
        for (const f of readdirSync(dir)) if (f.endsWith('.dsl')) rmSync(join(dir, f));
        const files = datFiles(dir, withAml);
        // iasl exits non-zero when one file fails (it takes the unknown OEMB table for AML) but
        // still disassembles the others.
        const r = spawnSync('iasl', ['-d', ...files], { cwd: dir, stdio: 'ignore' });
        if (r.error !== undefined) throw r.error;
      }
    };
    const iaslData = timeMedian(() => iaslPass(false), 3, 3000);
    out('iasl_d_data_ms', fmt(iaslData));
    out('ratio_data_iasl_over_hvmpt', (iaslData / hvmptData).toFixed(1));
    // All tables: iasl and hvmpt take turns, round after round, so load from elsewhere on this
    // shared machine falls on both; the figures are the medians over the rounds.
    const rounds: { iasl: number; hvmpt: number }[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      iaslPass(true);
      const iasl = performance.now() - t0;
      rounds.push({ iasl, hvmpt: timeMedian(() => hvmptPass(fixtures, true), 9, 400) });
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const hvmptAll = median(rounds.map((r) => r.hvmpt));
    const iaslAll = median(rounds.map((r) => r.iasl));
    out('hvmpt_decode_encode_all_ms', fmt(hvmptAll));
    out('iasl_d_all_ms', fmt(iaslAll));
    out('ratio_all_iasl_over_hvmpt_warm', median(rounds.map((r) => r.iasl / r.hvmpt)).toFixed(1));
    out('ratio_all_iasl_over_hvmpt_cold_first_pass', (iaslAll / cold.firstPassMs).toFixed(1));
    out('ratio_all_iasl_over_hvmpt_cold_process', (iaslAll / cold.processMs).toFixed(1));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// The cold measurement's child: load everything, time one pass, print it.
if (process.argv[2] === '--cold-child') {
  const fixtures = loadFixtures(process.argv[3]!);
  const t0 = performance.now();
  hvmptPass(fixtures, true);
  process.stdout.write(`first_pass_ms: ${(performance.now() - t0).toFixed(3)}\n`);
}
