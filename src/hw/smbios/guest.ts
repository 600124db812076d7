import { cpuTopology } from '../cpu/topology.js';
import { encodeSmbios, FIRST_HANDLE, type EncodedSmbios } from './encode.js';
import type { SmbiosStructure } from './structures.js';

/** What the guest's SMBIOS says; everything but `cpus` and `ram` has a default. */
export interface SmbiosFacts {
  /** vCPUs, laid out as `cpuTopology` says: one processor structure per package. */
  readonly cpus: number;
  /** The guest's RAM ranges, [start, end) in bytes. */
  readonly ram: ReadonlyArray<{ readonly start: bigint; readonly end: bigint }>;
  readonly manufacturer?: string;
  readonly product?: string;
  readonly version?: string;
  readonly serial?: string;
  /** 16 bytes; default all zero (no UUID set). */
  readonly uuid?: Uint8Array;
  readonly family?: string;
  /** MHz the processor structures report; default 0 (unknown). */
  readonly cpuMhz?: number;
}

/** A UUID's 16 bytes from its text form (`4c4c4544-0031-...`, as the plan checks it), in text order. */
export function uuidFromText(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/-/g, '').match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Each memory device covers at most this much, as on QEMU's PCs. */
const DIMM_MAX = 16n << 30n;
const MiB = 1n << 20n;

/**
 * The guest's SMBIOS: system, chassis, one processor per package (its cores are the vCPUs), a memory array with its devices
 * and one mapped-address structure per RAM range, boot status, end. Memory devices add up to
 * the RAM (rounded up to MiB), in pieces of at most 16 GiB.
 */
export function guestSmbiosStructures(facts: SmbiosFacts): SmbiosStructure[] {
  let handle = FIRST_HANDLE;
  const next = (): number => handle++;
  const manufacturer = facts.manufacturer ?? 'hvmpt';
  const out: SmbiosStructure[] = [
    {
      type: 1,
      handle: next(),
      manufacturer,
      product: facts.product ?? 'hvmpt guest',
      version: facts.version ?? '',
      serial: facts.serial ?? '',
      uuid: facts.uuid ?? new Uint8Array(16),
      sku: '',
      family: facts.family ?? '',
    },
    { type: 3, handle: next(), manufacturer, chassisType: 0x01, version: facts.version ?? '', serial: '', assetTag: '' },
  ];
  const topo = cpuTopology(facts.cpus);
  for (let i = 0; i < topo.packages; i++) {
    const cores = topo.coresPerPackage;
    out.push({ type: 4, handle: next(), socket: `CPU ${i}`, manufacturer, version: '', maxSpeed: facts.cpuMhz ?? 0, currentSpeed: facts.cpuMhz ?? 0, cores, threads: topo.logicalPerPackage });
  }
  const total = facts.ram.reduce((n, r) => n + (r.end - r.start), 0n);
  const rounded = ((total + MiB - 1n) / MiB) * MiB;
  const sizes: bigint[] = [];
  for (let left = rounded; left > 0n; left -= left < DIMM_MAX ? left : DIMM_MAX) sizes.push(left < DIMM_MAX ? left : DIMM_MAX);
  const array = next();
  out.push({ type: 16, handle: array, maximumCapacity: rounded, devices: sizes.length });
  sizes.forEach((size, i) => out.push({ type: 17, handle: next(), arrayHandle: array, size, locator: `DIMM ${i}`, manufacturer }));
  for (const r of facts.ram) {
    // KiB granularity: SMBIOS cannot say less.
    const start = (r.start / 1024n) * 1024n;
    const end = ((r.end + 1023n) / 1024n) * 1024n;
    out.push({ type: 19, handle: next(), arrayHandle: array, start, end, partitionWidth: 1 });
  }
  out.push({ type: 32, handle: next(), status: 0 });
  out.push({ type: 127, handle: next() });
  return out;
}

/** The fw_cfg files SeaBIOS (and QEMU's other firmware) read SMBIOS from. */
export const SMBIOS_FILES = { anchor: 'etc/smbios/smbios-anchor', tables: 'etc/smbios/smbios-tables' } as const;

export function guestSmbios(facts: SmbiosFacts): EncodedSmbios {
  return encodeSmbios(guestSmbiosStructures(facts));
}
