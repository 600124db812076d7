/**
 * Attaching a back-end in the vCPU thread from the handle the main thread opened, and the config
 * view the composed bus reads it through.
 */
import type { DmaMemory } from '../hw/chipset/fw-cfg.js';
import { attachUio } from '../host/uio/attached.js';
import { attachVfio } from '../host/vfio/attached.js';
import { attachVfioUser } from '../plugin/vfio-user/client.js';
import type { AttachedDevice, ConfigBackend } from '../hw/pci/backend.js';
import { ROM_BAR_INDEX, barOffset } from '../hw/pci/regs.js';
import type { Sys } from '../native/sys.js';
import type { PassthroughAttachment } from '../platform/passthrough.js';

export interface AttachOptions {
  /** Guest memory, for back-ends that reach it by messages (vfio-user without shared memory). */
  readonly memory: DmaMemory;
  /** The back-end lost its device (a vfio-user server died): report it; it answers all ones from then on. */
  readonly dead: (why: string) => void;
}

export function attachDevice(sys: Sys, a: PassthroughAttachment, options: AttachOptions): AttachedDevice {
  switch (a.handle.kind) {
    case 'vfio':
      return attachVfio(sys, a.handle, { description: a.description, rom: undefined });
    case 'uio':
      return attachUio(sys, a.handle, { description: a.description });
    case 'vfio-user':
      return attachVfioUser(sys, a.handle, { description: a.description, memory: options.memory, onDead: options.dead });
  }
}

/**
 * The device's config space as composition must see it: the BAR sizes composition used in the
 * main thread, and a ROM BAR reading 0 when the guest is shown none, so both threads build the
 * same function.
 */
export function liveConfig(device: AttachedDevice, a: PassthroughAttachment): ConfigBackend {
  const c = device.config;
  const rom = barOffset(ROM_BAR_INDEX, c.read(0x0e, 1) & 0x7f);
  const hidesRom = (offset: number, size: number): boolean => a.romHidden && offset < rom + 4 && rom < offset + size;
  return {
    length: c.length,
    source: c.source,
    read: (offset, size) => (hidesRom(offset, size) ? 0 : c.read(offset, size)),
    write: (offset, size, value) => {
      if (!hidesRom(offset, size)) c.write(offset, size, value);
    },
    barSize: (index) => a.barSizes.get(index),
  };
}
