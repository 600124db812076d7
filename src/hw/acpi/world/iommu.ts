import { DRHD_INCLUDE_PCI_ALL, type Dmar, type DmarDeviceScope, type DmarStructure } from '../tables/dmar.js';
import type { PciPath } from './select.js';

/**
 * Hidden PCI functions in the IOMMU tables. A DMAR names devices by device scope (start bus and
 * the device.function hops down through bridges), the same path hvmpt's PCI selectors use, so a
 * scope naming a hidden function, or a bridge above one, is removed; a structure left with no
 * scope (an RMRR, an ATSR, a DRHD that does not include all devices) is removed with it. An
 * IVRS names devices by requester ID (the bus numbers firmware assigned, which the ACPI tables
 * do not tell), so it cannot be edited safely: hiding a PCI function while keeping an IVRS is
 * refused.
 */

/** Device scope types that name PCI functions: endpoint (1) and sub-hierarchy (2). */
const PCI_SCOPE_TYPES = new Set([1, 2]);

function scopeMatches(scope: DmarDeviceScope, segment: number, hidden: readonly PciPath[]): boolean {
  if (!PCI_SCOPE_TYPES.has(scope.scopeType)) return false;
  return hidden.some(
    (h) =>
      h.segment === segment &&
      h.bus === scope.startBus &&
      h.hops.length <= scope.path.length &&
      h.hops.every((hop, i) => scope.path[i]!.device === hop.device && scope.path[i]!.function === hop.fn),
  );
}

export interface DmarPrune {
  readonly dmar: Dmar;
  readonly removedScopes: number;
  readonly removedStructures: number;
}

/** Removes the device scopes that name `hidden` functions (or devices behind them). */
export function pruneDmar(dmar: Dmar, hidden: readonly PciPath[]): DmarPrune {
  let removedScopes = 0;
  let removedStructures = 0;
  const structures: DmarStructure[] = [];
  for (const s of dmar.structures) {
    if (!('scopes' in s) || !('segment' in s)) {
      structures.push(s);
      continue;
    }
    const kept = s.scopes.filter((sc) => !scopeMatches(sc, s.segment, hidden));
    if (kept.length === s.scopes.length) {
      structures.push(s);
      continue;
    }
    removedScopes += s.scopes.length - kept.length;
    const includeAll = s.type === 'drhd' && (s.flags & DRHD_INCLUDE_PCI_ALL) !== 0;
    if (kept.length === 0 && !includeAll) {
      removedStructures++;
      continue;
    }
    structures.push({ ...s, scopes: kept });
  }
  return { dmar: { ...dmar, structures }, removedScopes, removedStructures };
}
