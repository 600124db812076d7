import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/paths.js';

/**
 * AML bytes for tests and the fuzzer, taken out of the acpidump fixtures by ACPICA's own
 * `acpixtract -a` (an extractor nobody here wrote), then cut after the 36-byte table header.
 */

export const HEADER_LENGTH = 36;

export interface ExtractedTable {
  /** acpixtract's file name without .dat: dsdt, ssdt, ssdt1, ... */
  readonly name: string;
  /** Signature as a table label: DSDT, SSDT3. */
  readonly label: string;
  /** The whole table, header included. */
  readonly table: Uint8Array;
  /** The AML after the header. */
  readonly body: Uint8Array;
  readonly path: string;
}

export interface Machine {
  readonly name: string;
  readonly dump: string;
  readonly dir: string;
  /** DSDT first, then SSDTs in acpixtract's numbering. */
  readonly tables: readonly ExtractedTable[];
}

export function fixtureDumps(): string[] {
  const dir = join(FIXTURES, 'acpi');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.acpidump.txt'))
    .sort()
    .map((f) => join(dir, f));
}

let workDir: string | undefined;
const cache = new Map<string, Machine>();

function scratch(): string {
  if (workDir === undefined) {
    workDir = mkdtempSync(join(tmpdir(), 'hvmpt-aml-'));
    process.on('exit', () => rmSync(workDir!, { recursive: true, force: true }));
  }
  return workDir;
}

function ssdtOrder(a: string, b: string): number {
  const n = (s: string) => (s === 'dsdt' ? -1 : Number(s.slice(4) || '0'));
  return n(a) - n(b);
}

/** Extracts one dump's DSDT and SSDTs with acpixtract (once per process). */
export function extractMachine(dump: string): Machine {
  const hit = cache.get(dump);
  if (hit !== undefined) return hit;
  const name = dump.replace(/^.*\//, '').replace(/\.acpidump\.txt$/, '');
  const dir = join(scratch(), name);
  const r = spawnSync('sh', ['-c', `mkdir -p "${dir}" && cd "${dir}" && acpixtract -a "${dump}"`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`acpixtract -a ${dump} failed: ${r.stderr}`);
  const tables = readdirSync(dir)
    .filter((f) => /^(dsdt|ssdt\d*)\.dat$/.test(f))
    .map((f) => f.slice(0, -4))
    .sort(ssdtOrder)
    .map((t) => {
      const path = join(dir, `${t}.dat`);
      const table = new Uint8Array(readFileSync(path));
      return { name: t, label: t.toUpperCase(), table, body: table.subarray(HEADER_LENGTH), path };
    });
  const m = { name, dump, dir, tables };
  cache.set(dump, m);
  return m;
}

export function allMachines(): Machine[] {
  return fixtureDumps().map(extractMachine);
}
