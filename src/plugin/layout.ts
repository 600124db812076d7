/**
 * A device plug-in's declared layout turned into the PCI core's emulated-function spec: plain
 * data (no functions), so the main thread composes the bus from it and the vCPU thread builds
 * the same function from the same spec.
 */
import { msiCapability, msixCapability, pcieCapability, pmCapability, type CapabilitySpec, type EmulatedFunctionSpec } from '../hw/pci/emulated.js';
import { PciError } from '../hw/pci/errors.js';
import type { DeviceLayout } from './api.js';

const PINS = { none: 0, A: 1, B: 2, C: 3, D: 4 } as const;

/** Where hvmpt put the device's interrupt capabilities, found again from config space by offset. */
export function layoutSpec(layout: DeviceLayout, id: string): EmulatedFunctionSpec {
  const caps: CapabilitySpec[] = [];
  if (layout.pm === true) caps.push(pmCapability());
  if (layout.msi !== undefined) caps.push(msiCapability({ ...layout.msi }));
  const bars = layout.bars ?? [];
  if (layout.msix !== undefined) {
    const m = layout.msix;
    const bar = bars.find((b) => b.index === m.bar);
    if (bar === undefined || bar.kind === 'io') throw new PciError(`MSI-X table in BAR ${m.bar}, which is not one of the device's memory BARs`, { input: id });
    const size = BigInt(bar.size);
    const tableEnd = BigInt(m.tableOffset + m.vectors * 16);
    const pbaEnd = BigInt(m.pbaOffset + Math.ceil(m.vectors / 64) * 8);
    if (tableEnd > size || pbaEnd > size) throw new PciError(`MSI-X table (to 0x${tableEnd.toString(16)}) or PBA (to 0x${pbaEnd.toString(16)}) runs past BAR ${m.bar} (0x${size.toString(16)} bytes)`, { input: id });
    if (m.tableOffset < m.pbaOffset + Math.ceil(m.vectors / 64) * 8 && m.pbaOffset < m.tableOffset + m.vectors * 16) throw new PciError('the MSI-X table and PBA overlap', { input: id });
    caps.push(msixCapability({ tableSize: m.vectors, table: { bar: m.bar, offset: m.tableOffset }, pba: { bar: m.bar, offset: m.pbaOffset } }));
  }
  if (layout.pcie !== undefined) caps.push(pcieCapability({ type: layout.pcie }));
  caps.push(...(layout.capabilities ?? []));
  return {
    id,
    kind: 'emulated',
    vendorId: layout.vendorId,
    deviceId: layout.deviceId,
    classCode: layout.classCode,
    ...(layout.revision === undefined ? {} : { revision: layout.revision }),
    ...(layout.subsystemVendorId === undefined ? {} : { subsystemVendorId: layout.subsystemVendorId }),
    ...(layout.subsystemId === undefined ? {} : { subsystemId: layout.subsystemId }),
    interruptPin: PINS[layout.interruptPin ?? 'A'],
    bars: bars.map((b) => ({ index: b.index, kind: b.kind, size: b.size, prefetchable: b.prefetchable === true })),
    capabilities: caps,
    registers: (layout.registers ?? []).map((r) => ({ offset: r.offset, size: r.size, ...(r.value === undefined ? {} : { value: r.value }), ...(r.writable === undefined ? {} : { writable: r.writable }), ...(r.rw1c === undefined ? {} : { rw1c: r.rw1c }), ...(r.reset === undefined ? {} : { reset: r.reset }) })),
    ...(layout.pcie !== undefined || caps.some((c) => c.extended === true) ? { extendedConfig: true } : {}),
  };
}
