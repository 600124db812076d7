import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One function of a made-up sysfs tree. */
export interface FakeFunction {
  /** `0000:00:03.0`. */
  readonly address: string;
  readonly vendor: number;
  readonly device: number;
  readonly classCode: number;
  readonly driver?: string;
  readonly group?: number;
  /** Config space bytes (default: a 256-byte header with the IDs and class, one 4 KiB BAR 0). */
  readonly config?: Uint8Array;
  /** sysfs `resource` text (default: BAR 0 of 4 KiB). */
  readonly resource?: string;
  readonly resetMethod?: string;
}

/**
 * Builds a sysfs tree under `root` as the kernel lays it out for PCI: bus/pci/devices/ADDR with
 * config, resource, vendor, device, class, reset_method and `driver` and `iommu_group` links,
 * kernel/iommu_groups/N/devices/ADDR links. For tests of what hvmpt reads and refuses, with no
 * real device involved.
 */
export function fakeSysfs(root: string, functions: readonly FakeFunction[]): string {
  const devices = join(root, 'bus', 'pci', 'devices');
  mkdirSync(devices, { recursive: true });
  for (const f of functions) {
    const dir = join(root, 'devices', 'pci0000:00', f.address);
    mkdirSync(dir, { recursive: true });
    symlinkSync(dir, join(devices, f.address));
    let config = f.config;
    if (config === undefined) {
      config = new Uint8Array(256);
      const v = new DataView(config.buffer);
      v.setUint16(0, f.vendor, true);
      v.setUint16(2, f.device, true);
      v.setUint32(8, (f.classCode << 8) >>> 0, true);
      v.setUint32(0x10, 0xfe00_0000, true);
      v.setUint8(0x3d, 1);
    }
    writeFileSync(join(dir, 'config'), config);
    writeFileSync(join(dir, 'resource'), f.resource ?? `0x00000000fe000000 0x00000000fe000fff 0x0000000000040200\n${'0x0000000000000000 0x0000000000000000 0x0000000000000000\n'.repeat(6)}`);
    writeFileSync(join(dir, 'vendor'), `0x${f.vendor.toString(16).padStart(4, '0')}\n`);
    writeFileSync(join(dir, 'device'), `0x${f.device.toString(16).padStart(4, '0')}\n`);
    writeFileSync(join(dir, 'class'), `0x${f.classCode.toString(16).padStart(6, '0')}\n`);
    if (f.resetMethod !== undefined) writeFileSync(join(dir, 'reset_method'), `${f.resetMethod}\n`);
    if (f.driver !== undefined) {
      const drv = join(root, 'bus', 'pci', 'drivers', f.driver);
      mkdirSync(drv, { recursive: true });
      symlinkSync(drv, join(dir, 'driver'));
    }
    if (f.group !== undefined) {
      const g = join(root, 'kernel', 'iommu_groups', String(f.group));
      mkdirSync(join(g, 'devices'), { recursive: true });
      symlinkSync(dir, join(g, 'devices', f.address));
      symlinkSync(g, join(dir, 'iommu_group'));
    }
  }
  return root;
}
