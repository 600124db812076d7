import { SingleBar } from 'cli-progress';
import { encodeAml } from '../src/hw/acpi/aml/encode.js';
import { AmlDepthError, AmlParseError } from '../src/hw/acpi/aml/errors.js';
import { parseAml, type AmlTree } from '../src/hw/acpi/aml/parse.js';
import { visitTerms } from '../src/hw/acpi/aml/walk.js';
import { readResources } from '../src/hw/acpi/namespace/crs.js';
import { AcpiNamespace } from '../src/hw/acpi/namespace/namespace.js';
import { readPrt } from '../src/hw/acpi/namespace/prt.js';
import { decodeResources, encodeResources, ResourceError } from '../src/hw/acpi/resources/codec.js';
import { allMachines, HEADER_LENGTH } from '../test/acpi/aml/fixtures.js';
import { Rng } from '../src/util/rng.js';

/**
 * `npm run fuzz -- aml [--iterations N] [--seed S] [--max-bytes B]`: mutations of every fixture
 * DSDT/SSDT (bit flips, byte changes, insertions, truncation, lying PkgLengths, spliced
 * chunks, deep nesting built on purpose) fed to the AML parser, and whatever parses fed on to
 * the encoder, the namespace queries and the resource codec. Every input must end in a value
 * or a typed error (AmlParseError naming the table and an offset inside it, ResourceError);
 * anything else is a crash, and any input taking longer than the hang bound is a hang. A
 * successful parse must also re-encode to the mutated bytes exactly.
 */

export interface CorpusEntry {
  readonly label: string;
  readonly body: Uint8Array;
}

export interface CampaignOptions {
  readonly iterations: number;
  readonly seed: number;
  /** An input taking longer than this (ms) counts as a hang. */
  readonly hangMs?: number;
  readonly onProgress?: (done: number) => void;
}

export interface Finding {
  readonly kind: 'crash' | 'hang' | 'round-trip' | 'bad-error';
  readonly mutation: string;
  readonly label: string;
  readonly detail: string;
  /** The input, hex, so the finding can be replayed. */
  readonly input: string;
}

export interface CampaignResult {
  readonly iterations: number;
  readonly parsed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly mutations: Readonly<Record<string, number>>;
  readonly findings: readonly Finding[];
  readonly slowestMs: number;
  readonly elapsedMs: number;
  readonly bytes: number;
}

/** Concatenates byte arrays (spreading large arrays into literals is slow). */
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Nesting built on purpose: far deeper than any real table, to hit the depth bound. */
export function deepNesting(kind: 'scope' | 'if' | 'package' | 'lnot' | 'call-args', depth: number): Uint8Array {
  if (kind === 'lnot') return Uint8Array.from([...new Array<number>(depth).fill(0x92), 0x01]);
  if (kind === 'call-args') {
    // Add (Add (Add (... One ...), One, NullName), One, NullName) ...
    const out = new Array<number>(depth).fill(0x72);
    out.push(0x01);
    for (let i = 0; i < depth; i++) out.push(0x01, 0x00);
    return Uint8Array.from(out);
  }
  // Objects with a 4-byte PkgLength, written from the innermost outwards.
  const tail = kind === 'scope' ? [0x5c, 0x00] : [0x01];
  const op = kind === 'scope' ? 0x10 : kind === 'if' ? 0xa0 : 0x12;
  const level = 1 + 4 + tail.length;
  const out = new Uint8Array(depth * level);
  for (let i = 0; i < depth; i++) {
    const at = out.length - (i + 1) * level;
    const v = out.length - at - 1; // PkgLength counts itself and everything after it
    out.set([op, 0xc0 | (v & 0x0f), (v >> 4) & 0xff, (v >> 12) & 0xff, (v >> 20) & 0xff, ...tail], at);
  }
  return out;
}

const PKG_OPS = new Set([0x10, 0x11, 0x12, 0x13, 0x14, 0xa0, 0xa1, 0xa2]);
const EXT_PKG_OPS = new Set([0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87]);
const INTERESTING = [0x00, 0x01, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x10, 0x11, 0x12, 0x14, 0x2e, 0x2f, 0x5b, 0x5c, 0x5e, 0x70, 0xa0, 0xa1, 0xa4, 0xff];

type Mutator = (rng: Rng, body: Uint8Array) => Uint8Array;

const MUTATORS: Readonly<Record<string, Mutator>> = {
  bitflip: (rng, body) => {
    const out = body.slice();
    const flips = 1 + rng.below(8);
    for (let i = 0; i < flips && out.length > 0; i++) out[rng.below(out.length)]! ^= 1 << rng.below(8);
    return out;
  },
  byte: (rng, body) => {
    const out = body.slice();
    if (out.length > 0) out[rng.below(out.length)] = rng.below(2) === 0 ? rng.pick(INTERESTING) : rng.below(256);
    return out;
  },
  insert: (rng, body) => {
    const at = rng.below(body.length + 1);
    const add = Array.from({ length: 1 + rng.below(4) }, () => rng.pick(INTERESTING));
    return concat(body.subarray(0, at), Uint8Array.from(add), body.subarray(at));
  },
  truncate: (rng, body) => body.slice(0, rng.below(body.length)),
  'lying-pkglength': (rng, body) => {
    const out = body.slice();
    // Find an object with a PkgLength, starting the search at a random place.
    const start = rng.below(out.length);
    for (let k = 0; k < out.length; k++) {
      const i = (start + k) % out.length;
      const at = PKG_OPS.has(out[i]!) ? i + 1 : out[i] === 0x5b && EXT_PKG_OPS.has(out[i + 1] ?? 0) ? i + 2 : -1;
      if (at < 0 || at >= out.length) continue;
      const width = (out[at]! >> 6) + 1;
      const choice = rng.below(4);
      if (choice === 0) out[at] = rng.below(256); // any lead byte, possibly a different width
      else if (choice === 1) for (let j = 1; j < width && at + j < out.length; j++) out[at + j] = 0xff; // far too long
      else if (choice === 2) out[at] = (out[at]! & 0xc0) | 0x01; // shorter than its own encoding
      else out[at] = (out[at]! & 0xc0) | ((out[at]! + 1 + rng.below(16)) & 0x0f); // a few bytes off
      return out;
    }
    return out;
  },
  splice: (rng, body) => {
    if (body.length < 2) return body.slice();
    const from = rng.below(body.length);
    const len = 1 + rng.below(Math.min(64, body.length - from));
    const to = rng.below(body.length);
    return concat(body.subarray(0, to), body.subarray(from, from + len), body.subarray(to));
  },
  'deep-nesting': (rng, body) => {
    const deep = deepNesting(rng.pick(['scope', 'if', 'package', 'lnot', 'call-args'] as const), 200 + rng.below(4000));
    if (rng.below(2) === 0) return deep;
    const at = rng.below(body.length + 1);
    return concat(body.subarray(0, at), deep, body.subarray(at));
  },
};

const WEIGHTED = ['bitflip', 'bitflip', 'bitflip', 'byte', 'byte', 'insert', 'truncate', 'lying-pkglength', 'lying-pkglength', 'splice', 'deep-nesting'];

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Everything downstream of a successful parse: encoder, namespace queries, resource codec. */
function exercise(tree: AmlTree, input: Uint8Array, fail: (kind: Finding['kind'], detail: string) => void): void {
  const out = encodeAml(tree.terms);
  if (out.length !== input.length || !out.every((v, i) => v === input[i])) fail('round-trip', 're-encoding differs from the parsed bytes');
  visitTerms(tree.terms, (t) => {
    if (t.kind !== 'Buffer') return;
    try {
      const r = decodeResources(t.data);
      const again = encodeResources(r);
      if (again.length !== t.data.length || !again.every((v, i) => v === t.data[i])) fail('round-trip', 'resource template re-encoding differs');
    } catch (err) {
      if (!(err instanceof ResourceError)) throw err;
    }
  });
  const ns = AcpiNamespace.build([tree]);
  for (const n of ns.nodes()) {
    if (n.kind !== 'Device') continue;
    readPrt(ns, n);
    for (const obj of ['_CRS', '_PRS']) {
      try {
        readResources(ns, n, obj);
      } catch (err) {
        if (!(err instanceof ResourceError)) throw err;
      }
    }
    ns.hid(n);
    ns.cids(n);
    ns.adr(n);
  }
}

export function runCampaign(corpus: readonly CorpusEntry[], options: CampaignOptions): CampaignResult {
  const rng = new Rng(options.seed);
  const hangMs = options.hangMs ?? 2000;
  const errors: Record<string, number> = {};
  const mutations: Record<string, number> = {};
  const findings: Finding[] = [];
  let parsed = 0;
  let slowestMs = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < options.iterations; i++) {
    const base = rng.pick(corpus);
    const name = rng.pick(WEIGHTED);
    const input = MUTATORS[name]!(rng, base.body);
    mutations[name] = (mutations[name] ?? 0) + 1;
    bytes += input.length;
    const fail = (kind: Finding['kind'], detail: string) => {
      if (findings.length < 50) findings.push({ kind, mutation: name, label: base.label, detail, input: hex(input) });
    };
    const start = performance.now();
    try {
      const tree = parseAml(input, { table: base.label, baseOffset: HEADER_LENGTH });
      parsed++;
      exercise(tree, input, fail);
    } catch (err) {
      if (err instanceof AmlParseError) {
        const kind = err instanceof AmlDepthError ? 'AmlDepthError' : 'AmlParseError';
        errors[kind] = (errors[kind] ?? 0) + 1;
        const inside = err.offset >= HEADER_LENGTH && err.offset <= HEADER_LENGTH + input.length;
        if (err.table !== base.label || !inside || !err.message.startsWith(`${base.label}: offset 0x`)) {
          fail('bad-error', `${err.message} (offset ${err.offset}, input ${input.length} bytes)`);
        }
      } else if (err instanceof ResourceError) {
        errors.ResourceError = (errors.ResourceError ?? 0) + 1;
      } else {
        fail('crash', err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err));
      }
    }
    const ms = performance.now() - start;
    slowestMs = Math.max(slowestMs, ms);
    if (ms > hangMs) fail('hang', `took ${ms.toFixed(0)} ms`);
    options.onProgress?.(i + 1);
  }
  return { iterations: options.iterations, parsed, errors, mutations, findings, slowestMs, elapsedMs: performance.now() - t0, bytes };
}

/** The fixture DSDTs and SSDTs (extracted by acpixtract), optionally only the small ones. */
export function fixtureCorpus(maxBytes = Infinity): CorpusEntry[] {
  return allMachines().flatMap((m) =>
    m.tables.filter((t) => t.body.length <= maxBytes).map((t) => ({ label: `${m.name}/${t.label}`, body: t.body })),
  );
}

function flag(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
  return v;
}

export async function main(args: readonly string[]): Promise<void> {
  if (args.includes('--help')) {
    process.stdout.write('usage: npm run fuzz -- aml [--iterations N (100000)] [--seed S (random)] [--max-bytes B (all tables)]\n');
    return;
  }
  const iterations = flag(args, '--iterations', 100_000);
  const seed = flag(args, '--seed', Date.now() >>> 0);
  const corpus = fixtureCorpus(flag(args, '--max-bytes', Infinity));
  process.stdout.write(`aml fuzz: ${iterations} mutations of ${corpus.length} fixture tables, seed ${seed}\n`);
  const bar = new SingleBar({ format: 'aml fuzz [{bar}] {value}/{total} {eta_formatted} left', stream: process.stderr });
  bar.start(iterations, 0);
  const r = runCampaign(corpus, { iterations, seed, onProgress: (n) => n % 500 === 0 && bar.update(n) });
  bar.update(iterations);
  bar.stop();
  const out = [
    `iterations: ${r.iterations}`,
    `parsed: ${r.parsed}`,
    ...Object.entries(r.errors).map(([k, v]) => `typed ${k}: ${v}`),
    ...Object.entries(r.mutations).map(([k, v]) => `mutation ${k}: ${v}`),
    `findings: ${r.findings.length}`,
    `slowest input ms: ${r.slowestMs.toFixed(1)}`,
    `elapsed s: ${(r.elapsedMs / 1000).toFixed(1)}`,
    `throughput MB/s: ${(r.bytes / 1e6 / (r.elapsedMs / 1000)).toFixed(1)}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  for (const f of r.findings.slice(0, 10)) {
    process.stdout.write(`\n${f.kind} (${f.mutation} of ${f.label}): ${f.detail}\ninput: ${f.input.slice(0, 400)}${f.input.length > 400 ? '...' : ''}\n`);
  }
  if (r.findings.length > 0) process.exitCode = 1;
}
