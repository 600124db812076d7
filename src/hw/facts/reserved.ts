/**
 * Memory the firmware says a device keeps using behind the OS's back (a USB controller's
 * legacy keyboard emulation, a GPU's stolen memory, a management engine's buffers): VT-d RMRR
 * structures name devices by device scope, AMD-Vi IVMD blocks by requester ID. The IOMMU must
 * keep those ranges mapped 1:1 for the device, which is why vfio refuses most such devices.
 */
import type { Dmar, DmarDeviceScope } from '../acpi/tables/dmar.js';
import type { Ivrs } from '../acpi/tables/ivrs.js';
import { SECONDARY_BUS } from '../pci/regs.js';
import type { HostFunction, HostPci } from './host-pci.js';
import type { AcpiTableFacts } from './snapshot.js';

export interface ReservedRange {
  readonly source: 'RMRR' | 'IVMD';
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  /** How the table names the device, for messages. */
  readonly naming: string;
}

/** Follows a device scope's path from its start bus through the captured bridges to a function. */
function scopeTarget(pci: HostPci, segment: number, scope: DmarDeviceScope): HostFunction | undefined {
  let bus = scope.startBus;
  let hit: HostFunction | undefined;
  for (const hop of scope.path) {
    hit = pci.functions.find((f) => f.facts.bdf.segment === segment && f.facts.bdf.bus === bus && f.facts.bdf.device === hop.device && f.facts.bdf.fn === hop.function);
    if (hit === undefined) return undefined;
    bus = hit.facts.config?.bytes[SECONDARY_BUS] ?? -1;
  }
  return hit;
}

function requesterId(f: HostFunction): number {
  const b = f.facts.bdf;
  return (b.bus << 8) | (b.device << 3) | b.fn;
}

/** Every function the DMAR's RMRRs and the IVRS's IVMDs tie reserved memory to. */
export function reservedRanges(pci: HostPci, tables: readonly AcpiTableFacts[]): Map<HostFunction, ReservedRange[]> {
  const out = new Map<HostFunction, ReservedRange[]>();
  const add = (f: HostFunction, r: ReservedRange): void => {
    out.set(f, [...(out.get(f) ?? []), r]);
  };
  for (const t of tables) {
    if (t.table.kind === 'dmar') {
      for (const s of (t.table as Dmar).structures) {
        if (s.type !== 'rmrr') continue;
        for (const scope of s.scopes) {
          if (scope.scopeType !== 1 && scope.scopeType !== 2) continue;
          const f = scopeTarget(pci, s.segment, scope);
          const naming = `RMRR [0x${s.baseAddress.toString(16)}-0x${s.endAddress.toString(16)}] for ${scope.startBus.toString(16).padStart(2, '0')}:${scope.path.map((h) => `${h.device.toString(16).padStart(2, '0')}.${h.function}`).join('/')}`;
          const range = { source: 'RMRR' as const, start: s.baseAddress, end: s.endAddress + 1n, naming };
          if (f === undefined) continue;
          add(f, range);
          // A sub-hierarchy scope covers everything below the bridge.
          if (scope.scopeType === 2) for (const below of pci.below(f)) add(below, range);
        }
      }
    }
    if (t.table.kind === 'ivrs') {
      for (const b of (t.table as Ivrs).blocks) {
        if (b.type !== 'ivmd') continue;
        const range = (naming: string): ReservedRange => ({ source: 'IVMD', start: b.startAddress, end: b.startAddress + b.memoryLength, naming });
        const span = `[0x${b.startAddress.toString(16)}, +0x${b.memoryLength.toString(16)})`;
        for (const f of pci.functions) {
          const id = requesterId(f);
          if (b.blockType === 0x20) add(f, range(`IVMD ${span} for all devices`));
          else if (b.blockType === 0x21 && id === b.deviceId) add(f, range(`IVMD ${span} for device ${b.deviceId.toString(16).padStart(4, '0')}`));
          else if (b.blockType === 0x22 && id >= b.deviceId && id <= b.auxData) add(f, range(`IVMD ${span} for devices ${b.deviceId.toString(16).padStart(4, '0')}-${b.auxData.toString(16).padStart(4, '0')}`));
        }
      }
    }
  }
  return out;
}
