import { loadCapture } from '../host/pci/load.js';
import { parseBdf, sameBdf } from '../hw/pci/address.js';
import type { Capture } from '../hw/pci/capture.js';
import { composePci, type ComposedPci } from '../hw/pci/compose.js';
import { PlanError } from '../plan/load.js';
import { pciComposeInput, type PciSection } from '../plan/pci.js';
import { placedChipset, type ChipsetHooks } from './chipset-pci.js';

/** Where hvmpt puts the ECAM (MMCONFIG) window unless the plan says otherwise: QEMU q35's address. */
export const DEFAULT_ECAM_BASE = 0xb000_0000n;
/** Buses the ECAM window decodes (one MiB each). */
export const ECAM_BUSES = 256;

/**
 * The PCI part of a machine, as plain data that crosses into the vCPU thread: the plan's
 * validated `pci` section, the host capture the bus starts from, the ECAM base and the ROM
 * images the plan attaches to devices. Both threads compose the same bus from it.
 */
export interface PciMachineConfig {
  readonly planFile: string;
  readonly section?: PciSection;
  /** The host capture (lspci dump or sysfs tree) and, optionally, the functions of it to keep. */
  readonly host?: { readonly capture: string; readonly functions?: readonly string[] };
  readonly ecamBase: bigint;
  /** Expansion ROM images by plan device name; the monitor serves them at the device's ROM BAR. */
  readonly roms: ReadonlyArray<{ readonly device: string; readonly name: string; readonly bytes: Uint8Array }>;
}

function hostCapture(cfg: PciMachineConfig): Capture | undefined {
  if (cfg.host === undefined) return undefined;
  const capture = loadCapture(cfg.host.capture);
  const keep = cfg.host.functions;
  if (keep === undefined) return capture;
  const problems: Array<{ path: string; message: string }> = [];
  const bdfs = keep.map((text, i) => {
    const b = parseBdf(text);
    if (b === undefined) problems.push({ path: `machine.hostPci.functions[${i}]`, message: `'${text}' is not a PCI address like 00:1f.3` });
    else if (!capture.functions.some((f) => sameBdf(f.bdf, b))) problems.push({ path: `machine.hostPci.functions[${i}]`, message: `${text} is not in ${capture.source}` });
    return b;
  });
  if (problems.length > 0) throw new PlanError(cfg.planFile, problems);
  return { ...capture, functions: capture.functions.filter((f) => bdfs.some((b) => b !== undefined && sameBdf(b, f.bdf))) };
}

/** Composes the guest's bus: the host capture, the monitor's i440FX and PIIX3, then the plan. */
export function composePlatformPci(cfg: PciMachineConfig, hooks: ChipsetHooks): ComposedPci {
  const base = hostCapture(cfg);
  const input = cfg.section === undefined ? {} : pciComposeInput(cfg.section, { planFile: cfg.planFile });
  return composePci({ ...(base === undefined ? {} : { base }), chipset: placedChipset(hooks), ...input }, cfg.planFile);
}

export const NO_CHIPSET_HOOKS: ChipsetHooks = { pamChanged: () => {}, pirqChanged: () => {} };
