import { existsSync, readFileSync } from 'node:fs';
import { HvmptError } from '../../errors.js';

/** A firmware file hvmpt needs is not installed. */
export class FirmwareNotFoundError extends HvmptError {}

export interface FirmwareFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** Firmware nobody here wrote, from Debian packages. */
export const FIRMWARE = {
  seabios: { path: '/usr/share/seabios/bios-256k.bin', pkg: 'seabios' },
  linuxbootDma: { path: '/usr/share/qemu/linuxboot_dma.bin', pkg: 'qemu-system-data' },
  lnxboot: { path: '/usr/lib/grub/i386-pc/lnxboot.img', pkg: 'grub-pc-bin' },
  grubModules: { path: '/usr/lib/grub/i386-pc', pkg: 'grub-pc-bin' },
} as const;

export type FirmwareName = keyof typeof FIRMWARE;

export function firmwarePath(name: FirmwareName): string {
  const f = FIRMWARE[name];
  if (!existsSync(f.path)) {
    throw new FirmwareNotFoundError(`not found; install Debian package ${f.pkg} (or run scripts/setup.sh)`, { input: f.path });
  }
  return f.path;
}

export function haveFirmware(name: FirmwareName): boolean {
  return existsSync(FIRMWARE[name].path);
}

export function readFirmware(name: FirmwareName): FirmwareFile {
  const path = firmwarePath(name);
  return { path, bytes: new Uint8Array(readFileSync(path)) };
}
