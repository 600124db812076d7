/**
 * What a function's own config space says about pass-through: its kind, its interrupt pin,
 * the capabilities that decide resets (PCI Express FLR, Advanced Features FLR, PM No_Soft_Reset),
 * isolation (ACS) and interrupts (MSI, MSI-X), and its BARs with the sizes the capture gave.
 * Read through the PCI layer's capability walk and BAR decoder.
 */
import { decodeCapturedBars, type BarKind } from '../pci/bars.js';
import { CAP_AF, CAP_MSI, CAP_MSIX, CAP_PCIE, CAP_PM, ECAP_ACS, walkCapabilities, type CapabilityInfo } from '../pci/capabilities.js';
import type { CapturedFunction } from '../pci/capture.js';
import { readLE } from '../pci/endian.js';
import { CLASS_PROG, HEADER_TYPE, HEADER_TYPE_BRIDGE, HEADER_TYPE_CARDBUS, HEADER_TYPE_MULTIFUNCTION, INTERRUPT_PIN } from '../pci/regs.js';

/** PCI Express device/port types (PCIe Base, Express Capabilities register bits 7:4). */
export const PCIE_TYPES = {
  0x0: 'endpoint',
  0x1: 'legacy-endpoint',
  0x4: 'root-port',
  0x5: 'upstream-port',
  0x6: 'downstream-port',
  0x7: 'pcie-to-pci-bridge',
  0x8: 'pci-to-pcie-bridge',
  0x9: 'rc-integrated-endpoint',
  0xa: 'rc-event-collector',
} as const;

export type PcieType = (typeof PCIE_TYPES)[keyof typeof PCIE_TYPES] | 'unknown';

// Offsets inside the capabilities (PCI Express Base 6.0 7.5.3; PCI PM 1.2; PCI AF ECN; ACS 7.7.8).
const PCIE_FLAGS = 0x02;
const PCIE_DEVCAP = 0x04;
const DEVCAP_FLR = 1 << 28;
const AF_CAP = 0x03;
const AF_CAP_FLR = 1 << 1;
const PM_CTRL = 0x04;
const PM_NO_SOFT_RESET = 1 << 3;
const ACS_CAP = 0x04;
const ACS_CTRL = 0x06;
const MSI_FLAGS = 0x02;
const MSIX_FLAGS = 0x02;

/** ACS capability and control bits (PCIe Base 7.7.8.2/3). */
export const ACS = { sv: 1 << 0, tb: 1 << 1, rr: 1 << 2, cr: 1 << 3, uf: 1 << 4, ec: 1 << 5, dt: 1 << 6 } as const;
/** What Linux requires on the path for isolation (REQ_ACS_FLAGS in drivers/iommu/iommu.c). */
export const REQUIRED_ACS = ACS.sv | ACS.rr | ACS.cr | ACS.uf;

export interface BarFact {
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  /** The address the host gave it. */
  readonly address: bigint;
  /** Bytes it decodes, when the collection recorded it (sysfs `resource`). */
  readonly size: bigint | undefined;
}

export interface HardwareFacts {
  /** 0 endpoint, 1 PCI-to-PCI bridge, 2 CardBus bridge. */
  readonly headerType: number;
  readonly multifunction: boolean;
  readonly classCode: number;
  /** 1 = INTA# … 4 = INTD#, 0 none. */
  readonly interruptPin: number;
  /** How many bytes of config space were read (64 without root: capabilities are then unknown). */
  readonly configLength: number;
  /** The capability list could be read (not a 64-byte, non-root read). */
  readonly capabilitiesKnown: boolean;
  readonly capabilities: readonly CapabilityInfo[];
  readonly pcieType: PcieType | undefined;
  readonly flr: boolean;
  readonly afFlr: boolean;
  /** The PM capability is there, and whether D3hot->D0 leaves state (No_Soft_Reset). */
  readonly pm: { readonly noSoftReset: boolean } | undefined;
  readonly acs: { readonly capability: number; readonly control: number } | undefined;
  readonly msi: { readonly vectors: number; readonly address64: boolean; readonly maskable: boolean } | undefined;
  readonly msix: { readonly vectors: number } | undefined;
  readonly bars: readonly BarFact[];
}

export function isBridgeHeader(h: HardwareFacts): boolean {
  return h.headerType === HEADER_TYPE_BRIDGE || h.headerType === HEADER_TYPE_CARDBUS;
}

export function readHardware(c: CapturedFunction): HardwareFacts {
  const bytes = c.bytes;
  const read = (o: number, s: 1 | 2 | 4): number => readLE(bytes, o, s);
  const headerByte = read(HEADER_TYPE, 1);
  const headerType = headerByte & 0x7f;
  const classCode = (read(CLASS_PROG, 1) | (read(CLASS_PROG + 1, 2) << 8)) >>> 0;
  const capabilitiesKnown = bytes.length > 0x40;
  const caps = capabilitiesKnown ? walkCapabilities(read, bytes.length, headerType).caps : [];
  const find = (extended: boolean, id: number): CapabilityInfo | undefined => caps.find((k) => k.extended === extended && k.id === id);
  const pcie = find(false, CAP_PCIE);
  const af = find(false, CAP_AF);
  const pm = find(false, CAP_PM);
  const acs = find(true, ECAP_ACS);
  const msi = find(false, CAP_MSI);
  const msix = find(false, CAP_MSIX);
  const pcieType = pcie === undefined ? undefined : ((PCIE_TYPES as Record<number, PcieType>)[(read(pcie.offset + PCIE_FLAGS, 2) >> 4) & 0xf] ?? 'unknown');
  const msiFlags = msi === undefined ? 0 : read(msi.offset + MSI_FLAGS, 2);
  const bars = decodeCapturedBars((o) => read(o, 4), headerType, (i) => c.barSizes.has(i)).map((b) => ({
    index: b.index,
    kind: b.kind,
    prefetchable: b.prefetchable,
    address: b.address,
    size: c.barSizes.get(b.index),
  }));
  return {
    headerType,
    multifunction: (headerByte & HEADER_TYPE_MULTIFUNCTION) !== 0,
    classCode,
    interruptPin: read(INTERRUPT_PIN, 1),
    configLength: bytes.length,
    capabilitiesKnown,
    capabilities: caps,
    pcieType,
    flr: pcie !== undefined && (read(pcie.offset + PCIE_DEVCAP, 4) & DEVCAP_FLR) !== 0,
    afFlr: af !== undefined && (read(af.offset + AF_CAP, 1) & AF_CAP_FLR) !== 0,
    pm: pm === undefined ? undefined : { noSoftReset: (read(pm.offset + PM_CTRL, 2) & PM_NO_SOFT_RESET) !== 0 },
    acs: acs === undefined ? undefined : { capability: read(acs.offset + ACS_CAP, 2), control: read(acs.offset + ACS_CTRL, 2) },
    msi: msi === undefined ? undefined : { vectors: 1 << ((msiFlags >> 1) & 7), address64: (msiFlags & (1 << 7)) !== 0, maskable: (msiFlags & (1 << 8)) !== 0 },
    msix: msix === undefined ? undefined : { vectors: (read(msix.offset + MSIX_FLAGS, 2) & 0x7ff) + 1 },
    bars,
  };
}

/** Base class 0x03 (display); 0x0300 with programming interface 0 is VGA-compatible. */
export function isDisplay(classCode: number): boolean {
  return classCode >>> 16 === 0x03;
}

export function isVga(classCode: number): boolean {
  return classCode >>> 8 === 0x0300;
}

/** Host bridges, ISA/LPC bridges and other bridges (class 0x06) are the platform's, not devices to pass. */
export function isPlatformBridge(classCode: number): boolean {
  return classCode >>> 16 === 0x06;
}
