import type { ConfigBackend, InterruptInfo } from './backend.js';
import { BarSet, alignmentOf, checkBarSize, decodeCapturedBars, type BarLayout } from './bars.js';
import {
  CAP_MSI,
  CAP_MSIX,
  capabilityDescriptors,
  hideCapabilities,
  knownCapability,
  walkCapabilities,
  type CapabilityInfo,
  type CapabilityWalk,
} from './capabilities.js';
import { PciError } from './errors.js';
import { PciFunction } from './function.js';
import { declareHeader } from './header.js';
import { HEADER_TYPE, ROM_BAR_INDEX, barCount, barOffset } from './regs.js';

/** What to do with bytes no register descriptor claims (device-specific registers). */
export type UnclaimedPolicy =
  /** Read and written through: the device's own registers work as on the host. */
  | 'pass'
  /** Read through, writes dropped. */
  | 'read-only'
  /** Read as 0, writes dropped: the guest sees nothing hvmpt does not describe. */
  | 'hide';

/** How a capability is selected in a policy: by list and ID. */
export interface CapabilitySelector {
  readonly extended: boolean;
  readonly id: number;
}

const MSI_SELECTOR: CapabilitySelector = { extended: false, id: CAP_MSI };
const MSIX_SELECTOR: CapabilitySelector = { extended: false, id: CAP_MSIX };

/** MSI and MSI-X: what a guest must not see where no IOMMU stands between the device and the host's APIC. */
export const MESSAGE_SIGNALLED: readonly CapabilitySelector[] = [MSI_SELECTOR, MSIX_SELECTOR];

/**
 * The message-signalled capabilities a back-end offers no vector for: shown to the guest, its
 * driver would enable them and wait for interrupts that never come (a uio function, or a VFIO
 * device whose kernel withholds MSI); hidden, the driver takes INTx.
 */
export function undeliverableCapabilities(interrupts: InterruptInfo): CapabilitySelector[] {
  return [...(interrupts.msi === 0 ? [MSI_SELECTOR] : []), ...(interrupts.msix === 0 ? [MSIX_SELECTOR] : [])];
}

/** `policy` with `extra` hidden as well (no policy stays none when there is nothing to add). */
export function hidingAlso(policy: CapabilityPolicy, extra: readonly CapabilitySelector[]): CapabilityPolicy;
export function hidingAlso(policy: CapabilityPolicy | undefined, extra: readonly CapabilitySelector[]): CapabilityPolicy | undefined;
export function hidingAlso(policy: CapabilityPolicy | undefined, extra: readonly CapabilitySelector[]): CapabilityPolicy | undefined {
  if (extra.length === 0) return policy;
  return { ...(policy ?? {}), hide: [...(policy?.hide ?? []), ...extra] };
}

export interface CapabilityPolicy {
  /** Capabilities hidden whatever else says. */
  readonly hide?: readonly CapabilitySelector[];
  /** Capabilities kept even when hvmpt would hide them (SR-IOV, resizable BAR) or does not know them. */
  readonly allow?: readonly CapabilitySelector[];
  /** Capabilities hvmpt does not know: kept (`pass`) or hidden (`hide`, a whitelist). Default `pass`. */
  readonly unknown?: 'pass' | 'hide';
  /** Apply hvmpt's default hiding of known-dangerous capabilities (SR-IOV, resizable BAR, EA). Default true. */
  readonly hideDangerous?: boolean;
}

/** A plan's say about one BAR of a real function. */
export interface BarOverride {
  readonly index: number;
  /** The size, when the backend does not know it or knows it wrong. */
  readonly size?: bigint;
  /** Make the BAR unimplemented for the guest: it reads 0 and ignores writes. */
  readonly hide?: boolean;
}

export interface RealFunctionOptions {
  readonly id: string;
  readonly backend: ConfigBackend;
  readonly unclaimed?: UnclaimedPolicy;
  readonly capabilities?: CapabilityPolicy;
  readonly bars?: readonly BarOverride[];
  /** For BARs whose size nobody knows: leave them fixed (`unknown`) or guess from the address alignment. */
  readonly unknownBarSize?: 'fixed' | 'alignment';
}

/** A real function built from a backend, with what the build found. */
export interface RealFunction {
  readonly fn: PciFunction;
  readonly bars: BarSet;
  readonly capabilities: CapabilityWalk;
  readonly hiddenCapabilities: readonly CapabilityInfo[];
  /** What the build could not use from the backend (sizes a BAR cannot decode), for warnings. */
  readonly notes: readonly string[];
}

function selected(list: readonly CapabilitySelector[] | undefined, c: CapabilityInfo): boolean {
  return list?.some((s) => s.extended === c.extended && s.id === c.id) ?? false;
}

/** Which capabilities a policy hides. */
export function capabilitiesToHide(walk: CapabilityWalk, policy: CapabilityPolicy | undefined): Set<CapabilityInfo> {
  const out = new Set<CapabilityInfo>();
  if (policy === undefined) return out;
  for (const c of walk.caps) {
    if (selected(policy.hide, c)) {
      out.add(c);
      continue;
    }
    if (selected(policy.allow, c)) continue;
    const known = knownCapability(c.extended, c.id);
    if (known === undefined ? policy.unknown === 'hide' : known.handling === 'hide' && policy.hideDangerous !== false) out.add(c);
  }
  return out;
}

/**
 * Builds the guest's view of a real function: the header table, BARs (sizes from the plan,
 * else the backend, else the address alignment if asked, else fixed), capability
 * virtualization, then the capability policy. With no policy and no writes the view reads
 * back exactly the backend's bytes.
 */
export function buildRealFunction(o: RealFunctionOptions): RealFunction {
  const { backend } = o;
  const fn = new PciFunction({ id: o.id, kind: 'real', backend });
  const read = (offset: number, size: 1 | 2 | 4): number => backend.read(offset, size);
  const headerType = backend.read(HEADER_TYPE, 1) & 0x7f;

  const capabilities = walkCapabilities(read, fn.length, headerType);
  const hidden = capabilitiesToHide(capabilities, o.capabilities);
  if (o.unclaimed === 'read-only' || o.unclaimed === 'hide') {
    const kept = capabilities.caps.filter((c) => !hidden.has(c));
    for (let off = 0x40; off < fn.length; off++) {
      const inCap = kept.some((c) => off >= c.offset && off < c.offset + c.length);
      // `hide` keeps the capabilities the guest is shown; everything else outside the header reads 0.
      const zero = o.unclaimed === 'hide' && !inCap;
      fn.declare({ offset: off, size: 1, emulated: zero ? 0xff : 0, writable: 0, value: 0 });
    }
  }

  declareHeader(fn, headerType);

  const overrides = new Map((o.bars ?? []).map((b) => [b.index, b]));
  for (const b of overrides.values()) {
    if (b.index < 0 || (b.index >= barCount(headerType) && b.index !== ROM_BAR_INDEX)) {
      throw new PciError(`BAR ${b.index} does not exist on a header type ${headerType} function`, { input: o.id });
    }
  }
  const captured = decodeCapturedBars((off) => backend.read(off, 4), headerType, (i) => overrides.get(i)?.size !== undefined || backend.barSize?.(i) !== undefined);
  const layouts: BarLayout[] = [];
  const notes: string[] = [];
  for (const c of captured) {
    const ov = overrides.get(c.index);
    if (ov?.hide === true) continue;
    let size = ov?.size;
    let sizeSource: BarLayout['sizeSource'] = 'plan';
    if (size !== undefined) {
      const problem = checkBarSize(c.kind, size);
      if (problem !== undefined) throw new PciError(`BAR ${c.index}: ${problem}`, { input: o.id });
    } else {
      size = backend.barSize?.(c.index);
      sizeSource = 'backend';
      // A size the BAR cannot decode (the 1-byte legacy IDE ports Linux reports) is no size.
      const problem = size === undefined ? undefined : checkBarSize(c.kind, size);
      if (problem !== undefined) {
        notes.push(`BAR ${c.index}: ${backend.source} gives ${problem}; the BAR stays fixed at its captured address`);
        size = undefined;
      }
    }
    if (size === undefined && o.unknownBarSize === 'alignment') {
      size = alignmentOf(c.address);
      sizeSource = 'alignment';
      if (size !== undefined && checkBarSize(c.kind, size) !== undefined) size = undefined;
    }
    if (size === undefined) sizeSource = 'unknown';
    layouts.push({ index: c.index, kind: c.kind, prefetchable: c.prefetchable, size, sizeSource, offset: barOffset(c.index, headerType) });
  }
  for (const ov of overrides.values()) {
    if (ov.hide !== true && !captured.some((c) => c.index === ov.index)) {
      const upper = captured.some((c) => c.kind === 'mem64' && c.index + 1 === ov.index);
      throw new PciError(upper ? `BAR ${ov.index} is the upper half of 64-bit BAR ${ov.index - 1}` : `BAR ${ov.index} is not implemented (its register reads 0 and nothing gives it a size)`, { input: o.id });
    }
  }
  const initial = new Map<number, number>();
  for (let i = 0; i < barCount(headerType); i++) initial.set(barOffset(i, headerType), backend.read(barOffset(i, headerType), 4));
  if (headerType <= 1) initial.set(barOffset(ROM_BAR_INDEX, headerType), backend.read(barOffset(ROM_BAR_INDEX, headerType), 4));
  // A hidden BAR reads 0 (and so does the upper half of a hidden 64-bit BAR).
  for (const c of captured) {
    if (overrides.get(c.index)?.hide !== true) continue;
    initial.set(barOffset(c.index, headerType), 0);
    if (c.kind === 'mem64') initial.set(barOffset(c.index, headerType) + 4, 0);
  }
  const bars = new BarSet(fn, headerType, layouts, initial);

  for (const cap of capabilities.caps) {
    const known = knownCapability(cap.extended, cap.id);
    if (known === undefined) continue;
    for (const d of capabilityDescriptors(cap, read)) {
      if (d.offset + d.size <= fn.length) fn.declare(d);
    }
  }
  hideCapabilities(fn, capabilities, hidden);
  fn.capabilities = capabilities;
  return { fn, bars, capabilities, hiddenCapabilities: [...hidden], notes };
}
