import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError } from '../src/errors.js';
import { readFactsTar } from '../src/host/facts/archive.js';
import { collectLiveArchive } from '../src/host/facts/collector.js';
import { analyze } from '../src/hw/facts/analyze.js';
import { FactsFiles } from '../src/hw/facts/files.js';
import { readSnapshot } from '../src/hw/facts/snapshot.js';
import { mulberry32 } from '../src/util/rng.js';
import { monitorWindows } from '../src/cli/facts-analysis.js';
import { REPO_ROOT } from '../test/helpers/paths.js';
import { editLine, runMutations, type MutationStats } from './_mutations.js';

/**
 * `npm run fuzz -- host-facts [iterations] [seed]`: real collections (this machine's, taken at
 * the start, and the lab hosts' archives the lab test keeps in .cache/facts/) mutated two ways
 * and read back: the tar bytes themselves (flips, stores, cuts) through the archive reader, and
 * single files of the collection (text edited line by line, binary files flipped, cut or grown,
 * files dropped) through the snapshot reader. Every input must end in a snapshot and an
 * analysis, or a typed HvmptError, within a time bound.
 */

export interface Corpus {
  readonly name: string;
  readonly tar: Uint8Array;
  readonly files: FactsFiles;
}

/** This machine's collection, plus the lab archives a lab test left in .cache/facts. */
export function corpus(): Corpus[] {
  const tar = collectLiveArchive();
  const out: Corpus[] = [{ name: 'this machine', tar, files: readFactsTar(tar, 'this machine') }];
  const cache = join(REPO_ROOT, '.cache', 'facts');
  if (existsSync(cache)) {
    for (const f of readdirSync(cache).filter((n) => n.endsWith('.tar')).sort()) {
      const bytes = new Uint8Array(readFileSync(join(cache, f)));
      out.push({ name: f, tar: bytes, files: readFactsTar(bytes, f) });
    }
  }
  return out;
}

type Input = { readonly kind: 'tar'; readonly bytes: Uint8Array; readonly from: string } | { readonly kind: 'files'; readonly files: Map<string, Uint8Array>; readonly from: string; readonly changed: string };

const enc = new TextEncoder();
const dec = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

function mutateText(text: string, below: (n: number) => number, next: () => number): string {
  const lines = text.split('\n');
  for (let k = 1 + below(4); k > 0; k--) {
    const i = below(Math.max(1, lines.length));
    const l = lines[i] ?? '';
    switch (below(7)) {
      case 0:
        editLine(lines, i, 'char', below, () => String.fromCharCode(32 + below(95)));
        break;
      case 1:
        editLine(lines, i, 'drop', below, () => '');
        break;
      case 2:
        editLine(lines, i, 'repeat', below, () => '');
        break;
      case 3: // a number somewhere becomes huge, negative or hex
        lines[i] = l.replace(/\d+/, ['99999999999999999999', '-1', '0x', 'ffffffffffffffff'][below(4)]!);
        break;
      case 4:
        lines[i] = l.slice(0, below(l.length + 1));
        break;
      case 5:
        lines[i] = l.split(/\s+/).reverse().join(next() < 0.5 ? ' ' : '\t');
        break;
      default:
        lines.splice(i, 0, '\0\x01\xff');
    }
  }
  return lines.join('\n');
}

function mutateBinary(b: Uint8Array, below: (n: number) => number): Uint8Array {
  let out = Uint8Array.from(b);
  switch (below(4)) {
    case 0:
      return out.subarray(0, below(out.length + 1));
    case 1: {
      const grown = new Uint8Array(out.length + 1 + below(5000));
      grown.set(out);
      for (let i = out.length; i < grown.length; i++) grown[i] = below(256);
      return grown;
    }
    default:
      for (let k = 1 + below(8); k > 0 && out.length > 0; k--) {
        const at = below(out.length);
        out[at] = below(3) === 0 ? below(256) : out[at]! ^ (1 << below(8));
      }
      out = out.subarray(0);
      return out;
  }
}

const BINARY = /(\/config|\/rom|acpi\/tables\/.*)$/;

export function fuzzHostFacts(inputs: readonly Corpus[], iterations: number, seed: number): MutationStats {
  const next = mulberry32(seed);
  const below = (n: number): number => Math.floor(next() * n);
  const windows = monitorWindows(1n << 30n);
  const make = (): Input => {
    const src = inputs[below(inputs.length)]!;
    if (below(10) < 3) {
      const bytes = Uint8Array.from(src.tar);
      const end = bytes.length - bytes.slice().reverse().findIndex((b) => b !== 0);
      for (let k = 1 + below(6); k > 0; k--) {
        const at = below(end);
        bytes[at] = below(2) === 0 ? below(256) : bytes[at]! ^ (1 << below(8));
      }
      return { kind: 'tar', bytes: below(4) === 0 ? bytes.subarray(0, below(bytes.length + 1)) : bytes, from: src.name };
    }
    const files = new Map(src.files.paths().map((p) => [p, src.files.bytes(p)!]));
    const paths = [...files.keys()];
    const path = paths[below(paths.length)]!;
    const op = below(10);
    if (op === 0 && path !== 'MANIFEST' && path !== 'collector') {
      // Dropped, and out of the MANIFEST too, so the reader sees a machine that lacked it.
      files.delete(path);
      files.set('MANIFEST', enc.encode(dec(files.get('MANIFEST')!).split('\n').filter((l) => l !== `hvmpt-facts/${path}`).join('\n')));
    } else {
      const b = files.get(path)!;
      files.set(path, BINARY.test(path) ? mutateBinary(b, below) : enc.encode(mutateText(dec(b), below, next)));
    }
    return { kind: 'files', files, from: src.name, changed: path };
  };
  return runMutations<Input>({
    iterations,
    seed,
    budgetMs: 5000,
    make,
    run: (input) => {
      const files = input.kind === 'tar' ? readFactsTar(input.bytes, 'fuzz.tar') : new FactsFiles('fuzz', input.files);
      analyze(readSnapshot(files), { windows, memory: 1n << 30n });
    },
    typed: (err) => err instanceof HvmptError,
    describe: (input) => (input.kind === 'tar' ? `${input.from}: mutated tar of ${input.bytes.length} bytes` : `${input.from}: ${input.changed} changed:\n${Buffer.from(input.files.get(input.changed) ?? new Uint8Array()).toString('latin1').slice(0, 2000)}`),
  });
}

export async function main(args: readonly string[]): Promise<void> {
  const iterations = Number(args[0] ?? 20_000);
  const seed = Number(args[1] ?? Date.now() % 1_000_000);
  const inputs = corpus();
  const stats = fuzzHostFacts(inputs, iterations, seed);
  process.stdout.write(
    `seed: ${seed}\ncorpus: ${inputs.map((c) => c.name).join(', ')}\ninputs: ${stats.inputs}\nread and analyzed: ${stats.accepted}\nrejected (typed errors): ${stats.rejected}\nslowest ms: ${stats.slowestMs.toFixed(2)}\n`,
  );
}
