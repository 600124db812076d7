/**
 * Everything composition needs from outside the plan, resolved at the edge
 * (src/host/plan/inputs.ts): the files the plan names, the default firmware, the boot image,
 * and the host map an identity layout is carved from. With these, `composeMachine` is pure.
 */
import type { ParseResult } from '../hw/mem/e820-parse.js';
import type { BackendHandle, DeviceDescription } from '../hw/pci/backend.js';
import type { HostFunction } from '../hw/pci/host-function.js';
import type { PlanFiles } from '../plan/files.js';
import type { PluginInput } from './plugins.js';

/** What runs after the firmware: an image linuxboot_dma.bin loads (a Linux kernel, or GRUB behind lnxboot.img). */
export interface BootImage {
  readonly name: string;
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly cmdline: string;
  /** One line for the run's summary. */
  readonly summary: string;
}

/** A device the run opened through its back-end (src/host/backends/): what it said, and how to reach it. */
export interface OpenedDevice {
  readonly description: DeviceDescription;
  /** The ROM the guest sees when the plan says `rom: auto`: the device's own, checked; undefined when it has none usable. */
  readonly rom: Uint8Array | undefined;
  readonly handle: BackendHandle;
}

/** One `pci.passthrough` entry, resolved: the host function it names, and once the run opened it, the back-end. */
export interface PassthroughInput {
  readonly host: HostFunction;
  readonly opened?: OpenedDevice;
}

export interface PlatformInputs {
  readonly planFile: string;
  readonly files: PlanFiles;
  /** The BIOS image: the plan's machine.firmware, or Debian's SeaBIOS. */
  readonly firmware: { readonly name: string; readonly image: Uint8Array };
  /** QEMU's linuxboot_dma.bin option ROM, which loads the boot image. */
  readonly linuxbootRom: Uint8Array;
  /** What linuxboot_dma.bin loads; absent when the firmware boots from a disk (machine.boot.kind: disk). */
  readonly boot?: BootImage;
  /** `pci.passthrough`, entry by entry. */
  readonly passthrough: readonly PassthroughInput[];
  /** `pci.plugins`, entry by entry, resolved by the plug-in layer (src/plugin/load.ts); absent when nothing loaded them. */
  readonly plugins?: readonly PluginInput[];
  /** For identity layouts: the host E820 (machine.hostMap, else this machine's), and where it came from. */
  readonly hostMap?: {
    readonly result: ParseResult;
    readonly source: string;
    /**
     * This machine's own map, read live: the carve can be real, and the guest's RAM is the host's
     * through /dev/mem. A map a plan names (`machine.hostMap`) is another host's (or a rehearsal):
     * the guest's RAM is then the monitor's own memory at the planned addresses.
     */
    readonly live?: boolean;
  };
}
