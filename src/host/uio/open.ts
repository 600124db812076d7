/**
 * Opening a function bound to uio_pci_generic, in the main thread: sysfs `config`, each BAR's
 * `resourceN`, and /dev/uioN, whose reads count the interrupts the driver masked. What the
 * vCPU thread needs crosses as fd numbers (process-wide); src/host/uio/attached.ts drives them.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError } from '../../errors.js';
import type { BackendHandle, DeviceDescription, RegionInfo, ResetMethod } from '../../hw/pci/backend.js';
import { sysfsName, type HostFunction } from '../../hw/pci/host-function.js';
import { O_CLOEXEC, O_RDWR, O_WRONLY, type Sys } from '../../native/sys.js';

/** A uio function that cannot be opened (no uio node, a resource file missing). */
export class UioError extends HvmptError {}

const PAGE = 0x1000n;

export interface OpenedUio {
  readonly description: DeviceDescription;
  readonly handle: Extract<BackendHandle, { kind: 'uio' }>;
  close(): void;
}

/** The uioN node the driver created for the function (`/sys/bus/pci/devices/X/uio/uioN`). */
function uioNode(host: HostFunction): string {
  const dir = join(host.sysfs, 'uio');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^uio\d+$/.test(n));
  } catch {
    names = [];
  }
  if (names.length !== 1) throw new UioError(`no uio node under ${dir}: is uio_pci_generic bound to it?`, { input: sysfsName(host.address) });
  return `/dev/${names[0]}`;
}

/**
 * The function's regions as the capture and sysfs `resource` tell them: a memory BAR may be
 * mapped whole (sysfs `resourceN` is mmap-able), an I/O BAR is forwarded by pread/pwrite of the
 * same file. The ROM is not offered (no guest ROM through uio).
 */
export function uioRegions(host: HostFunction): RegionInfo[] {
  const bytes = host.capture.bytes;
  const regions: RegionInfo[] = [];
  for (let i = 0; i < 6; i++) {
    const size = host.capture.barSizes.get(i);
    if (size === undefined || size === 0n) continue;
    const low = bytes[0x10 + 4 * i]! | (bytes[0x11 + 4 * i]! << 8);
    const io = (low & 1) === 1;
    regions.push({ index: i, size, read: true, write: true, mmap: !io && size >= PAGE ? [{ offset: 0n, size }] : [] });
  }
  return regions;
}

export function openUio(sys: Sys, host: HostFunction, resetMethods: readonly ResetMethod[]): OpenedUio {
  const name = sysfsName(host.address);
  const fds: number[] = [];
  const open = (path: string, flags: number): number => {
    const fd = sys.open(path, flags | O_CLOEXEC);
    fds.push(fd);
    return fd;
  };
  try {
    const node = uioNode(host);
    const config = open(join(host.sysfs, 'config'), O_RDWR);
    const uio = open(node, O_RDWR);
    const regions = uioRegions(host);
    const resources = regions.map((r) => ({ index: r.index, fd: open(join(host.sysfs, `resource${r.index}`), O_RDWR) }));
    const canReset = resetMethods[0] !== 'none';
    const reset = canReset ? open(join(host.sysfs, 'reset'), O_WRONLY) : undefined;
    const pin = host.capture.bytes[0x3d] ?? 0;
    const description: DeviceDescription = {
      backend: 'uio',
      source: `${name} (uio_pci_generic, ${node}, no IOMMU)`,
      regions,
      // Without an IOMMU an MSI write would reach the host's own APIC: INTx only.
      interrupts: { intx: pin === 0 ? 0 : 1, msi: 0, msix: 0 },
      reset: canReset ? resetMethods : ['none'],
    };
    return {
      description,
      handle: { kind: 'uio', address: name, config, configLength: host.capture.bytes.length > 256 ? 4096 : 256, uio, resources, reset },
      close: () => {
        for (const fd of fds.splice(0).reverse()) sys.close(fd);
      },
    };
  } catch (err) {
    for (const fd of fds.splice(0).reverse()) sys.close(fd);
    throw err;
  }
}
