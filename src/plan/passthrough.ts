/**
 * `pci.passthrough`: real host functions the guest drives with its own drivers.
 *
 * ```yaml
 * pci:
 *   passthrough:
 *     - { host: "0000:00:03.0", at: "00:05.0", backend: vfio, rom: auto }
 *     - { name: disk, host: "1b36:0010#1", backend: uio }       # the second function with those IDs
 * ```
 *
 * The entry only says which function and how: what the function is (config space, BARs,
 * interrupts, IOMMU group) is read from the host at the edge, by the back-end's *describe*.
 */
import { z } from 'zod';
import { formatBdf, parseBdf, type Bdf } from '../hw/pci/address.js';
import { uint } from './scalars.js';

/** Which host function: a sysfs address, or the n-th function (0-based, in address order) with those IDs. */
export type HostSelector =
  | { readonly kind: 'address'; readonly bdf: Bdf }
  | { readonly kind: 'ids'; readonly vendorId: number; readonly deviceId: number; readonly index: number };

export function formatHostSelector(s: HostSelector): string {
  if (s.kind === 'address') return formatBdf(s.bdf, true);
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  return `${hex(s.vendorId)}:${hex(s.deviceId)}${s.index === 0 ? '' : `#${s.index}`}`;
}

export const hostSelector = z.string().transform((v, ctx): HostSelector => {
  const ids = /^\s*([0-9a-f]{4}):([0-9a-f]{4})(?:#(\d+))?\s*$/i.exec(v);
  if (ids !== null) return { kind: 'ids', vendorId: parseInt(ids[1]!, 16), deviceId: parseInt(ids[2]!, 16), index: ids[3] === undefined ? 0 : Number(ids[3]) };
  const b = parseBdf(v);
  if (b !== undefined) return { kind: 'address', bdf: b };
  ctx.addIssue({ code: 'custom', message: `expected a host PCI address like 0000:00:03.0 or vendor:device[#n] like 8086:10d3#1, got ${JSON.stringify(v)}` });
  return z.NEVER;
});

/**
 * How hvmpt drives the function: `vfio` (an IOMMU confines its DMA), `uio` (uio_pci_generic:
 * no IOMMU, INTx only, for identity layouts) or `vfio-noiommu` (vfio's unsafe mode, where the
 * host kernel has it).
 */
export const PASSTHROUGH_BACKENDS = ['vfio', 'uio', 'vfio-noiommu'] as const;
export type PassthroughBackendKind = (typeof PASSTHROUGH_BACKENDS)[number];

/** The expansion ROM the guest sees: the device's own (`auto`, when it has a valid one), none, or a file. */
export type RomChoice = { readonly kind: 'auto' } | { readonly kind: 'off' } | { readonly kind: 'file'; readonly file: string };

export const romChoice = z.string().min(1, 'auto, off, or a ROM file').transform((v): RomChoice => (v === 'auto' ? { kind: 'auto' } : v === 'off' ? { kind: 'off' } : { kind: 'file', file: v }));

/** IDs the guest sees instead of the device's own (QEMU's x-pci-vendor-id and friends). */
export const idOverrides = z.strictObject({
  vendor: uint(16).optional(),
  device: uint(16).optional(),
  subsystemVendor: uint(16).optional(),
  subsystem: uint(16).optional(),
});

export type IdOverrides = z.output<typeof idOverrides>;
