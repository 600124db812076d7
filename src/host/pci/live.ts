/**
 * This machine's PCI functions as sysfs shows them, read-only: finding the function a plan
 * names and reading what pass-through needs to know about it. `root` lets tests point it at a
 * sysfs tree of their own.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { compareBdf, parseBdf, type Bdf } from '../../hw/pci/address.js';
import { sysfsName, type GroupMember, type HostFunction } from '../../hw/pci/host-function.js';
import { readSysfsFunction } from './sysfs.js';

/** The host has no such function, or sysfs cannot be read. */
export class HostDeviceError extends HvmptError {}

export const SYSFS_ROOT = '/sys';

function devicesDir(root: string): string {
  return join(root, 'bus', 'pci', 'devices');
}

function linkName(path: string): string | undefined {
  try {
    return basename(readlinkSync(path));
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Every function sysfs lists, in address order. */
export function listHostFunctions(root = SYSFS_ROOT): Bdf[] {
  let names: string[];
  try {
    names = readdirSync(devicesDir(root));
  } catch (err) {
    throw new HostDeviceError(`cannot list PCI devices: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: devicesDir(root) });
  }
  return names.flatMap((n) => parseBdf(n) ?? []).sort(compareBdf);
}

/** Vendor and device IDs of a function, from sysfs. */
function idsOf(root: string, b: Bdf): { vendorId: number; deviceId: number } | undefined {
  const dir = join(devicesDir(root), sysfsName(b));
  const v = readText(join(dir, 'vendor'));
  const d = readText(join(dir, 'device'));
  return v === undefined || d === undefined ? undefined : { vendorId: Number(v), deviceId: Number(d) };
}

/** The address a host selector names: as given, or the n-th function (address order) with those IDs. */
export function findHostFunction(selector: { kind: 'address'; bdf: Bdf } | { kind: 'ids'; vendorId: number; deviceId: number; index: number }, root = SYSFS_ROOT): Bdf {
  const all = listHostFunctions(root);
  if (selector.kind === 'address') {
    const hit = all.find((b) => compareBdf(b, selector.bdf) === 0);
    if (hit === undefined) throw new HostDeviceError(`no PCI function ${sysfsName(selector.bdf)} on this host (${all.length} functions in ${devicesDir(root)})`);
    return hit;
  }
  const matching = all.filter((b) => {
    const ids = idsOf(root, b);
    return ids !== undefined && ids.vendorId === selector.vendorId && ids.deviceId === selector.deviceId;
  });
  const hit = matching[selector.index];
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  if (hit === undefined) {
    const have = matching.length === 0 ? 'none' : matching.map(sysfsName).join(', ');
    throw new HostDeviceError(`no function #${selector.index} with IDs ${hex(selector.vendorId)}:${hex(selector.deviceId)} on this host (found: ${have})`);
  }
  return hit;
}

function isBridge(dir: string): boolean {
  const cls = readText(join(dir, 'class'));
  return cls !== undefined && (Number(cls) >>> 8) === 0x0604;
}

/** Reads what pass-through needs to know about one host function. */
export function readHostFunction(address: Bdf, root = SYSFS_ROOT): HostFunction {
  const name = sysfsName(address);
  const dir = join(devicesDir(root), name);
  try {
    statSync(dir);
  } catch {
    throw new HostDeviceError(`no PCI function ${name} on this host`, { input: dir });
  }
  const capture = readSysfsFunction(dir, address);
  const groupLink = linkName(join(dir, 'iommu_group'));
  const iommuGroup = groupLink === undefined ? undefined : Number(groupLink);
  let group: GroupMember[] = [];
  if (iommuGroup !== undefined) {
    const gdir = join(root, 'kernel', 'iommu_groups', String(iommuGroup), 'devices');
    let members: string[] = [];
    try {
      members = readdirSync(gdir);
    } catch {
      members = [name];
    }
    group = members
      .flatMap((m) => (parseBdf(m) === undefined ? [] : [m]))
      .sort((a, b) => compareBdf(parseBdf(a)!, parseBdf(b)!))
      .map((m) => {
        const mdir = join(devicesDir(root), m);
        return { address: m, driver: linkName(join(mdir, 'driver')), bridge: isBridge(mdir) };
      });
  }
  const reset = readText(join(dir, 'reset_method'));
  return {
    address,
    sysfs: dir,
    capture,
    driver: linkName(join(dir, 'driver')),
    iommuGroup,
    group,
    resetMethods: reset === undefined || reset === '' ? [] : reset.split(/\s+/),
  };
}
