import type { Capture } from '../hw/pci/capture.js';
import { composePci, type ComposedPci, type ComposeInput } from '../hw/pci/compose.js';
import { placedChipset, type ChipsetHooks } from './chipset-pci.js';

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
}

/** Composes the guest's bus: the host capture, the monitor's i440FX and PIIX3, then the plan. */
export function composePlatformPci(cfg: PciMachineConfig, hooks: ChipsetHooks): ComposedPci {
  return composePci({ ...(cfg.base === undefined ? {} : { base: cfg.base }), chipset: placedChipset(hooks), ...(cfg.input ?? {}) }, cfg.planFile);
}

export const NO_CHIPSET_HOOKS: ChipsetHooks = { pamChanged: () => {}, pirqChanged: () => {} };
