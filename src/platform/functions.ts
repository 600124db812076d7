/**
 * The guest's PCI functions as plain records: what each is (chipset, a captured function
 * replayed, a plan device, a fake bridge, a passed-through host function, hidden or not), where
 * it sits, its IDs, BARs, interrupt pin and MSI/MSI-X, read from the composed bus through the
 * same config reads the guest makes. Exporters and the report both read these.
 */
import { compareBdf, type Bdf } from '../hw/pci/address.js';
import type { BarKind } from '../hw/pci/bars.js';
import { CAP_MSI, CAP_MSIX, walkCapabilities } from '../hw/pci/capabilities.js';
import type { ComposedEntry, ComposedPci } from '../hw/pci/compose.js';
import type { PciFunction } from '../hw/pci/function.js';
import { CLASS_PROG, DEVICE_ID, HEADER_TYPE, INTERRUPT_PIN, REVISION_ID, SECONDARY_BUS, SUBSYSTEM_ID, SUBSYSTEM_VENDOR_ID, VENDOR_ID } from '../hw/pci/regs.js';
import { isBridge } from '../hw/pci/topology.js';
import type { HostFunction } from '../hw/pci/host-function.js';
import { passthroughName, type PassthroughEntry } from '../plan/pci.js';
import type { Plan } from '../plan/schema.js';
import type { PlatformInputs } from './inputs.js';

/**
 * - `chipset`: the monitor's own i440FX and PIIX3;
 * - `captured`: a function of a host capture (`machine.hostPci` or `pci.real`), replayed from its config dump;
 * - `emulated`: a device model; `fake`: a plan-made placeholder (fake bridges, `generic` devices);
 * - `passthrough`: a host function the guest drives (`pci.passthrough`).
 */
export type PlatformFunctionKind = 'chipset' | 'captured' | 'emulated' | 'fake' | 'passthrough';

export interface PlatformBar {
  /** 0-5, or 6 for the expansion ROM. */
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  /** Bytes decoded; undefined when nobody knows. */
  readonly size: bigint | undefined;
}

export interface PlatformFunction {
  /** The function's name: a plan name, the captured address, or the pass-through entry's name. */
  readonly id: string;
  readonly kind: PlatformFunctionKind;
  /** On no bus the guest reaches (`pci.hide`). */
  readonly hidden: boolean;
  /** Its guest address. */
  readonly bdf: Bdf;
  /** The id of the bridge it sits behind, or undefined on a root bus. */
  readonly parent: string | undefined;
  readonly bridge: boolean;
  /** A bridge's secondary bus number, as the guest reads it before firmware renumbers anything. */
  readonly secondaryBus: number | undefined;
  /** Where it came from: a capture file and line, or the plan path that made it. */
  readonly source: string;
  /** The captured address, for captured functions. */
  readonly capturedBdf: Bdf | undefined;
  /** IDs as the guest reads them (a pass-through entry's virtualized ones included). */
  readonly ids: FunctionIds;
  readonly bars: readonly PlatformBar[];
  /** 1 = INTA … 4 = INTD; 0 for none. */
  readonly interruptPin: number;
  readonly msi: { readonly offset: number } | undefined;
  readonly msix: { readonly offset: number; readonly tableSize: number } | undefined;
  /** For `passthrough`: its plan entry and host function. */
  readonly passthrough: PassthroughInfo | undefined;
}

/** A `pci.passthrough` entry with the host function it names. */
export interface PassthroughInfo {
  readonly index: number;
  /** The function's name on the guest's bus: the entry's, or `pt<i>`. */
  readonly name: string;
  /** `pci.passthrough[i]`. */
  readonly path: string;
  readonly entry: PassthroughEntry;
  readonly host: HostFunction;
}

/** Each pass-through entry of the plan with its host function (the inputs composition used). */
export function passthroughInfo(plan: Plan, inputs: PlatformInputs): PassthroughInfo[] {
  return (plan.pci?.passthrough ?? []).flatMap((entry, index) => {
    const input = inputs.passthrough[index];
    return input === undefined ? [] : [{ index, name: passthroughName(entry, index), path: `pci.passthrough[${index}]`, entry, host: input.host }];
  });
}

export interface FunctionIds {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** Base class, subclass and programming interface. */
  readonly classCode: number;
  readonly revision: number;
}

function kindOf(e: ComposedEntry, passthrough: PassthroughInfo | undefined): PlatformFunctionKind {
  if (passthrough !== undefined) return 'passthrough';
  if (e.origin === 'chipset') return 'chipset';
  if (e.fn.kind === 'real') return 'captured';
  return e.fn.kind;
}

function idsOf(fn: PciFunction): FunctionIds {
  const header = fn.read(HEADER_TYPE, 1) & 0x7f;
  return {
    vendorId: fn.read(VENDOR_ID, 2),
    deviceId: fn.read(DEVICE_ID, 2),
    // A bridge's header has no subsystem IDs at 0x2c.
    subsystemVendorId: header === 0 ? fn.read(SUBSYSTEM_VENDOR_ID, 2) : 0,
    subsystemId: header === 0 ? fn.read(SUBSYSTEM_ID, 2) : 0,
    classCode: (fn.read(CLASS_PROG, 4) & 0xffffff) >>> 0,
    revision: fn.read(REVISION_ID, 1),
  };
}

function interruptsOf(fn: PciFunction): Pick<PlatformFunction, 'msi' | 'msix'> {
  const walk = walkCapabilities((o, s) => fn.read(o, s), fn.length, fn.read(HEADER_TYPE, 1) & 0x7f);
  const msi = walk.caps.find((c) => !c.extended && c.id === CAP_MSI);
  const msix = walk.caps.find((c) => !c.extended && c.id === CAP_MSIX);
  return {
    msi: msi === undefined ? undefined : { offset: msi.offset },
    // Message Control bits 10:0 hold the table size minus one.
    msix: msix === undefined ? undefined : { offset: msix.offset, tableSize: (fn.read(msix.offset + 2, 2) & 0x7ff) + 1 },
  };
}

/** Every function of the composed bus, hidden ones included, in guest address order; `passthrough` tells which are pass-through entries. */
export function platformFunctions(pci: ComposedPci, passthrough: readonly PassthroughInfo[]): PlatformFunction[] {
  const out: PlatformFunction[] = [];
  const byName = new Map(passthrough.map((p) => [p.name, p]));
  for (const e of [...pci.entries, ...pci.hidden]) {
    const fn = e.fn;
    if (!pci.topology.isAttached(fn)) continue;
    const bus = pci.topology.busOf(fn);
    // Plan names are unique on the bus, so a pass-through entry's name finds its function.
    const pt = e.origin === 'plan' && fn.kind === 'real' ? byName.get(fn.id) : undefined;
    out.push({
      id: fn.id,
      kind: kindOf(e, pt),
      hidden: fn.hidden,
      bdf: fn.address,
      parent: bus.bridge?.id,
      bridge: isBridge(fn),
      secondaryBus: isBridge(fn) ? fn.read(SECONDARY_BUS, 1) : undefined,
      source: pt?.path ?? e.source,
      capturedBdf: e.capturedBdf,
      ids: idsOf(fn),
      bars: (fn.bars?.layouts ?? []).map((b) => ({ index: b.index, kind: b.kind, prefetchable: b.prefetchable, size: b.size })),
      interruptPin: fn.read(INTERRUPT_PIN, 1),
      ...interruptsOf(fn),
      passthrough: pt,
    });
  }
  return out.sort((a, b) => compareBdf(a.bdf, b.bdf) || a.id.localeCompare(b.id));
}
