import { formatBdf, formatDevfn, type Bdf } from './address.js';
import type { BarLayout } from './bars.js';
import { bridgeWindows, type Window } from './bridge.js';
import { capabilityListOffset } from './capabilities.js';
import type { ComposedEntry, ComposedPci } from './compose.js';
import type { PciFunction } from './function.js';
import { NO_NAMES, type PciNames } from './ids.js';
import { intxRoute } from './intx.js';
import {
  CLASS_DEVICE,
  CLASS_PROG,
  DEVICE_ID,
  HEADER_TYPE,
  INTERRUPT_LINE,
  PRIMARY_BUS,
  REVISION_ID,
  SECONDARY_BUS,
  SUBORDINATE_BUS,
  VENDOR_ID,
} from './regs.js';
import { forwardsConfig, isBridge, type BusNode } from './topology.js';

/** Class names for the dump's device lines (lspci -F reads only the address; these are for people). */
const CLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0000, 'Non-VGA unclassified device'],
  [0x0100, 'SCSI storage controller'],
  [0x0101, 'IDE interface'],
  [0x0104, 'RAID bus controller'],
  [0x0106, 'SATA controller'],
  [0x0107, 'Serial Attached SCSI controller'],
  [0x0108, 'Non-Volatile memory controller'],
  [0x0180, 'Mass storage controller'],
  [0x0200, 'Ethernet controller'],
  [0x0280, 'Network controller'],
  [0x0300, 'VGA compatible controller'],
  [0x0302, '3D controller'],
  [0x0380, 'Display controller'],
  [0x0401, 'Multimedia audio controller'],
  [0x0403, 'Audio device'],
  [0x0500, 'RAM memory'],
  [0x0580, 'Memory controller'],
  [0x0600, 'Host bridge'],
  [0x0601, 'ISA bridge'],
  [0x0604, 'PCI bridge'],
  [0x0607, 'CardBus bridge'],
  [0x0680, 'Bridge'],
  [0x0700, 'Serial controller'],
  [0x0800, 'PIC'],
  [0x0880, 'System peripheral'],
  [0x0b40, 'Co-processor'],
  [0x0c00, 'FireWire (IEEE 1394)'],
  [0x0c03, 'USB controller'],
  [0x0c05, 'SMBus'],
  [0x0d00, 'IRDA controller'],
  [0x1101, 'Performance counters'],
  [0x1180, 'Signal processing controller'],
  [0xff00, 'Unassigned class'],
]);

function hex(n: number | bigint, digits: number): string {
  return n.toString(16).padStart(digits, '0');
}

/**
 * The heading lspci prints for a function: class, vendor and device names when the ID
 * database knows them (numeric IDs always follow, so the line stays unambiguous).
 */
function describe(fn: PciFunction, names: PciNames): string {
  const cls = fn.read(CLASS_DEVICE, 2);
  const vendorId = fn.read(VENDOR_ID, 2);
  const deviceId = fn.read(DEVICE_ID, 2);
  const className = names.className(cls) ?? CLASS_NAMES.get(cls) ?? `Class ${hex(cls, 4)}`;
  const vendor = names.vendor(vendorId);
  const device = names.device(vendorId, deviceId);
  const what = vendor === undefined ? 'Device' : device === undefined ? `${vendor} Device` : `${vendor} ${device}`;
  const rev = fn.read(REVISION_ID, 1);
  return `${className} [${hex(cls, 4)}]: ${what} [${hex(vendorId, 4)}:${hex(deviceId, 4)}]${rev !== 0 ? ` (rev ${hex(rev, 2)})` : ''}`;
}

/**
 * The guest's view as an `lspci -xxxx`-style dump that `lspci -F` reads: every function a
 * guest reaches by config cycles, in address order, each with as many bytes of config space
 * as it exposes, read through the composed view (the same path CF8 and ECAM take).
 */
export function writeLspciDump(c: ComposedPci, names: PciNames = NO_NAMES): string {
  const out: string[] = [];
  for (const { fn, bdf } of c.topology.reachable()) {
    out.push(`${formatBdf(bdf, c.withDomains)} ${describe(fn, names)}`);
    const devfn = (bdf.device << 3) | bdf.fn;
    for (let line = 0; line < fn.length; line += 16) {
      const bytes: string[] = [];
      for (let o = line; o < Math.min(line + 16, fn.length); o++) bytes.push(hex(c.topology.readConfig(bdf.segment, bdf.bus, devfn, o, 1), 2));
      out.push(`${line.toString(16).padStart(2, '0')}: ${bytes.join(' ')}`);
    }
    out.push('');
  }
  return out.join('\n') + (out.length > 0 ? '' : '\n');
}

function entryOf(c: ComposedPci, fn: PciFunction): ComposedEntry | undefined {
  return c.entries.find((e) => e.fn === fn) ?? c.hidden.find((e) => e.fn === fn);
}

function sizeText(size: bigint | undefined): string {
  if (size === undefined) return 'size unknown';
  for (const [u, s] of [['G', 30n], ['M', 20n], ['K', 10n]] as const) if (size >= 1n << s && size % (1n << s) === 0n) return `${size >> s}${u}`;
  return `${size}`;
}

function barText(fn: PciFunction, b: BarLayout): string {
  const addr = fn.bars!.address(b);
  const mapped = fn.bars!.mappings().find((m) => m.layout === b)?.mapping ?? null;
  const name = b.index === 6 ? 'ROM' : `BAR${b.index}`;
  const state = b.size === undefined ? ', size unknown (fixed)' : `, ${sizeText(b.size)}${mapped === null ? ' (not decoded)' : ''}`;
  return `${name} ${b.kind}${b.prefetchable ? ' pref' : ''} @ 0x${hex(addr, b.kind === 'io' ? 4 : 8)}${state}`;
}

function windowText(w: Window | null, digits: number): string {
  return w === null ? 'closed' : `0x${hex(w.base, digits)}-0x${hex(w.limit, digits)}`;
}

/**
 * A tree like `lspci -t`, with what hvmpt knows: where each function came from, its BARs and
 * their decode state, bridge bus ranges and windows, the INTx route; then the hidden
 * functions and the warnings.
 */
export function writeTree(c: ComposedPci, names: PciNames = NO_NAMES): string {
  const lines: string[] = [];
  const reachable = new Set(c.topology.reachable().map((r) => r.fn));
  const walk = (bus: BusNode, indent: string): void => {
    const fns = bus.functions().filter((f) => !f.hidden);
    fns.forEach((fn, i) => {
      const last = i === fns.length - 1;
      const e = entryOf(c, fn);
      const origin = fn.kind === 'real' ? `real, ${e?.source ?? ''}` : `${fn.kind}${e !== undefined && e.origin !== 'capture' ? `, ${e.source}` : ''}`;
      const name = fn.id !== formatBdf(fn.address) ? ` "${fn.id}"` : '';
      const unreachable = reachable.has(fn) ? '' : ' [not reachable]';
      lines.push(`${indent}${last ? '└─' : '├─'} ${formatDevfn(fn.device, fn.fn)}${name} ${describe(fn, names)} (${origin})${unreachable}`);
      const sub = indent + (last ? '   ' : '│  ');
      for (const b of fn.bars?.layouts ?? []) lines.push(`${sub}   ${barText(fn, b)}`);
      const r = reachable.has(fn) ? intxRoute(c.topology, fn) : undefined;
      if (r !== undefined) {
        lines.push(`${sub}   INT${'ABCD'[r.pin - 1]} -> root slot ${hex(r.rootDevice, 2)} INT${'ABCD'[r.rootPin - 1]}, line ${fn.read(INTERRUPT_LINE, 1)}`);
      }
      if (forwardsConfig(fn)) {
        const buses = `bus ${hex(fn.read(PRIMARY_BUS, 1), 2)} -> [${hex(fn.read(SECONDARY_BUS, 1), 2)}-${hex(fn.read(SUBORDINATE_BUS, 1), 2)}]`;
        if (isBridge(fn)) {
          const w = bridgeWindows(fn);
          lines.push(`${sub}   ${buses}, io ${windowText(w.io, 4)}, mem ${windowText(w.mem, 8)}, pref ${windowText(w.pref, 8)}`);
        } else {
          lines.push(`${sub}   ${buses} (CardBus)`);
        }
        walk(c.topology.secondaryBus(fn), sub);
      }
    });
  };
  for (const root of c.topology.rootBuses()) {
    lines.push(`[${hex(root.segment, 4)}:${hex(root.number, 2)}] root bus`);
    walk(root, '');
  }
  if (c.hidden.length > 0) {
    lines.push('', 'hidden (absent from every access path):');
    for (const e of c.hidden) lines.push(`  ${e.fn.id} ${describe(e.fn, names)} (${e.source})`);
  }
  if (c.warnings.length > 0) {
    lines.push('', 'warnings:');
    for (const w of c.warnings) lines.push(`  ${w}`);
  }
  return lines.join('\n') + '\n';
}

interface JsonBar {
  index: number;
  kind: string;
  prefetchable: boolean;
  size: string | null;
  sizeSource: string;
  address: string;
  decoded: boolean;
}

/** The composed view as plain data (addresses as "0x…" strings). */
export function viewJson(c: ComposedPci): unknown {
  const reach = c.topology.reachable();
  const fnJson = (fn: PciFunction, bdf: Bdf | null): Record<string, unknown> => {
    const e = entryOf(c, fn);
    const bars: JsonBar[] = (fn.bars?.layouts ?? []).map((b) => ({
      index: b.index,
      kind: b.kind,
      prefetchable: b.prefetchable,
      size: b.size === undefined ? null : `0x${b.size.toString(16)}`,
      sizeSource: b.sizeSource,
      address: `0x${fn.bars!.address(b).toString(16)}`,
      decoded: fn.bars!.mappings().some((m) => m.layout === b && m.mapping !== null),
    }));
    const out: Record<string, unknown> = {
      id: fn.id,
      bdf: bdf === null ? null : formatBdf(bdf, true),
      kind: fn.kind,
      origin: e?.origin ?? null,
      source: e?.source ?? null,
      capturedBdf: e?.capturedBdf === undefined ? null : formatBdf(e.capturedBdf, true),
      vendorId: `0x${hex(fn.read(VENDOR_ID, 2), 4)}`,
      deviceId: `0x${hex(fn.read(DEVICE_ID, 2), 4)}`,
      classCode: `0x${hex((fn.read(CLASS_DEVICE, 2) << 8) | fn.read(CLASS_PROG, 1), 6)}`,
      headerType: fn.read(HEADER_TYPE, 1) & 0x7f,
      configBytes: fn.length,
      bars,
      capabilities: (fn.capabilities?.caps ?? []).map((cap) => ({ offset: `0x${hex(cap.offset, cap.extended ? 3 : 2)}`, id: `0x${hex(cap.id, cap.extended ? 4 : 2)}`, extended: cap.extended, name: cap.name, visible: c.topology.isAttached(fn) && !fn.hidden && capVisible(fn, cap.offset, cap.extended) })),
      capabilityProblems: (fn.capabilities?.problems ?? []).map((p) => p.message),
    };
    if (isBridge(fn)) {
      const w = bridgeWindows(fn);
      const win = (x: Window | null): unknown => (x === null ? null : { base: `0x${x.base.toString(16)}`, limit: `0x${x.limit.toString(16)}` });
      out.bridge = {
        primary: fn.read(PRIMARY_BUS, 1),
        secondary: fn.read(SECONDARY_BUS, 1),
        subordinate: fn.read(SUBORDINATE_BUS, 1),
        io: win(w.io),
        memory: win(w.mem),
        prefetchable: win(w.pref),
      };
    }
    if (bdf !== null) {
      const r = intxRoute(c.topology, fn);
      out.intx = r === undefined ? null : { pin: 'ABCD'[r.pin - 1], rootBus: formatBdf({ ...r.rootBus, device: 0, fn: 0 }, true).slice(0, 7), rootDevice: r.rootDevice, rootPin: 'ABCD'[r.rootPin - 1], interruptLine: fn.read(INTERRUPT_LINE, 1) };
    }
    return out;
  };
  return {
    functions: reach.map(({ fn, bdf }) => fnJson(fn, bdf)),
    unreachable: c.entries.filter((e) => !reach.some((r) => r.fn === e.fn)).map((e) => fnJson(e.fn, null)),
    hidden: c.hidden.map((e) => ({ id: e.fn.id, source: e.source, capturedBdf: e.capturedBdf === undefined ? null : formatBdf(e.capturedBdf, true) })),
    mappings: c.topology.mappings().map((m) => ({ bdf: formatBdf(m.bdf, true), id: m.fn.id, bar: m.bar.index, kind: m.bar.kind, prefetchable: m.bar.prefetchable, address: `0x${m.mapping.address.toString(16)}`, size: `0x${m.mapping.size.toString(16)}` })),
    warnings: c.warnings,
  };
}

/** Whether a capability is still in the chain the guest walks. */
function capVisible(fn: PciFunction, offset: number, extended: boolean): boolean {
  if (!extended) {
    if ((fn.read(0x06, 2) & 0x10) === 0) return false;
    const seen = new Set<number>();
    for (let p = fn.read(capabilityListOffset(fn.read(HEADER_TYPE, 1)), 1) & 0xfc; p >= 0x40 && !seen.has(p); p = fn.read(p + 1, 1) & 0xfc) {
      if (p === offset) return true;
      seen.add(p);
    }
    return false;
  }
  const seen = new Set<number>();
  for (let p = 0x100; p >= 0x100 && p < fn.length && !seen.has(p); ) {
    const h = fn.read(p, 4);
    if (h === 0 || h === 0xffff_ffff) return false;
    if (p === offset && (h & 0xffff) !== 0) return true;
    seen.add(p);
    p = (h >>> 20) & 0xffc;
  }
  return false;
}
