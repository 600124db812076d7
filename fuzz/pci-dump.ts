import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HvmptError } from '../src/errors.js';
import { parseLspciDump } from '../src/host/pci/lspci-dump.js';
import { parseConfigBinary } from '../src/host/pci/sysfs.js';
import { composePci } from '../src/hw/pci/compose.js';
import { viewJson, writeLspciDump, writeTree } from '../src/hw/pci/view.js';
import { fixture } from '../test/helpers/paths.js';
import { mulberry32 } from '../src/util/rng.js';
import { editLine } from './_mutations.js';

/**
 * Mutated real dumps fed to the PCI readers and then to composition and every writer: each
 * input must end in a value or a typed HvmptError, never another exception, and quickly.
 * `npm run fuzz -- pci-dump [iterations] [seed]`; the test suite runs a small sample.
 */

const prng = mulberry32;

const HEX = '0123456789abcdef';

function mutateText(text: string, rnd: () => number): string {
  const int = (n: number): number => Math.floor(rnd() * n);
  let lines = text.split('\n');
  const rounds = 1 + int(6);
  for (let r = 0; r < rounds; r++) {
    const i = int(Math.max(1, lines.length));
    switch (int(10)) {
      case 0: // flip one character of a line to a hex digit or something else
      case 1:
        editLine(lines, i, 'char', int, () => (rnd() < 0.7 ? HEX[int(16)]! : String.fromCharCode(32 + int(95))));
        break;
      case 2:
        editLine(lines, i, 'drop', int, () => '');
        break;
      case 3:
        editLine(lines, i, 'repeat', int, () => '');
        break;
      case 4: {
        const j = int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        break;
      }
      case 5: // a hex line at a random offset
        lines.splice(i, 0, `${int(0x12000).toString(16)}: ${Array.from({ length: int(20) }, () => HEX[int(16)]! + HEX[int(16)]!).join(' ')}`);
        break;
      case 6: // a device header with a random address
        lines.splice(i, 0, `${rnd() < 0.5 ? `${int(0x10000).toString(16).padStart(4, '0')}:` : ''}${int(256).toString(16).padStart(2, '0')}:${int(32).toString(16).padStart(2, '0')}.${int(8)} Fuzzed device`);
        break;
      case 7: // truncate
        lines = lines.slice(0, i);
        break;
      case 8: // bridge registers: point secondary/subordinate buses somewhere random
        {
          const k = lines.findIndex((l, n) => n >= i && l.startsWith('10: '));
          if (k >= 0) {
            const b = lines[k]!.split(' ');
            if (b.length >= 12) {
              b[10] = int(256).toString(16).padStart(2, '0');
              b[11] = int(256).toString(16).padStart(2, '0');
              lines[k] = b.join(' ');
            }
          }
        }
        break;
      case 9: // a Region line with a size, right or wrong
        lines.splice(i, 0, `\tRegion ${int(8)}: Memory at ${int(0xffffffff).toString(16)} (32-bit, non-prefetchable) [size=${int(5000)}${['', 'K', 'M', 'G'][int(4)]}]`);
        break;
    }
  }
  return lines.join(rnd() < 0.1 ? '\r\n' : '\n');
}

export interface FuzzReport {
  readonly iterations: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly failures: ReadonlyArray<{ readonly input: string; readonly error: string }>;
  readonly slowestMs: number;
}

/** Runs `iterations` mutated inputs; failures are inputs that crashed (not a typed error) or took over `budgetMs`. */
export function fuzzPciDumps(iterations: number, seed: number, budgetMs = 2000): FuzzReport {
  const rnd = prng(seed);
  const dir = fixture('pci', 'pciutils-tests');
  const texts = readdirSync(dir).sort().map((f) => readFileSync(join(dir, f), 'utf8'));
  const failures: Array<{ input: string; error: string }> = [];
  let accepted = 0;
  let rejected = 0;
  let slowestMs = 0;
  for (let n = 0; n < iterations; n++) {
    const original = texts[Math.floor(rnd() * texts.length)]!;
    const binary = rnd() < 0.2;
    const input = binary ? '' : mutateText(original, rnd);
    const start = performance.now();
    try {
      let capture;
      if (binary) {
        // A raw config space: random length, random bytes around a real header.
        const len = Math.floor(rnd() * 4200);
        const bytes = new Uint8Array(len);
        for (let i = 0; i < len; i++) bytes[i] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 256);
        bytes[0x06] = 0x10;
        capture = { source: 'fuzz', withDomains: false, functions: [{ bdf: { segment: 0, bus: 0, device: 0, fn: 0 }, bytes: parseConfigBinary(bytes, 'fuzz'), barSizes: new Map<number, bigint>(), description: '', at: 'fuzz' }] };
      } else {
        capture = parseLspciDump(input, 'fuzz');
      }
      const composed = composePci({ base: capture, unknownBarSize: rnd() < 0.5 ? 'alignment' : 'fixed' }, 'fuzz');
      writeLspciDump(composed);
      writeTree(composed);
      JSON.stringify(viewJson(composed));
      accepted++;
    } catch (err) {
      if (err instanceof HvmptError) rejected++;
      else failures.push({ input: binary ? '(binary)' : input, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
    const ms = performance.now() - start;
    slowestMs = Math.max(slowestMs, ms);
    if (ms > budgetMs) failures.push({ input, error: `took ${ms.toFixed(0)} ms` });
  }
  return { iterations, accepted, rejected, failures, slowestMs };
}

export async function main(args: readonly string[]): Promise<void> {
  const iterations = Number(args[0] ?? 20000);
  const seed = Number(args[1] ?? Date.now() % 0x7fffffff);
  const r = fuzzPciDumps(iterations, seed);
  process.stdout.write(
    [`seed: ${seed}`, `iterations: ${r.iterations}`, `accepted: ${r.accepted}`, `rejected_with_typed_error: ${r.rejected}`, `failures: ${r.failures.length}`, `slowest_ms: ${r.slowestMs.toFixed(1)}`].join('\n') + '\n',
  );
  if (r.failures.length > 0) {
    const file = `pci-dump-fuzz-failure-${seed}.txt`;
    writeFileSync(file, `${r.failures[0]!.error}\n\n${r.failures[0]!.input}`);
    process.stdout.write(`first failure written to ${file}\n`);
    process.exitCode = 1;
  }
}
