/**
 * The host a plan's pass-through devices come from, for composing its platform elsewhere than
 * on that host (an export, a report): its PCI functions as `HostFunction`s (the same facts
 * src/host/pci/live.ts reads from this machine's sysfs) and findings about them. Read from a
 * sysfs tree (`/sys`, or its `bus/pci/devices`: IOMMU groups and drivers included) or from a
 * capture (an `lspci -xxx` dump: config space only). The archive `hvmpt collect` writes (issue 13)
 * fills the same shape, its readiness analysis adding findings.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { isDirectory } from '../fs.js';
import { basename, dirname, join, resolve } from 'node:path';
import { compareBdf, sameBdf } from '../../hw/pci/address.js';
import { readLE } from '../../hw/pci/endian.js';
import { sysfsName, type HostFunction } from '../../hw/pci/host-function.js';
import { DEVICE_ID, VENDOR_ID } from '../../hw/pci/regs.js';
import { formatHostSelector, type HostSelector } from '../../plan/passthrough.js';
import { HostDeviceError, listHostFunctions, readHostFunction } from './live.js';
import { loadCapture } from './load.js';
import { readFacts } from '../facts/archive.js';
import { hostFactsOfSnapshot } from '../facts/host-facts.js';
import { FACTS_ROOT } from '../../hw/facts/files.js';
import { readSnapshot, type HostSnapshot } from '../../hw/facts/snapshot.js';

/** A readiness finding: something about the host that decides whether a device can be passed through. */
export interface HostFinding {
  readonly severity: 'blocker' | 'warning' | 'info';
  /** The host function it is about (`0000:03:00.0`), if one. */
  readonly device: string | undefined;
  readonly message: string;
}

export interface HostFacts {
  readonly source: string;
  readonly functions: readonly HostFunction[];
  /** The IOMMU the host's platform has, from its host bridge's vendor (Intel VT-d, AMD-Vi), when known. */
  readonly iommuVendor: 'intel' | 'amd' | undefined;
  readonly findings: readonly HostFinding[];
  /** The whole collection, when the facts came from one (`hvmpt collect`): its analysis runs once the plan's devices are known. */
  readonly collection?: HostSnapshot;
}

/** A host function's vendor and device IDs, from its config space. */
export function hostIds(f: HostFunction): { vendorId: number; deviceId: number } {
  return { vendorId: readLE(f.capture.bytes, VENDOR_ID, 2), deviceId: readLE(f.capture.bytes, DEVICE_ID, 2) };
}

const INTEL = 0x8086;
const AMD = 0x1022;

function factsOf(source: string, functions: HostFunction[]): HostFacts {
  functions.sort((a, b) => compareBdf(a.address, b.address));
  const hostBridge = functions.find((f) => f.address.segment === 0 && f.address.bus === 0 && f.address.device === 0 && f.address.fn === 0);
  const vendor = hostBridge === undefined ? undefined : hostIds(hostBridge).vendorId;
  return { source, functions, iommuVendor: vendor === INTEL ? 'intel' : vendor === AMD ? 'amd' : undefined, findings: [] };
}

/** The sysfs root a path names: `/sys` itself, or `/sys/bus/pci/devices`. */
function sysfsRoot(path: string): string | undefined {
  if (existsSync(join(path, 'bus', 'pci', 'devices'))) return path;
  const abs = resolve(path);
  if (basename(abs) === 'devices' && basename(dirname(abs)) === 'pci' && basename(dirname(dirname(abs))) === 'bus') return dirname(dirname(dirname(abs)));
  return undefined;
}

function isDirectoryOrFalse(path: string): boolean {
  try {
    return isDirectory(path);
  } catch {
    return false;
  }
}

/**
 * Whether a path is a host-facts collection: a folder holding (or named) `hvmpt-facts`, or a
 * file that starts as a tar archive (`ustar` at 257) or a gzip stream does.
 */
export function isFactsCollection(path: string, directory = isDirectoryOrFalse(path)): boolean {
  if (directory) return basename(resolve(path)) === FACTS_ROOT || existsSync(join(path, FACTS_ROOT));
  const head = new Uint8Array(512);
  let n = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  return n >= 262 && new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar';
}

/** Reads host facts from a sysfs tree, a host-facts collection (archive or folder) or a capture file. Read-only. */
export function readHostFacts(path: string): HostFacts {
  const directory = isDirectory(path);
  if (isFactsCollection(path, directory)) return hostFactsOfSnapshot(readSnapshot(readFacts(path)));
  const root = directory ? sysfsRoot(path) : undefined;
  if (root !== undefined) return factsOf(path, listHostFunctions(root).map((b) => readHostFunction(b, root)));
  const capture = loadCapture(path);
  return factsOf(
    capture.source,
    capture.functions.map((c) => ({ address: c.bdf, sysfs: `${capture.source} ${c.at}`, capture: c, driver: undefined, iommuGroup: undefined, group: [], resetMethods: [] })),
  );
}

/** The host function a plan's selector names: by address, or the n-th with those IDs in address order. */
export function resolveHostSelector(facts: HostFacts, s: HostSelector): HostFunction | undefined {
  if (s.kind === 'address') return facts.functions.find((f) => sameBdf(f.address, s.bdf));
  return facts.functions.filter((f) => {
    const ids = hostIds(f);
    return ids.vendorId === s.vendorId && ids.deviceId === s.deviceId;
  })[s.index];
}

/** As `resolveHostSelector`, or the error composition reports by plan path. */
export function requireHostFunction(facts: HostFacts, s: HostSelector): HostFunction {
  const f = resolveHostSelector(facts, s);
  if (f === undefined) throw new HostDeviceError(`${facts.source} has no function ${formatHostSelector(s)}`);
  return f;
}

/**
 * What the host facts say about the plan's pass-through devices: the host's own findings about
 * a device, and an IOMMU group the guest would share with functions it does not get (VFIO hands
 * a guest whole groups; bridges may stay with the host) unless `vfioGroups` is false (Xen
 * assigns single functions).
 */
export function passthroughFindings(facts: HostFacts, entries: ReadonlyArray<{ readonly path: string; readonly name: string; readonly host: HostFunction }>, options: { readonly vfioGroups?: boolean } = {}): HostFinding[] {
  const out: HostFinding[] = [];
  const passed = new Set(entries.map((e) => sysfsName(e.host.address)));
  for (const e of entries) {
    const who = `${e.path} (${e.name})`;
    const a = sysfsName(e.host.address);
    for (const f of facts.findings) if (f.device === a && f.severity !== 'info') out.push({ ...f, message: `${who}: ${a}: ${f.message}` });
    if (options.vfioGroups === false) continue;
    const left = e.host.group.filter((m) => m.address !== a && !m.bridge && !passed.has(m.address));
    if (left.length > 0) {
      out.push({
        severity: 'warning',
        device: a,
        message: `${who}: IOMMU group ${e.host.iommuGroup} also holds ${left.map((m) => `${m.address}${m.driver === undefined ? '' : ` (${m.driver})`}`).join(', ')}, which the guest does not get: VFIO gives a guest whole groups only`,
      });
    }
  }
  return out;
}
