import type { ErrorPlace } from '../../errors.js';
import { formatSize } from '../../util/format.js';
import type { BarLayout } from './bars.js';
import { bridgeWindows, setBridgeWindows, type Window } from './bridge.js';
import { PciAllocationError } from './errors.js';
import type { PciFunction } from './function.js';
import { CMD_IO, CMD_MEMORY, COMMAND } from './regs.js';
import { forwardsConfig, isBridge, type BusNode, type PciTopology } from './topology.js';

export type { Window } from './bridge.js';

/**
 * The guest's address windows the allocator places into: I/O ports, the 32-bit memory hole
 * below 4 GiB, and optionally a 64-bit window above RAM for 64-bit prefetchable BARs.
 */
export interface GuestWindows {
  readonly io?: Window;
  readonly mem32: Window;
  readonly mem64?: Window;
}

/** Defaults matching what SeaBIOS and QEMU's i440FX use: I/O from 0xC000, memory 0xC000_0000-0xFEBF_FFFF. */
export const DEFAULT_WINDOWS: GuestWindows = {
  io: { base: 0xc000n, limit: 0xffffn },
  mem32: { base: 0xc000_0000n, limit: 0xfebf_ffffn },
};

export type WindowName = 'io' | 'mem32' | 'mem64';

export interface PlacedBar {
  readonly fn: PciFunction;
  readonly bar: BarLayout;
  readonly address: bigint;
  readonly window: WindowName;
}

export interface PlacedBridgeWindows {
  readonly fn: PciFunction;
  readonly io: Window | null;
  readonly mem: Window | null;
  readonly pref: Window | null;
}

export interface AllocationResult {
  readonly bars: readonly PlacedBar[];
  readonly bridges: readonly PlacedBridgeWindows[];
}

/** Bridge window granularity: 4 KiB for I/O, 1 MiB for memory (PCI-to-PCI Bridge 1.2, 3.2.5). */
const IO_GRAN = 0x1000n;
const MEM_GRAN = 0x10_0000n;

type Class = 'io' | 'mem' | 'pref';

/** Something to place in one class of a bus: a BAR, or a bridge's window for that class. */
interface Item {
  readonly size: bigint;
  readonly align: bigint;
  /** Only a 64-bit prefetchable BAR, or a bridge window holding only such, may go above 4 GiB. */
  readonly above4g: boolean;
  readonly what: string;
  readonly place: (address: bigint) => void;
}

interface BusNeeds {
  readonly io: Item[];
  readonly mem: Item[];
  readonly pref: Item[];
}

function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) & ~(a - 1n);
}

/** A function's name, with its address now when that differs (the bus was renumbered). */
function who(fn: PciFunction, topology: PciTopology): string {
  const at = topology.addressOf(fn);
  return at === fn.id ? fn.id : `${fn.id} (at ${at})`;
}

function describeBar(fn: PciFunction, b: BarLayout, topology: PciTopology): string {
  const name = b.index === 6 ? 'expansion ROM' : `BAR ${b.index}`;
  const kind = b.kind === 'rom' ? 'rom' : `${b.kind}${b.prefetchable ? ' prefetchable' : ''}`;
  return `${who(fn, topology)} ${name} (${kind}, ${formatSize(b.size ?? 0n)})`;
}

function hexRange(w: Window): string {
  return `0x${w.base.toString(16)}-0x${w.limit.toString(16)}`;
}

/**
 * Places every BAR and bridge window of the visible topology in the guest's windows, the way
 * firmware does: sizes are gathered bottom-up (bridge windows round up to 4 KiB for I/O and
 * 1 MiB for memory and align to their largest member), then placed top-down largest alignment
 * first. Prefetchable BARs go through bridges' prefetchable windows; 64-bit prefetchable ones
 * go above 4 GiB when a 64-bit window is given and every bridge above supports it. Decode is
 * enabled on every function and bridge that got resources. When something does not fit, the
 * error names the device, the BAR, its size and the window.
 */
export function allocateResources(topology: PciTopology, windows: GuestWindows, options: { where?: ErrorPlace } = {}): AllocationResult {
  const where = options.where ?? {};
  const bars: PlacedBar[] = [];
  const bridges: PlacedBridgeWindows[] = [];
  const fail = (message: string): never => {
    throw new PciAllocationError(message, where);
  };

  const gather = (bus: BusNode, windowOf: (c: Class, above4g: boolean) => WindowName): BusNeeds => {
    const needs: BusNeeds = { io: [], mem: [], pref: [] };
    for (let devfn = 0; devfn < 256; devfn++) {
      const fn = bus.visible(devfn);
      if (fn === undefined) continue;
      for (const b of fn.bars?.layouts ?? []) {
        if (b.size === undefined) {
          fail(`${fn.id} BAR ${b.index} has no known size: give it in the plan (pci.functions[].bars), capture with lspci -vv, or set pci.unknownBarSize: alignment`);
        }
        const size = b.size!;
        const cls: Class = b.kind === 'io' ? 'io' : b.prefetchable && b.kind !== 'rom' ? 'pref' : 'mem';
        const above4g = b.kind === 'mem64' && b.prefetchable;
        const item: Item = {
          size,
          align: size,
          above4g,
          what: describeBar(fn, b, topology),
          place: (address) => {
            fn.bars!.setAddress(b, address);
            bars.push({ fn, bar: b, address, window: windowOf(cls, above4g && address >= 1n << 32n) });
          },
        };
        needs[cls].push(item);
      }
      if (forwardsConfig(fn) && !isBridge(fn)) {
        // CardBus windows are not modelled: placing what sits behind one could not be made consistent.
        const behind = topology.secondaryBus(fn).functions().filter((f) => !f.hidden);
        if (behind.length > 0) {
          fail(`${fn.id} is a CardBus bridge with ${behind.map((f) => f.id).join(', ')} behind it; hvmpt does not allocate CardBus windows: hide those functions (pci.hide) or the bridge`);
        }
      }
      if (isBridge(fn)) {
        const child = topology.secondaryBus(fn);
        const caps = bridgeWindows(fn);
        const childNeeds = gather(child, windowOf);
        const placed: { io: Window | null; mem: Window | null; pref: Window | null } = { io: null, mem: null, pref: null };
        const finish = (): void => {
          setBridgeWindows(fn, placed);
          bridges.push({ fn, ...placed });
        };
        let pending = 0;
        const done = (): void => {
          if (--pending === 0) finish();
        };
        const windowItem = (cls: Class, items: Item[], gran: bigint, above4g: boolean): Item | undefined => {
          if (items.length === 0) return undefined;
          const sorted = [...items].sort((a, b) => (b.align > a.align ? 1 : b.align < a.align ? -1 : 0));
          let end = 0n;
          for (const it of sorted) end = alignUp(end, it.align) + it.size;
          const align = sorted[0]!.align > gran ? sorted[0]!.align : gran;
          pending++;
          return {
            size: alignUp(end, gran),
            align,
            above4g,
            what: `${who(fn, topology)} ${cls === 'io' ? 'I/O' : cls === 'mem' ? 'memory' : 'prefetchable'} window (${formatSize(alignUp(end, gran))}, for ${sorted.map((s) => s.what).join('; ')})`,
            place: (address) => {
              const w = { base: address, limit: address + alignUp(end, gran) - 1n };
              placed[cls] = w;
              let at = address;
              for (const it of sorted) {
                at = alignUp(at, it.align);
                it.place(at);
                at += it.size;
              }
              done();
            },
          };
        };
        // A prefetchable window is 64-bit only if the bridge implements it and all it holds may go high.
        const pref64 = caps.pref64 && childNeeds.pref.length > 0 && childNeeds.pref.every((i) => i.above4g);
        const io = windowItem('io', childNeeds.io, IO_GRAN, false);
        const mem = windowItem('mem', childNeeds.mem, MEM_GRAN, false);
        const pref = windowItem('pref', childNeeds.pref, MEM_GRAN, pref64);
        if (io) needs.io.push(io);
        if (mem) needs.mem.push(mem);
        if (pref) needs.pref.push(pref);
        if (pending === 0) finish();
      }
    }
    return needs;
  };

  const roots = topology.rootBuses();
  const ioCursor = windows.io === undefined ? undefined : { at: windows.io.base, w: windows.io, name: 'io' as const };
  const memCursor = { at: windows.mem32.base, w: windows.mem32, name: 'mem32' as const };
  const highCursor = windows.mem64 === undefined ? undefined : { at: windows.mem64.base, w: windows.mem64, name: 'mem64' as const };
  const windowOf = (c: Class, high: boolean): WindowName => (c === 'io' ? 'io' : high ? 'mem64' : 'mem32');

  const all: Array<{ item: Item; cursor: 'io' | 'mem32' | 'mem64' }> = [];
  for (const root of roots) {
    const needs = gather(root, windowOf);
    for (const it of needs.io) all.push({ item: it, cursor: 'io' });
    for (const it of needs.mem) all.push({ item: it, cursor: 'mem32' });
    for (const it of needs.pref) all.push({ item: it, cursor: it.above4g && highCursor !== undefined ? 'mem64' : 'mem32' });
  }
  all.sort((a, b) => (b.item.align > a.item.align ? 1 : b.item.align < a.item.align ? -1 : 0));
  for (const { item, cursor } of all) {
    const c = cursor === 'io' ? ioCursor : cursor === 'mem64' ? highCursor : memCursor;
    if (c === undefined) {
      fail(`cannot place ${item.what}: the plan gives no ${cursor === 'io' ? 'I/O' : cursor} window`);
      continue;
    }
    const at = alignUp(c.at, item.align);
    if (at + item.size - 1n > c.w.limit) {
      fail(`cannot place ${item.what} in the ${c.name} window ${hexRange(c.w)}: ${formatSize(item.size)} aligned to ${formatSize(item.align)} would end at 0x${(at + item.size - 1n).toString(16)}`);
    }
    item.place(at);
    c.at = at + item.size;
  }

  // Firmware enables decode for what it placed; bridges forward what their windows hold.
  for (const fn of topology.functions()) {
    if (fn.hidden || fn.bars === null) continue;
    let cmd = fn.getStored(COMMAND, 2);
    for (const b of fn.bars.layouts) {
      if (b.kind === 'io') cmd |= CMD_IO;
      else if (b.kind !== 'rom') cmd |= CMD_MEMORY;
    }
    const placed = bridges.find((p) => p.fn === fn);
    if (placed?.io) cmd |= CMD_IO;
    if (placed?.mem || placed?.pref) cmd |= CMD_MEMORY;
    fn.setStored(COMMAND, 2, cmd);
    fn.bars.update();
  }
  return { bars, bridges };
}
