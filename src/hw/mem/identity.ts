/**
 * The identity (1:1) planner. Without an IOMMU a passed-through device DMAs to machine
 * addresses, so a guest must see guest frame == machine frame: its RAM is a region carved out
 * of the host's RAM at boot. Given the host's map and a request, this chooses the region(s),
 * and derives the host map after the carve, the host kernel parameters that make it real,
 * each guest's E820 and each guest's protection map.
 */
import { HvmptError } from '../../errors.js';
import { normalizeE820, rangesOfType, totalOfType, type E820Entry, type E820Map } from './e820.js';
import { mergeAdjacent, removeRanges, setRangesType } from './e820-edit.js';
import { carveParams, escapeForGrubCfg } from './kernel-params.js';
import { ProtectionMap, type Access, type Forbidden, type Grant } from './protection.js';
import {
  ADDRESS_LIMIT,
  MiB,
  PAGE_SIZE,
  alignDown,
  alignUp,
  formatRange,
  isPowerOfTwo,
  sizeText,
  subtractRanges,
  unionRanges,
  type AddressRange,
} from './range.js';

/** The request cannot be met on this host map; `where.at` is the request's field (`size`, `hostKeep`). */
export class IdentityPlanError extends HvmptError {}

/** A request value that is not acceptable whatever the host (a size that is no multiple of 4 KiB). */
export class IdentityRequestError extends IdentityPlanError {}

/** The first MiB: real-mode IVT, BIOS data, EBDA, the ISA hole and the BIOS ROM. Never carved. */
export const LOW_MEMORY: AddressRange = { start: 0n, end: MiB };
/** The legacy VGA/option-ROM/BIOS window, 640 KiB to 1 MiB: never RAM in a guest. */
export const ISA_HOLE: AddressRange = { start: 0xa0000n, end: MiB };

/** A host range hvmpt must leave alone (the hypervisor's own memory, a crash kernel…). */
export interface Reservation extends AddressRange {
  readonly owner: 'host' | 'hypervisor';
  readonly name: string;
}

/** A device window (BAR) or read-only firmware area that one guest may map. */
export interface DeviceWindow extends AddressRange {
  /** Which guest (0-based). */
  readonly guest: number;
  readonly name: string;
  readonly kind: 'bar' | 'firmware';
  /** Default: `rw` for a BAR, `ro` for firmware. */
  readonly access?: Access;
}

/**
 * What the guest sees below 1 MiB. Its identity RAM starts above 1 MiB (the host owns the low
 * MiB), but an x86 OS wants some low RAM (Linux puts its real-mode trampoline there).
 * - `private`: the guest gets RAM at the addresses where the host has RAM below 640 KiB, backed
 *   by ordinary (non-identity) memory of the monitor's. Legacy DMA into it would miss, which no
 *   device built this century does. The default.
 * - `none`: no RAM below 1 MiB; for guests whose firmware or OS does not need it.
 */
export type LowMemoryPolicy = 'private' | 'none';

export interface IdentityRequest {
  /** Bytes of identity RAM per guest; a multiple of 4 KiB. */
  readonly size: bigint;
  /** Default 1. */
  readonly guests?: number;
  /** Alignment of each region's start; a power of two >= 4 KiB. Default 2 MiB (a huge page). */
  readonly align?: bigint;
  /** Regions start at or above this. Default (and floor) 1 MiB. */
  readonly above?: bigint;
  /** Regions end at or below this (e.g. 4 GiB for devices that DMA with 32-bit addresses). Default: no limit. */
  readonly below?: bigint;
  readonly reservations?: readonly Reservation[];
  /** RAM the host must keep after the carve. Default 256 MiB. */
  readonly hostKeep?: bigint;
  /** Most regions per guest; 1 (the default) means one contiguous region. */
  readonly maxRegionsPerGuest?: number;
  readonly lowMemory?: LowMemoryPolicy;
  readonly devices?: readonly DeviceWindow[];
}

export interface GuestLayout {
  readonly index: number;
  /** Identity RAM: guest-physical == host-physical. */
  readonly identity: readonly AddressRange[];
  /** Private (non-identity) low RAM under the `private` policy. */
  readonly lowMemory: readonly AddressRange[];
  readonly e820: E820Map;
  readonly protection: ProtectionMap;
  /** What the guest must never map (the host's memory, other guests', reservations, the low MiB): grants added later are checked against it. */
  readonly forbidden: readonly Forbidden[];
}

export interface IdentityPlan {
  readonly hostBefore: E820Map;
  /** Carved regions typed `1:1`. */
  readonly hostAfter: E820Map;
  /** What the host kernel must see: `memmap=SIZE$START` per carved range. */
  readonly kernelParams: readonly string[];
  /** The same with `$` escaped for a grub.cfg `linux` line. */
  readonly kernelParamsGrub: readonly string[];
  readonly guests: readonly GuestLayout[];
  /** Host RAM before and after the carve, in bytes. */
  readonly hostRamBefore: bigint;
  readonly hostRamAfter: bigint;
}

export const DEFAULT_ALIGN = 2n * MiB;
export const DEFAULT_HOST_KEEP = 256n * MiB;

/** Plans identity regions for `request.guests` guests on a host whose map is `host` (normalized or not). */
export function planIdentity(host: E820Map, request: IdentityRequest): IdentityPlan {
  const req = checkRequest(request);
  const hostBefore = normalizeE820(host.entries).map;
  const free = freeRam(hostBefore, req);
  const regions: AddressRange[][] = [];
  let pool = free;
  for (let g = 0; g < req.guests; g++) {
    const got = take(pool, req.size, req.align, req.maxRegions);
    if (got === undefined) throw noRoom(req, g, pool, free);
    regions.push(got);
    pool = subtractRanges(pool, got);
  }
  const carved = regions.flat();
  const hostAfter = { entries: setRangesType(hostBefore, carved, '1:1').entries };
  const hostRamBefore = totalOfType(hostBefore);
  const hostRamAfter = totalOfType(hostAfter);
  if (hostRamAfter < req.hostKeep) {
    throw new IdentityPlanError(
      `the carve would leave the host ${sizeText(hostRamAfter)} of RAM, less than the ${sizeText(req.hostKeep)} it must keep ` +
        `(lower the size or the host's share)`,
      { input: 'identity request', at: 'hostKeep' },
    );
  }
  const kernelParams = carveParams(carved);
  const guests = regions.map((identity, index) =>
    guestLayout(index, identity, hostBefore, carved, req),
  );
  return {
    hostBefore,
    hostAfter,
    kernelParams,
    kernelParamsGrub: kernelParams.map(escapeForGrubCfg),
    guests,
    hostRamBefore,
    hostRamAfter,
  };
}

interface CheckedRequest {
  size: bigint;
  guests: number;
  align: bigint;
  above: bigint;
  below: bigint;
  reservations: readonly Reservation[];
  hostKeep: bigint;
  maxRegions: number;
  lowMemory: LowMemoryPolicy;
  devices: readonly DeviceWindow[];
}

function checkRequest(r: IdentityRequest): CheckedRequest {
  const where = (at: string): { input: string; at: string } => ({ input: 'identity request', at });
  const align = r.align ?? DEFAULT_ALIGN;
  if (r.size <= 0n || r.size % PAGE_SIZE !== 0n) throw new IdentityRequestError(`size ${r.size} must be a positive multiple of 4 KiB`, where('size'));
  if (!isPowerOfTwo(align) || align < PAGE_SIZE) throw new IdentityRequestError(`alignment ${align} must be a power of two of at least 4 KiB`, where('align'));
  const guests = r.guests ?? 1;
  if (!Number.isInteger(guests) || guests < 1 || guests > 64) throw new IdentityRequestError(`guests ${guests} must be an integer from 1 to 64`, where('guests'));
  const maxRegions = r.maxRegionsPerGuest ?? 1;
  if (!Number.isInteger(maxRegions) || maxRegions < 1 || maxRegions > 32) {
    throw new IdentityRequestError(`maxRegionsPerGuest ${maxRegions} must be an integer from 1 to 32`, where('maxRegionsPerGuest'));
  }
  const above = r.above === undefined || r.above < LOW_MEMORY.end ? LOW_MEMORY.end : r.above;
  const below = r.below ?? ADDRESS_LIMIT;
  if (below > ADDRESS_LIMIT || below <= above) throw new IdentityRequestError(`the address window [${above}, ${below}) is empty`, where('below'));
  const reservations = r.reservations ?? [];
  reservations.forEach((res, i) => {
    if (!(res.start >= 0n && res.start < res.end && res.end <= ADDRESS_LIMIT)) {
      throw new IdentityRequestError(`${formatRange(res)} is not a valid range`, where(`reservations[${i}]`));
    }
  });
  const devices = r.devices ?? [];
  devices.forEach((d, i) => {
    if (!Number.isInteger(d.guest) || d.guest < 0 || d.guest >= guests) {
      throw new IdentityRequestError(`guest ${d.guest} does not exist (there are ${guests})`, where(`devices[${i}].guest`));
    }
  });
  const hostKeep = r.hostKeep ?? DEFAULT_HOST_KEEP;
  if (hostKeep < 0n) throw new IdentityRequestError('hostKeep must not be negative', where('hostKeep'));
  return { size: r.size, guests, align, above, below, reservations, hostKeep, maxRegions, lowMemory: r.lowMemory ?? 'private', devices };
}

/** Usable host RAM the planner may carve from, after every exclusion. */
function freeRam(host: E820Map, req: CheckedRequest): AddressRange[] {
  return subtractRanges(rangesOfType(host, 'usable'), [
    LOW_MEMORY,
    ISA_HOLE,
    { start: 0n, end: req.above },
    ...(req.below < ADDRESS_LIMIT ? [{ start: req.below, end: ADDRESS_LIMIT }] : []),
    ...req.reservations,
  ]);
}

/**
 * First fit from the bottom: low regions serve devices limited to 32-bit DMA, and leave the
 * host its high memory. With maxRegions > 1 a guest may take several aligned pieces.
 */
function take(pool: readonly AddressRange[], size: bigint, align: bigint, maxRegions: number): AddressRange[] | undefined {
  for (const r of pool) {
    const start = alignUp(r.start, align);
    if (start + size <= r.end) return [{ start, end: start + size }];
  }
  if (maxRegions === 1) return undefined;
  const pieces: AddressRange[] = [];
  let need = size;
  for (const r of pool) {
    const start = alignUp(r.start, align);
    const end = alignDown(r.end, PAGE_SIZE);
    if (end <= start) continue;
    const n = end - start < need ? end - start : need;
    pieces.push({ start, end: start + n });
    need -= n;
    if (need === 0n) break;
    if (pieces.length === maxRegions) return undefined;
  }
  return need === 0n ? pieces : undefined;
}

function noRoom(req: CheckedRequest, guest: number, pool: readonly AddressRange[], free: readonly AddressRange[]): IdentityPlanError {
  let largest = 0n;
  for (const r of pool) {
    const start = alignUp(r.start, req.align);
    if (r.end > start && r.end - start > largest) largest = r.end - start;
  }
  const total = free.reduce((s, r) => s + (r.end - r.start), 0n);
  return new IdentityPlanError(
    `no room for guest ${guest}'s ${sizeText(req.size)}` +
      (req.maxRegions === 1 ? ' in one contiguous region' : ` in ${req.maxRegions} regions`) +
      `: the largest free ${sizeText(req.align)}-aligned block left is ${sizeText(largest)}, of ${sizeText(total)} of carvable RAM ` +
      `(usable RAM from 0x${req.above.toString(16)}${req.below < ADDRESS_LIMIT ? ` to 0x${req.below.toString(16)}` : ''}, outside reservations)`,
    { input: 'identity request', at: guest === 0 ? 'size' : 'guests' },
  );
}

function guestLayout(
  index: number,
  identity: readonly AddressRange[],
  host: E820Map,
  allCarved: readonly AddressRange[],
  req: CheckedRequest,
): GuestLayout {
  // Every host range that is not RAM keeps its place and type; persistent or soft-reserved
  // memory is the host's, so the guest sees it as reserved.
  const mirrored: E820Entry[] = host.entries
    .filter((e) => e.type !== 'usable' && e.type !== '1:1')
    .map((e) => ({
      start: e.start,
      end: e.end,
      type: e.type === 'pmem' || e.type === 'pram' || e.type === 'soft-reserved' ? 'reserved' : e.type,
    }));
  // Whole pages only (a memory slot maps pages): firmware's maps end low RAM mid-page (0x9fc00).
  const lowMemory =
    req.lowMemory === 'private'
      ? subtractRanges(rangesOfType(host, 'usable'), [{ start: ISA_HOLE.start, end: ADDRESS_LIMIT }])
          .map((r) => ({ start: alignUp(r.start, PAGE_SIZE), end: alignDown(r.end, PAGE_SIZE) }))
          .filter((r) => r.end > r.start)
      : [];
  const ram: E820Entry[] = [...lowMemory, ...identity].map((r) => ({ ...r, type: 'usable' }));
  const e820 = { entries: mergeAdjacent([...removeRanges({ entries: mirrored }, [...lowMemory, ...identity]).entries, ...ram]) };

  const forbidden: Forbidden[] = [
    ...host.entries.filter((e) => e.type !== 'usable').map((e) => ({ start: e.start, end: e.end, owner: `host ${e.type} memory` })),
    ...subtractRanges(rangesOfType(host, 'usable'), identity).map((r) => ({ ...r, owner: 'host RAM' })),
    ...req.reservations.map((r) => ({ start: r.start, end: r.end, owner: `${r.owner} reservation '${r.name}'` })),
    { ...LOW_MEMORY, owner: 'the host\'s low 1 MiB' },
    ...unionRanges(subtractRanges(allCarved, identity)).map((r) => ({ ...r, owner: 'another guest\'s identity region' })),
  ];
  const grants: Grant[] = [
    ...identity.map((r, i) => ({ ...r, access: 'rw' as const, kind: 'ram' as const, name: `guest ${index} identity region ${i}` })),
    ...req.devices
      .filter((d) => d.guest === index)
      .map((d) => ({ start: d.start, end: d.end, kind: d.kind, name: d.name, access: d.access ?? (d.kind === 'bar' ? 'rw' : 'ro') })),
  ];
  return { index, identity, lowMemory, e820, protection: ProtectionMap.build(grants, forbidden), forbidden };
}
