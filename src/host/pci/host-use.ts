/**
 * Which PCI functions this machine needs for itself: the controller of the root filesystem's
 * disk and the NIC of the default route. A guest must never take them (or anything in their
 * IOMMU group). Read-only: /proc/self/mountinfo, /proc/net/route and ipv6_route, and sysfs.
 */
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

export interface HostUse {
  /** `0000:00:04.0`. */
  readonly address: string;
  /** What the host uses it for, in words: "the root filesystem's disk (/dev/vda1)". */
  readonly use: string;
}

export interface HostUseOptions {
  readonly sysfsRoot?: string;
  readonly procRoot?: string;
}

const PCI_ADDRESS = /[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/g;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The PCI function a sysfs device path hangs from (the last PCI address in its resolved path). */
function pciFunctionOf(path: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined;
  }
  const all = real.match(PCI_ADDRESS);
  return all === null ? undefined : all[all.length - 1];
}

/** Block devices under a block device (dm, md and partitions resolve to their disks). */
function blockFunctions(sys: string, majmin: string, seen = new Set<string>()): string[] {
  if (seen.has(majmin)) return [];
  seen.add(majmin);
  const dir = join(sys, 'dev', 'block', majmin);
  const out: string[] = [];
  const own = pciFunctionOf(dir);
  if (own !== undefined) out.push(own);
  let slaves: string[] = [];
  try {
    slaves = readdirSync(join(dir, 'slaves'));
  } catch {
    // Not stacked.
  }
  for (const s of slaves) {
    const dev = read(join(dir, 'slaves', s, 'dev'))?.trim();
    if (dev !== undefined) out.push(...blockFunctions(sys, dev, seen));
  }
  return out;
}

/** The root filesystem's disk controller(s). */
function rootDisk(sys: string, proc: string): HostUse[] {
  const info = read(join(proc, 'self', 'mountinfo'));
  if (info === undefined) return [];
  // Fields: id parent major:minor root mount-point ... - fstype source
  const line = info.split('\n').find((l) => l.split(' ')[4] === '/');
  if (line === undefined) return [];
  const fields = line.split(' ');
  const majmin = fields[2]!;
  const source = fields[fields.indexOf('-') + 2] ?? majmin;
  return [...new Set(blockFunctions(sys, majmin))].map((address) => ({ address, use: `the root filesystem's disk (${source})` }));
}

/** The interfaces that carry a default route, IPv4 and IPv6. */
function defaultRouteInterfaces(proc: string): string[] {
  const names = new Set<string>();
  for (const l of (read(join(proc, 'net', 'route')) ?? '').split('\n').slice(1)) {
    const f = l.trim().split(/\s+/);
    if (f.length > 7 && f[1] === '00000000' && f[7] === '00000000') names.add(f[0]!);
  }
  for (const l of (read(join(proc, 'net', 'ipv6_route')) ?? '').split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 10 && /^0{32}$/.test(f[0]!) && f[1] === '00' && f[9] !== 'lo') names.add(f[9]!);
  }
  return [...names];
}

/** Every PCI function this machine needs for itself, with why. */
export function hostUses(options: HostUseOptions = {}): HostUse[] {
  const sys = options.sysfsRoot ?? '/sys';
  const proc = options.procRoot ?? '/proc';
  const uses = rootDisk(sys, proc);
  for (const iface of defaultRouteInterfaces(proc)) {
    const address = pciFunctionOf(join(sys, 'class', 'net', iface, 'device'));
    if (address !== undefined) uses.push({ address, use: `the default route's network interface (${iface})` });
  }
  return uses;
}
