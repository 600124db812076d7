/**
 * `pci.plugins` on the guest's bus: device plug-ins loaded in-process (their layout is an
 * emulated function's spec) and devices another process serves over vfio-user (a real function
 * whose config space and regions the server describes, driven like a VFIO device). The plug-in
 * layer resolves each entry at the edge (src/plugin/load.ts); placement here is pure.
 */
import type { BackendHandle, DeviceDescription } from '../hw/pci/backend.js';
import type { CapturedFunction } from '../hw/pci/capture.js';
import type { Location, PlacedEmulated, PlacedReal } from '../hw/pci/compose.js';
import type { EmulatedFunctionSpec } from '../hw/pci/emulated.js';
import type { PassthroughAttachment } from './passthrough.js';

/** A device plug-in the vCPU thread loads by module URL and instantiates (plain data: it crosses threads). */
export interface PluginAttachment {
  readonly name: string;
  /** The plan path of its entry (`pci.plugins[0]`). */
  readonly path: string;
  /** A file: URL. */
  readonly module: string;
  readonly export: string;
  /** The plan's options, as written: the vCPU thread validates them again with the plug-in's own schema. */
  readonly options: unknown;
  /** How long one call into the plug-in may run, ms. */
  readonly watchdogMs: number;
}

/** One `pci.plugins` entry, resolved at the edge. */
export type PluginInput =
  | {
      readonly kind: 'module';
      readonly path: string;
      readonly name: string;
      readonly at: Location;
      /** The layout the plug-in declared for these options, as the PCI core's spec. */
      readonly spec: EmulatedFunctionSpec;
      readonly attachment: PluginAttachment;
      readonly summary: string;
    }
  | {
      readonly kind: 'socket';
      readonly path: string;
      readonly name: string;
      readonly at: Location;
      /** Config space and BAR sizes as the server reported them. */
      readonly capture: CapturedFunction;
      readonly description: DeviceDescription;
      /** Present when the run connected (the vCPU thread drives the device through it). */
      readonly handle?: BackendHandle;
      readonly summary: string;
    };

/** The plug-ins' functions for composition, and what the vCPU thread needs to bring them to life. */
export function placePlugins(plugins: readonly PluginInput[]): {
  emulated: PlacedEmulated[];
  real: PlacedReal[];
  attachments: PluginAttachment[];
  live: PassthroughAttachment[];
} {
  const emulated: PlacedEmulated[] = [];
  const real: PlacedReal[] = [];
  const attachments: PluginAttachment[] = [];
  const live: PassthroughAttachment[] = [];
  for (const p of plugins) {
    if (p.kind === 'module') {
      emulated.push({ name: p.name, at: p.at, spec: p.spec, path: p.path });
      attachments.push(p.attachment);
      continue;
    }
    real.push({ name: p.name, at: p.at, capture: p.capture, source: p.description.source, path: p.path });
    if (p.handle !== undefined) live.push({ name: p.name, backend: 'vfio-user', handle: p.handle, description: p.description, barSizes: p.capture.barSizes, romHidden: !p.capture.barSizes.has(6) });
  }
  return { emulated, real, attachments, live };
}
