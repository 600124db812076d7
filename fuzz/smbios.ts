import { decodeEntryPoint, decodeStructures, guestSmbios, SmbiosDecodeError, structureString, type EncodedSmbios } from '../src/hw/smbios/index.js';
import { mulberry32 } from '../src/util/rng.js';

/**
 * `npm run fuzz -- smbios [iterations] [seed]`: mutates SMBIOS tables hvmpt generates (several
 * machines: one to many vCPUs, RAM below and above 4 GiB and past 2 TiB, long strings) with bit
 * flips, byte stores, truncation and lying length fields, and decodes them. Each input must end
 * in structures or a SmbiosDecodeError, within a time bound.
 */
export interface FuzzStats {
  readonly inputs: number;
  readonly decoded: number;
  readonly rejected: number;
  readonly slowestMs: number;
}

const GiB = 1n << 30n;

export function corpus(): EncodedSmbios[] {
  return [
    guestSmbios({ cpus: 1, ram: [{ start: 0n, end: 0xa0000n }, { start: 0x10_0000n, end: 0x800_0000n }] }),
    guestSmbios({ cpus: 8, ram: [{ start: 0n, end: 2n * GiB }, { start: 4n * GiB, end: 40n * GiB }], manufacturer: 'A'.repeat(64), product: 'p', serial: 'S/N 1', cpuMhz: 3000 }),
    guestSmbios({ cpus: 2, ram: [{ start: 0n, end: 3n * GiB }, { start: 4n * GiB, end: 2100n * GiB }], uuid: Uint8Array.from({ length: 16 }, (_, i) => i * 17) }),
  ];
}

export function fuzzSmbios(inputs: readonly EncodedSmbios[], iterations: number, seed: number): FuzzStats {
  const next = mulberry32(seed);
  const below = (n: number): number => Math.floor(next() * n);
  let decoded = 0;
  let rejected = 0;
  let slowestMs = 0;
  for (let i = 0; i < iterations; i++) {
    const src = inputs[below(inputs.length)]!;
    const anchor = Uint8Array.from(src.anchor);
    let tables = Uint8Array.from(src.tables);
    const target = below(4) === 0 ? anchor : tables;
    for (let k = 1 + below(6); k > 0; k--) {
      const at = below(target.length);
      const kind = below(4);
      if (kind === 0) target[at]! ^= 1 << below(8);
      else if (kind === 1) target[at] = below(256);
      // A structure's length byte: 0, small, or past the end.
      else if (kind === 2 && target === tables) target[at] = [0, 1, 3, 4, 0xff][below(5)]!;
      else target[at] = 0;
    }
    if (below(3) === 0) tables = tables.subarray(0, below(tables.length + 1));
    const started = performance.now();
    try {
      decodeEntryPoint(anchor, 'fuzz anchor');
      for (const s of decodeStructures(tables, 'fuzz table')) for (let o = 4; o < s.formatted.length; o++) structureString(s, o);
      decoded++;
    } catch (err) {
      if (!(err instanceof SmbiosDecodeError)) throw new Error(`iteration ${i} (seed ${seed}) threw ${String(err)}`);
      rejected++;
    }
    const ms = performance.now() - started;
    if (ms > slowestMs) slowestMs = ms;
    if (ms > 1000) throw new Error(`iteration ${i} (seed ${seed}) took ${ms.toFixed(0)} ms`);
  }
  return { inputs: iterations, decoded, rejected, slowestMs };
}

export async function main(args: readonly string[]): Promise<void> {
  const iterations = Number(args[0] ?? 100_000);
  const seed = Number(args[1] ?? Date.now() % 1_000_000);
  const stats = fuzzSmbios(corpus(), iterations, seed);
  process.stdout.write(`seed: ${seed}\ninputs: ${stats.inputs}\ndecoded: ${stats.decoded}\nrejected (SmbiosDecodeError): ${stats.rejected}\nslowest ms: ${stats.slowestMs.toFixed(2)}\n`);
}
