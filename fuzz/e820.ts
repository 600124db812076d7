import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeE820 } from '../src/hw/mem/e820.js';
import { formatLinux, formatXen } from '../src/hw/mem/e820-format.js';
import { E820ParseError, parseE820Text, selectMap } from '../src/hw/mem/e820-parse.js';
import { mulberry32 } from '../src/util/rng.js';
import { runMutations, type MutationStats } from './_mutations.js';

/**
 * `npm run fuzz -- e820 [iterations] [seed]`: mutates the real boot logs in ../shared/fixtures/dmesg
 * (and hvmpt's own outputs) and feeds them to the E820 parsers. Each input must end in maps or
 * an E820ParseError, within a time bound; anything else is printed with the seed to replay it.
 */
const rng = mulberry32;

const TOKENS = ['BIOS-e820: ', '[mem ', '0x', '-', ' - ', '] ', '(usable)', 'ACPI NVS', 'type 4294967296', '(XEN) ', '[', ', ', 'ffffffffffffffff', '00000000', '\n', ' : System RAM', 'memmap/1/end:', '{"entries":[', '\0', 'user: ', '(1:1)'];

function mutate(text: string, next: () => number): string {
  let s = text;
  const edits = 1 + Math.floor(next() * 8);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * (s.length + 1));
    const kind = Math.floor(next() * 6);
    if (kind === 0) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(next() * 40));
    else if (kind === 1) s = s.slice(0, at) + TOKENS[Math.floor(next() * TOKENS.length)] + s.slice(at);
    else if (kind === 2) s = s.slice(0, at) + String.fromCharCode(Math.floor(next() * 128)) + s.slice(at + 1);
    else if (kind === 3) {
      const from = Math.floor(next() * s.length);
      s = s.slice(0, at) + s.slice(from, from + Math.floor(next() * 200)) + s.slice(at);
    } else if (kind === 4) s = s.slice(0, at).replace(/[0-9a-f](?=[^0-9a-f]*$)/, (c) => (parseInt(c, 16) ^ 0xf).toString(16)) + s.slice(at);
    else s = s.slice(0, at);
  }
  return s;
}

export function corpus(fixtureDir: string): string[] {
  const logs = readdirSync(fixtureDir)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => readFileSync(join(fixtureDir, f), 'utf8'));
  // hvmpt's own outputs of the first map, in every format it prints, join the corpus.
  const first = normalizeE820(selectMap(parseE820Text(logs.find((l) => l.includes('BIOS-e820'))!, 'seed'), 'seed').entries).map;
  return [...logs, formatLinux(first), formatXen(first, { header: ['Xen-e820 RAM map:'] }), JSON.stringify({ entries: first.entries.map((e) => ({ start: '0x' + e.start.toString(16), end: '0x' + e.end.toString(16), type: e.type })) })];
}

/** Runs `iterations` mutated inputs; throws on the first that misbehaves. */
export function fuzzE820(texts: readonly string[], iterations: number, seed: number): MutationStats {
  const next = rng(seed);
  return runMutations({
    iterations,
    seed,
    budgetMs: 2000,
    make: () => mutate(texts[Math.floor(next() * texts.length)]!, next),
    run: (input) => {
      for (const m of parseE820Text(input, 'fuzz').maps) {
        const n = normalizeE820(m.entries);
        formatLinux(n.map);
        formatXen(n.map);
      }
    },
    typed: (err) => err instanceof E820ParseError,
    describe: (input) => JSON.stringify(input.slice(0, 2000)),
  });
}

export async function main(args: readonly string[]): Promise<void> {
  const iterations = Number(args[0] ?? 100_000);
  const seed = Number(args[1] ?? Date.now() % 1_000_000);
  const here = fileURLToPath(new URL('.', import.meta.url));
  const fixtures = resolve(here, '..', '..', '..', 'shared', 'fixtures', 'dmesg');
  const stats = fuzzE820(corpus(fixtures), iterations, seed);
  process.stdout.write(`seed: ${seed}\ninputs: ${stats.inputs}\nparsed: ${stats.accepted}\nrejected (E820ParseError): ${stats.rejected}\nslowest ms: ${stats.slowestMs.toFixed(2)}\n`);
}
