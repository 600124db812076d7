import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultFixturesDir } from '../fuzz/acpi-tables.js';
import { parseAcpidump } from '../src/hw/acpi/dump/acpidump.js';
import { DEFINITION_BLOCK_SIGNATURES } from '../src/hw/acpi/signatures.js';
import type { DefinitionBlock } from '../src/hw/acpi/tables/definition-block.js';
import { decodeTable, encodeTable } from '../src/hw/acpi/tables/table.js';

/**
 * `npm run bench -- acpi`: decode and re-encode every table of every fixture, side by side with
 * `iasl -d` disassembling the same tables (acpixtract's .dat files, one iasl run per machine).
 * Two figures each: the data tables alone (like for like), and all tables, where iasl also
 * disassembles the AML of DSDT/SSDTs. hvmpt's AML work plugs in through AML_STAGES; until it
 * lands, definition blocks are decoded as header + AML bytes and `aml_stages` says 0.
 */

/** Extra work per DSDT/SSDT: the AML parser and encoder register here when they land. */
export interface AmlStage {
  readonly name: string;
  run(block: DefinitionBlock): void;
}

export const AML_STAGES: AmlStage[] = [];

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

export async function main(args: readonly string[]): Promise<void> {
  const fixturesDir = args.includes('--fixtures') ? args[args.indexOf('--fixtures') + 1]! : defaultFixturesDir();
  const fixtures = loadFixtures(fixturesDir);
  const all = fixtures.flatMap((f) => f.tables);
  const data = all.filter((t) => !isAml(t.signature));
  const out = (name: string, value: string | number): void => void process.stdout.write(`${name}: ${value}\n`);
  out('fixtures', fixtures.length);
  out('tables_all', all.length);
  out('tables_data', data.length);
  out('bytes_all', all.reduce((n, t) => n + t.data.length, 0));
  out('aml_stages', AML_STAGES.map((s) => s.name).join(',') || '0 (definition blocks as header + AML bytes)');

  // Warm the JIT, then time whole passes.
  for (let i = 0; i < 20; i++) hvmptPass(fixtures, true);
  const hvmptData = timeMedian(() => hvmptPass(fixtures, false), 20, 1500);
  const hvmptAll = timeMedian(() => hvmptPass(fixtures, true), 20, 1500);
  out('hvmpt_decode_encode_data_ms', fmt(hvmptData));
  out('hvmpt_decode_encode_all_ms', fmt(hvmptAll));

  if (!haveTool('iasl') || !haveTool('acpixtract')) {
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
    const iaslAll = timeMedian(() => iaslPass(true), 3, 6000);
    out('iasl_d_data_ms', fmt(iaslData));
    out('iasl_d_all_ms', fmt(iaslAll));
    out('ratio_data_iasl_over_hvmpt', (iaslData / hvmptData).toFixed(1));
    out('ratio_all_iasl_over_hvmpt', (iaslAll / hvmptAll).toFixed(1));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
