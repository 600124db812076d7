import type { GuestWindows } from '../../pci/allocator.js';
import type { PciFunction } from '../../pci/function.js';
import { intxRoutes } from '../../pci/intx.js';
import { CLASS_DEVICE } from '../../pci/regs.js';
import { forwardsConfig, type BusNode, type PciTopology } from '../../pci/topology.js';
import type { PciDeviceFact, PciFacts, PciRouteFact } from './facts.js';

/**
 * The `pci` facts from the PCI core's composed bus: the functions the guest reaches (hidden
 * ones are on no route, so they are not here and the DSDT never names them), what kind each
 * is, what sits behind each bridge, and the INTx pins in use at the root bus after the bridge
 * swizzle (intxRoutes). The windows are the allocator's (or the defaults SeaBIOS uses).
 */

export interface PciFactsOptions {
  readonly windows?: GuestWindows;
  /** Plan names by function, for the report. */
  readonly names?: ReadonlyMap<PciFunction, string>;
  /** The root bus to describe (default: the first one of segment 0). */
  readonly rootBus?: { readonly segment: number; readonly bus: number };
}

function kindOf(fn: PciFunction): PciDeviceFact['kind'] {
  const cls = fn.read(CLASS_DEVICE, 2);
  if (cls === 0x0600) return 'host-bridge';
  if (cls === 0x0601) return 'isa-bridge';
  return forwardsConfig(fn) ? 'bridge' : 'device';
}

export function pciFactsFromTopology(topology: PciTopology, options: PciFactsOptions = {}): PciFacts {
  const want = options.rootBus;
  const roots = topology.rootBuses();
  const root = want === undefined ? (roots.find((r) => r.segment === 0) ?? roots[0]) : roots.find((r) => r.segment === want.segment && r.number === want.bus);
  if (root === undefined) return { devices: [], routes: [] };
  const reachable = new Set(topology.reachable().map((r) => r.fn));
  const describe = (bus: BusNode): PciDeviceFact[] =>
    bus.functions()
      .filter((fn) => reachable.has(fn))
      .map((fn) => {
        const kind = kindOf(fn);
        const name = options.names?.get(fn) ?? fn.id;
        const base = { device: fn.device, fn: fn.fn, kind, name };
        if (kind !== 'bridge') return base;
        const child = topology.childBus(fn);
        return child === undefined ? base : { ...base, children: describe(child) };
      });
  const routes: PciRouteFact[] = [];
  const seen = new Set<string>();
  for (const r of intxRoutes(topology)) {
    if (!reachable.has(r.fn) || r.rootBus.segment !== root.segment || r.rootBus.bus !== root.number) continue;
    const key = `${r.rootDevice}/${r.rootPin}`;
    if (seen.has(key)) continue;
    seen.add(key);
    routes.push({ device: r.rootDevice, pin: r.rootPin });
  }
  routes.sort((a, b) => a.device - b.device || a.pin - b.pin);
  const w = options.windows;
  return {
    segment: root.segment,
    busRange: { start: root.number, end: 255 },
    ...(w === undefined ? {} : { windows: { ...(w.io === undefined ? {} : { io: w.io }), mem32: w.mem32, ...(w.mem64 === undefined ? {} : { mem64: w.mem64 }) } }),
    devices: describe(root),
    routes,
  };
}
