import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HvmptError } from '../src/errors.js';
import { formatAcpidump, parseAcpidump } from '../src/hw/acpi/dump/acpidump.js';
import { setChecksum } from '../src/hw/acpi/checksum.js';
import type { TraceEntry } from '../src/hw/acpi/tables/binary.js';
import { toJsonValue } from '../src/hw/acpi/tables/present.js';
import { decodeTable, decodeTableOrRaw, encodeTable, splitTableBytes, tableChecksumOk, traceTable } from '../src/hw/acpi/tables/table.js';
import { loadAcpiSource } from '../src/host/acpi/source.js';
import { campaignMain, count, serveCampaign, toHex, type CampaignDefinition, type Tally } from './_acpi-campaign.js';

export { newTally, type Tally } from './_acpi-campaign.js';

/**
 * Fuzzing the ACPI table readers and codec with mutations of real tables: bit flips,
 * interesting byte values, truncation, extension, lying table lengths, and mutations aimed at
 * the fields the decoder trusts most (subtable lengths set to 0 or past the end, counts that
 * overrun), found through the encoder's field trace of the original table. Every case must end
 * in a model or an HvmptError; a model must re-encode and decode to the same bytes again.
 *
 * `npm run fuzz -- acpi-tables [--cases N] [--seed S] [--case I]`: the campaign runs in a
 * worker thread watched for hangs (no progress for 10 s). `--case I` replays one case.
 * `npm run fuzz -- acpi` runs it with the AML and world-view campaigns.
 */

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: case i of seed s is reproducible on its own.

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    // mulberry32
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export function caseRng(seed: number, index: number): Rng {
  return new Rng(Math.imul(seed ^ 0x5bd1e995, 0x01000193) ^ Math.imul(index + 1, 0x9e3779b1));
}

// ---------------------------------------------------------------------------------------------
// Corpus

export interface CorpusTable {
  readonly name: string;
  readonly data: Uint8Array;
  /** Fields of the original table: where its lengths and counts are. */
  readonly trace: readonly TraceEntry[];
}

export interface Corpus {
  readonly tables: readonly CorpusTable[];
  /** Small acpidump texts: a few tables each, so text cases stay fast. */
  readonly dumps: readonly string[];
}

export function defaultFixturesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return resolve(dir, '..', 'shared', 'fixtures', 'acpi');
}

/** Every table of every fixture (large AML bodies cut down: their bytes are opaque here). */
export function loadCorpus(fixturesDir: string): Corpus {
  const tables: CorpusTable[] = [];
  const dumps: string[] = [];
  for (const file of readdirSync(fixturesDir).filter((f) => f.endsWith('.acpidump.txt')).sort()) {
    const images = parseAcpidump(readFileSync(join(fixturesDir, file), 'latin1'), file);
    const small: Array<{ signature: string; data: Uint8Array }> = [];
    for (const im of images) {
      const data = im.data.length > 4096 ? shrinkDefinitionBlock(im.data) : im.data;
      const table = decodeTable(data, { input: `${file}: ${im.name}` });
      tables.push({ name: `${file}:${im.name}`, data, trace: traceTable(table) });
      small.push({ signature: im.signature, data });
    }
    for (let i = 0; i < small.length; i += 3) dumps.push(formatAcpidump(small.slice(i, i + 3)));
  }
  return { tables, dumps };
}

/** A big DSDT/SSDT keeps its header and the first 4 KiB of AML, with length and checksum fixed. */
function shrinkDefinitionBlock(data: Uint8Array): Uint8Array {
  const out = data.slice(0, 4096);
  new DataView(out.buffer).setUint32(4, out.length, true);
  setChecksum(out, 9);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];

export function mutateTable(rng: Rng, t: Pick<CorpusTable, 'data' | 'trace'>): { data: Uint8Array; how: string } {
  let data: Uint8Array = t.data.slice();
  const hows: string[] = [];
  const rounds = 1 + rng.int(3);
  for (let k = 0; k < rounds; k++) {
    const m = rng.int(9);
    const view = (): DataView => new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (m === 0 && data.length > 0) {
      const bits = 1 + rng.int(8);
      for (let i = 0; i < bits; i++) data[rng.int(data.length)]! ^= 1 << rng.int(8);
      hows.push(`flip ${bits} bits`);
    } else if (m === 1 && data.length > 0) {
      const at = rng.int(data.length);
      data[at] = rng.pick(INTERESTING);
      hows.push(`byte ${at}=${data[at]}`);
    } else if (m === 2) {
      const len = rng.chance(0.3) ? rng.int(Math.min(48, data.length + 1)) : rng.int(data.length + 1);
      data = data.slice(0, len);
      hows.push(`truncate to ${len}`);
    } else if (m === 3) {
      const extra = new Uint8Array(1 + rng.int(64)).map(() => (rng.chance(0.5) ? 0 : rng.int(256)));
      const out = new Uint8Array(data.length + extra.length);
      out.set(data);
      out.set(extra, data.length);
      data = out;
      hows.push(`extend by ${extra.length}`);
    } else if (m === 4 && data.length >= 8) {
      const lie = rng.pick([0, 1, 8, 35, 36, data.length - 1, data.length + 1, data.length * 2, 0xffffffff, rng.int(0x10000)]);
      view().setUint32(4, lie >>> 0, true);
      hows.push(`length field=${lie >>> 0}`);
    } else if (m <= 7 && t.trace.length > 0) {
      // Aim at what the decoder trusts: lengths, counts, types.
      const aimed = t.trace.filter((e) => /(length|Length|Count|uid|type|Type)$/.test(e.path) && e.offset + e.size <= data.length);
      const e = aimed.length > 0 && rng.chance(0.8) ? rng.pick(aimed) : rng.pick(t.trace);
      if (e.offset + Math.min(e.size, 8) > data.length) continue;
      const size = Math.min(e.size, 8);
      const value = rng.pick([0, 1, 2, 3, 4, 5, 0x7f, 0xff, 0xffff, 0xffffffff, rng.int(0x100)]);
      for (let i = 0; i < size; i++) data[e.offset + i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
      hows.push(`${e.path}=${value}`);
    } else if (data.length > 0) {
      // Splice: repeat a chunk of the table inside itself (nested structures, duplicated entries).
      const from = rng.int(data.length);
      const len = 1 + rng.int(Math.min(64, data.length - from));
      const at = rng.int(data.length + 1);
      const out = new Uint8Array(data.length + len);
      out.set(data.subarray(0, at));
      out.set(data.subarray(from, from + len), at);
      out.set(data.subarray(at), at + len);
      data = out;
      hows.push(`splice ${len}@${at}`);
    }
  }
  // Half the time make the outer length and checksum honest, so the mutation reaches the body.
  if (rng.chance(0.5) && data.length >= 36 && !(data[0] === 0x52 && data[1] === 0x53 && data[2] === 0x44 && data[3] === 0x20)) {
    new DataView(data.buffer, data.byteOffset, data.byteLength).setUint32(4, data.length, true);
    if (data.length > 9) setChecksum(data, 9);
    hows.push('fix length+checksum');
  }
  return { data, how: hows.join(', ') };
}

function mutateText(rng: Rng, text: string): { text: string; how: string } {
  const lines = text.split('\n');
  const hows: string[] = [];
  const rounds = 1 + rng.int(3);
  for (let k = 0; k < rounds; k++) {
    if (lines.length === 0) lines.push('');
    const i = rng.int(lines.length);
    const m = rng.int(8);
    if (m === 0) {
      lines.splice(i, 1);
      hows.push(`delete line ${i + 1}`);
    } else if (m === 1) {
      lines.splice(i, 0, lines[i] ?? '');
      hows.push(`duplicate line ${i + 1}`);
    } else if (m === 2 && lines[i]!.length > 0) {
      const s = lines[i]!;
      const at = rng.int(s.length);
      const ch = rng.pick(['Z', ' ', ':', '@', '0', 'F', '\t', 'g', '\u00e9']);
      lines[i] = s.slice(0, at) + ch + s.slice(at + 1);
      hows.push(`char ${i + 1}:${at}=${JSON.stringify(ch)}`);
    } else if (m === 3) {
      lines.splice(i, 0, `${rng.pick(['APIC', 'DMAR', 'SSDT', 'RSD PTR', 'FACS', 'X'])} @ 0x${rng.int(0xffffff).toString(16)}`);
      hows.push(`header at ${i + 1}`);
    } else if (m === 4) {
      const cut = rng.int(text.length);
      lines.length = Math.max(1, Math.floor((cut / text.length) * lines.length));
      hows.push('truncate');
    } else if (m === 5) {
      lines[i] = (lines[i] ?? '').replace(/^(\s+)[0-9A-Fa-f]+:/, (_all, sp: string) => `${sp}${rng.int(0x10000).toString(16).toUpperCase().padStart(4, '0')}:`);
      hows.push(`offset ${i + 1}`);
    } else if (m === 6) {
      lines[i] = (lines[i] ?? '').slice(0, rng.int((lines[i] ?? '').length + 1));
      hows.push(`cut line ${i + 1}`);
    } else {
      const j = rng.int(lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      hows.push(`swap ${i + 1},${j + 1}`);
    }
  }
  const joined = rng.chance(0.1) ? lines.join('\r\n') : lines.join('\n');
  return { text: joined, how: hows.join(', ') };
}

// ---------------------------------------------------------------------------------------------
// Running cases

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Decode, and if that works, check the model's encoding is stable: decode(encode(m)) encodes the same. */
function exerciseTable(data: Uint8Array, input: string): boolean {
  const { table: bytes } = splitTableBytes(data, input);
  const lenient = decodeTableOrRaw(bytes, { input });
  if (lenient.problem !== undefined && tableChecksumOk(bytes) && !sameBytes(encodeTable(lenient.table), bytes)) {
    throw new Error('a malformed table kept raw did not re-encode to its own bytes');
  }
  const model = decodeTable(bytes, { input });
  toJsonValue(model);
  traceTable(model);
  const once = encodeTable(model);
  const twice = encodeTable(decodeTable(once, { input: `${input} (re-encoded)` }));
  if (!sameBytes(once, twice)) throw new Error(`re-encoding is not stable: ${once.length} vs ${twice.length} bytes`);
  if (tableChecksumOk(bytes) && !sameBytes(once, bytes)) throw new Error('a table with a valid checksum did not re-encode to its own bytes');
  return true;
}

let scratch: string | undefined;
function scratchDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'hvmpt-fuzz-acpi-'));
  return scratch;
}

export function cleanupScratch(): void {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** Runs case `index` of `seed`, recording the outcome in `tally`. */
export function runCase(corpus: Corpus, seed: number, index: number, tally: Tally): void {
  const rng = caseRng(seed, index);
  const kind = rng.next();
  let target = '';
  let how = '';
  let input = '';
  try {
    if (kind < 0.8) {
      const t = rng.pick(corpus.tables);
      const m = mutateTable(rng, t);
      target = `table ${t.name}`;
      how = m.how;
      input = toHex(m.data);
      exerciseTable(m.data, t.name);
      tally.decoded++;
    } else if (kind < 0.99) {
      const m = mutateText(rng, rng.pick(corpus.dumps));
      target = 'acpidump text';
      how = m.how;
      input = m.text;
      let ok = 0;
      for (const im of parseAcpidump(m.text, 'fuzz.txt')) {
        try {
          exerciseTable(im.data, im.origin);
          ok++;
        } catch (err) {
          if (!(err instanceof HvmptError)) throw err;
          count(tally, err);
        }
      }
      if (ok > 0) tally.decoded++;
    } else {
      // Through the file readers: a directory (with dynamic/ and data/) and a single .dat file.
      const dir = join(scratchDir(), `case-${index}`);
      mkdirSync(join(dir, 'dynamic'), { recursive: true });
      mkdirSync(join(dir, 'data'), { recursive: true });
      const a = mutateTable(rng, rng.pick(corpus.tables));
      const b = mutateTable(rng, rng.pick(corpus.tables));
      writeFileSync(join(dir, 'APIC'), a.data);
      writeFileSync(join(dir, 'dynamic', 'SSDT9'), b.data);
      writeFileSync(join(dir, 'data', 'BERT'), b.data);
      target = 'directory and .dat readers';
      how = `${a.how} | ${b.how}`;
      input = `${toHex(a.data)} | ${toHex(b.data)}`;
      for (const source of [loadAcpiSource(dir), loadAcpiSource(join(dir, 'APIC'))]) {
        for (const im of source.tables) {
          try {
            exerciseTable(im.data, im.origin);
          } catch (err) {
            if (!(err instanceof HvmptError)) throw err;
            count(tally, err);
          }
        }
      }
      rmSync(dir, { recursive: true, force: true });
      tally.decoded++;
    }
  } catch (err) {
    if (err instanceof HvmptError) {
      count(tally, err);
    } else {
      tally.crashes.push({ index, target, how, error: err instanceof Error ? (err.stack ?? err.message) : String(err), input });
    }
  }
  tally.cases++;
}

/** The acpi-tables campaign, for the shared runner. */
export const ACPI_TABLES_CAMPAIGN: CampaignDefinition<Corpus> = {
  name: 'acpi-tables',
  module: import.meta.url,
  load: loadCorpus,
  runCase,
  finish: cleanupScratch,
};

serveCampaign(ACPI_TABLES_CAMPAIGN);

export async function main(args: readonly string[]): Promise<void> {
  if (!(await campaignMain(ACPI_TABLES_CAMPAIGN, args, defaultFixturesDir()))) process.exitCode = 1;
}
