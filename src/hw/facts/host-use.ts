/**
 * What the host itself needs among its PCI functions: the disks holding its root (and /boot,
 * /usr, /var, swap), the network interfaces its default routes leave through, and the GPU or
 * serial card holding its console. Found from the collection's mount table, routes and the
 * sysfs paths of block, network, graphics and tty devices (a sysfs device path names every PCI
 * function between the root bus and the device).
 */
import { parseBdf } from '../pci/address.js';
import type { HostSnapshot } from './snapshot.js';

export type HostUseKind = 'boot-disk' | 'mounted' | 'swap' | 'default-route' | 'console-gpu' | 'display' | 'serial-console';

export interface HostUse {
  readonly kind: HostUseKind;
  /** The PCI function (`0000:02:00.0`). */
  readonly device: string;
  /** In words: `/ (ext2 on /dev/nvme0n1)`, `eth0 (default IPv4 route)`. */
  readonly detail: string;
}

/** The filesystems a host cannot run without: losing their disk takes the host down. */
const ESSENTIAL_MOUNTS = ['/', '/boot', '/boot/efi', '/usr', '/var'];

/** The PCI function a sysfs device path sits under: the last PCI address in it. */
export function pciFunctionOfPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const hits = path.split('/').filter((p) => /^[0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(p) && parseBdf(p) !== undefined);
  return hits[hits.length - 1]?.toLowerCase();
}

function blockFunctions(s: HostSnapshot, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const b = s.host.blocks.find((x) => x.name === name);
  if (b === undefined) return [];
  if (b.slaves.length > 0) return b.slaves.flatMap((sl) => blockFunctions(s, sl, seen));
  const f = pciFunctionOfPath(b.path);
  return f === undefined ? [] : [f];
}

/** The block device a mount source or device number names. */
function blockOf(s: HostSnapshot, device: string, source: string): string | undefined {
  const byDev = s.host.blocks.find((b) => b.dev === device);
  if (byDev !== undefined) return byDev.name;
  const mapper = /^\/dev\/mapper\/(.+)$/.exec(source);
  if (mapper !== null) return s.host.blocks.find((b) => b.dmName === mapper[1])?.name;
  const dev = /^\/dev\/(.+)$/.exec(source);
  if (dev !== null) return s.host.blocks.find((b) => b.name === dev[1]!.replace(/\//g, '!'))?.name;
  return undefined;
}

function netFunctions(s: HostSnapshot, iface: string, seen = new Set<string>()): string[] {
  if (seen.has(iface)) return [];
  seen.add(iface);
  const n = s.host.nets.find((x) => x.name === iface);
  if (n === undefined) return [];
  const f = pciFunctionOfPath(n.path);
  if (f !== undefined) return [f];
  return n.lower.flatMap((l) => netFunctions(s, l, seen));
}

export function hostUses(s: HostSnapshot): HostUse[] {
  const out: HostUse[] = [];
  const add = (kind: HostUseKind, devices: readonly string[], detail: string): void => {
    for (const device of devices) if (!out.some((u) => u.kind === kind && u.device === device && u.detail === detail)) out.push({ kind, device, detail });
  };
  // Every mounted filesystem's device: the ones the host boots from, and the others (unmount first).
  // The last mount on a point is the one in effect.
  const mounts = s.host.mounts ?? [];
  const inEffect = mounts.filter((m, i) => !mounts.slice(i + 1).some((later) => later.mountPoint === m.mountPoint));
  for (const m of inEffect) {
    const kind: HostUseKind = ESSENTIAL_MOUNTS.includes(m.mountPoint) ? 'boot-disk' : 'mounted';
    const detail = `${m.mountPoint} (${m.fsType} on ${m.source})`;
    if (m.fsType === '9p' || m.fsType === 'virtiofs') {
      const share = s.host.shares.find((x) => x.tag === m.source);
      const f = pciFunctionOfPath(share?.path);
      if (f !== undefined) add(kind, [f], detail);
      continue;
    }
    const block = blockOf(s, m.device, m.source);
    if (block !== undefined) add(kind, blockFunctions(s, block), detail);
  }
  for (const sw of s.host.swaps ?? []) {
    const dev = /^\/dev\/(.+)$/.exec(sw);
    if (dev !== null) add('swap', blockFunctions(s, dev[1]!), `swap on ${sw}`);
  }
  for (const r of s.host.routes ?? []) add('default-route', netFunctions(s, r.iface), `${r.iface} (default ${r.family === 'ipv4' ? 'IPv4' : 'IPv6'} route)`);
  const fbConsole = s.host.vtconsoles.some((v) => v.bound && /frame buffer/i.test(v.name));
  for (const d of s.host.displays) {
    const f = pciFunctionOfPath(d.path);
    if (f !== undefined) add(fbConsole && d.name.startsWith('fb') ? 'console-gpu' : 'display', [f], fbConsole && d.name.startsWith('fb') ? `${d.name} holds the text console` : `${d.name}`);
  }
  for (const f of s.pci.functions) if (f.bootVga === true) add('console-gpu', [f.dir.slice(f.dir.lastIndexOf('/') + 1).toLowerCase()], 'the firmware\'s boot VGA device (its console until a driver takes over)');
  for (const c of s.host.consoles) {
    const f = pciFunctionOfPath(c.device);
    if (f !== undefined) add('serial-console', [f], `console ${c.name}`);
  }
  return out;
}

export const HOST_USE_WORDS: Readonly<Record<HostUseKind, string>> = {
  'boot-disk': 'holds a filesystem the host boots from',
  mounted: 'holds a filesystem the host has mounted',
  swap: 'holds the host\'s swap',
  'default-route': 'carries the host\'s default route',
  'console-gpu': 'drives the host\'s console',
  display: 'drives a host display',
  'serial-console': 'is the host\'s serial console',
};
