import { HvmptError } from '../errors.js';
import type { ConfigBackend } from '../hw/pci/backend.js';
import type { E820Entry } from '../hw/mem/e820.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import type { Capture } from '../hw/pci/capture.js';
import { composePci, type ComposedPci, type ComposeInput } from '../hw/pci/compose.js';
import { placedChipset, type ChipsetHooks } from './chipset-pci.js';
import type { PassthroughAttachment } from './passthrough.js';
import type { PluginAttachment } from './plugins.js';

/** Where hvmpt puts the ECAM (MMCONFIG) window unless the plan says otherwise: QEMU q35's address. */
export const DEFAULT_ECAM_BASE = 0xb000_0000n;
/** Buses the ECAM window decodes (one MiB each). */
export const ECAM_BUSES = 256;

/**
 * The PCI part of a machine as plain data that crosses into the vCPU thread: the plan's PCI
 * section already resolved by the main thread (dumps read, device models' options turned into
 * specs), the host capture the bus starts from, the ECAM base and the ROM images the plan
 * attaches to devices. Both threads compose the same bus from it; the vCPU thread never loads
 * the plan layer (zod, YAML) or reads a file.
 */
export interface PciMachineConfig {
  /** Names the plan in composition errors. */
  readonly planFile: string;
  readonly base?: Capture;
  readonly input?: Omit<ComposeInput, 'base' | 'chipset'>;
  readonly ecamBase: bigint;
  /** Expansion ROM images by plan device name; the monitor serves them at the device's ROM BAR. */
  readonly roms: ReadonlyArray<{ readonly device: string; readonly name: string; readonly bytes: Uint8Array }>;
  /** Real functions backed by a live device: the vCPU thread attaches each back-end and composes over it. */
  readonly passthrough?: readonly PassthroughAttachment[];
  /** Device plug-ins the vCPU thread loads and instantiates behind their emulated functions. */
  readonly plugins?: readonly PluginAttachment[];
  /**
   * The host bridge's windows the guest's ACPI tables declare (its _CRS); every BAR the
   * firmware places is checked against them in the mapping log.
   */
  readonly windows?: GuestWindows;
}

/**
 * Composes the guest's bus: the host capture, the monitor's i440FX and PIIX3, then the plan.
 * `live` puts attached devices' config spaces behind the passthrough functions (the vCPU
 * thread's bus); without it they are replays of their host snapshot (the main thread's).
 */
export function composePlatformPci(cfg: PciMachineConfig, hooks: ChipsetHooks, live?: ReadonlyMap<string, ConfigBackend>): ComposedPci {
  const input = cfg.input;
  const real = live === undefined ? input?.real : input?.real?.map((r) => (live.has(r.name) ? { ...r, backend: live.get(r.name)! } : r));
  return composePci({ ...(cfg.base === undefined ? {} : { base: cfg.base }), chipset: placedChipset(hooks), ...(input ?? {}), ...(real === undefined ? {} : { real }) }, cfg.planFile);
}

export const NO_CHIPSET_HOOKS: ChipsetHooks = { pamChanged: () => {}, pirqChanged: () => {} };

const FOUR_GIB = 1n << 32n;
/** SeaBIOS's BUILD_PCIMEM_END: 32-bit BARs go below the IOAPIC, placed downward from here. */
export const PCI_MEM32_END = 0xfec0_0000n;
/** The 64-bit window's size: QEMU's default 64-bit PCI hole. */
const MEM64_SIZE = 32n << 30n;

/** The host bridge's windows cannot be placed (the ECAM window leaves no room for 32-bit BARs). */
export class PciWindowError extends HvmptError {}

/**
 * The windows the guest's host bridge decodes, as SeaBIOS places BARs on an i440FX
 * (src/fw/pciinit.c): I/O from 0xC000; 32-bit memory from the top of RAM below 4 GiB (raised
 * to 2 GiB or 3 GiB when RAM ends below those) up to the IOAPIC, allocated downward from
 * there, so the window is the part above the ECAM window when that lies inside it (SeaBIOS on
 * an i440FX knows nothing of ECAM); 64-bit memory from the first GiB boundary above RAM.
 * The tables' _CRS and the monitor's mapping check both use this.
 */
export function guestPciWindows(e820: readonly E820Entry[], ecam: { readonly start: bigint; readonly end: bigint } | undefined): GuestWindows {
  let ramSize = 0n;
  let over4g = 0n;
  for (const e of e820) {
    if (e.type !== 'usable') continue;
    if (e.start < FOUR_GIB) ramSize = e.end < FOUR_GIB ? (e.end > ramSize ? e.end : ramSize) : FOUR_GIB;
    else if (e.end - FOUR_GIB > over4g) over4g = e.end - FOUR_GIB;
  }
  let start = ramSize <= 0x8000_0000n ? 0x8000_0000n : ramSize <= 0xc000_0000n ? 0xc000_0000n : ramSize;
  if (ecam !== undefined && ecam.end > start && ecam.start < PCI_MEM32_END) start = ecam.end;
  if (start >= PCI_MEM32_END) throw new PciWindowError(`no room for 32-bit PCI memory between 0x${start.toString(16)} and the IOAPIC at 0x${PCI_MEM32_END.toString(16)}`);
  const gib = 1n << 30n;
  const base64 = ((FOUR_GIB + over4g + gib - 1n) / gib) * gib;
  return {
    io: { base: 0xc000n, limit: 0xffffn },
    mem32: { base: start, limit: PCI_MEM32_END - 1n },
    mem64: { base: base64, limit: base64 + MEM64_SIZE - 1n },
  };
}

/** Which of the windows holds [address, address + size), or 'outside'. */
export function windowOf(windows: GuestWindows, space: 'io' | 'mem', address: bigint, size: bigint): 'io' | 'mem32' | 'mem64' | 'outside' {
  const inside = (w: { base: bigint; limit: bigint } | undefined): boolean => w !== undefined && address >= w.base && address + size - 1n <= w.limit;
  if (space === 'io') return inside(windows.io) ? 'io' : 'outside';
  if (inside(windows.mem32)) return 'mem32';
  return inside(windows.mem64) ? 'mem64' : 'outside';
}
