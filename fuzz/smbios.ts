import { decodeEntryPoint, decodeStructures, guestSmbios, SmbiosDecodeError, structureString, type EncodedSmbios } from '../src/hw/smbios/index.js';
import { mulberry32 } from '../src/util/rng.js';
import { runMutations, type MutationStats } from './_mutations.js';

/**
 * `npm run fuzz -- smbios [iterations] [seed]`: mutates SMBIOS tables hvmpt generates (several
 * machines: one to many vCPUs, RAM below and above 4 GiB and past 2 TiB, long strings) with bit
 * flips, byte stores, truncation and lying length fields, and decodes them. Each input must end
 * in structures or a SmbiosDecodeError, within a time bound.
 */
const GiB = 1n << 30n;

export function corpus(): EncodedSmbios[] {
  return [
    guestSmbios({ cpus: 1, ram: [{ start: 0n, end: 0xa0000n }, { start: 0x10_0000n, end: 0x800_0000n }] }),
    guestSmbios({ cpus: 8, ram: [{ start: 0n, end: 2n * GiB }, { start: 4n * GiB, end: 40n * GiB }], manufacturer: 'A'.repeat(64), product: 'p', serial: 'S/N 1', cpuMhz: 3000 }),
    guestSmbios({ cpus: 2, ram: [{ start: 0n, end: 3n * GiB }, { start: 4n * GiB, end: 2100n * GiB }], uuid: Uint8Array.from({ length: 16 }, (_, i) => i * 17) }),
  ];
}

export function fuzzSmbios(inputs: readonly EncodedSmbios[], iterations: number, seed: number): MutationStats {
  const next = mulberry32(seed);
  const below = (n: number): number => Math.floor(next() * n);
  const make = (): { anchor: Uint8Array; tables: Uint8Array } => {
    const src = inputs[below(inputs.length)]!;
    const anchor = Uint8Array.from(src.anchor);
    const tables = Uint8Array.from(src.tables);
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
    return { anchor, tables: below(3) === 0 ? tables.subarray(0, below(tables.length + 1)) : tables };
  };
  return runMutations({
    iterations,
    seed,
    budgetMs: 1000,
    make,
    run: ({ anchor, tables }) => {
      decodeEntryPoint(anchor, 'fuzz anchor');
      for (const s of decodeStructures(tables, 'fuzz table')) for (let o = 4; o < s.formatted.length; o++) structureString(s, o);
    },
    typed: (err) => err instanceof SmbiosDecodeError,
    describe: ({ anchor, tables }) => `anchor ${Buffer.from(anchor).toString('hex')}\ntables ${Buffer.from(tables).toString('hex').slice(0, 4000)}`,
  });
}

export async function main(args: readonly string[]): Promise<void> {
  const iterations = Number(args[0] ?? 100_000);
  const seed = Number(args[1] ?? Date.now() % 1_000_000);
  const stats = fuzzSmbios(corpus(), iterations, seed);
  process.stdout.write(`seed: ${seed}\ninputs: ${stats.inputs}\ndecoded: ${stats.accepted}\nrejected (SmbiosDecodeError): ${stats.rejected}\nslowest ms: ${stats.slowestMs.toFixed(2)}\n`);
}
