import type { Bdf } from './address.js';
import type { PciFunction } from './function.js';
import { INTERRUPT_PIN } from './regs.js';
import type { BusNode, PciTopology } from './topology.js';

export type IntxPin = 1 | 2 | 3 | 4;

/**
 * How one function's INTx reaches the root: its own pin, swizzled at every bridge on the way
 * up, arrives on `rootPin` of slot `rootDevice` on a root bus. The monitor maps (rootDevice,
 * rootPin) to a GSI through the PIIX PIRQ registers; the ACPI generator writes the same pairs
 * into _PRT.
 */
export interface IntxRoute {
  readonly fn: PciFunction;
  /** The function's address now. */
  readonly bdf: Bdf;
  /** The function's Interrupt Pin: 1 = INTA# … 4 = INTD#. */
  readonly pin: IntxPin;
  readonly rootBus: { readonly segment: number; readonly bus: number };
  readonly rootDevice: number;
  readonly rootPin: IntxPin;
  /** The bridges crossed, from the root bus down. */
  readonly bridges: readonly PciFunction[];
}

/** The standard PCI-to-PCI bridge swizzle: INTx of device d behind a bridge arrives on pin ((pin - 1 + d) mod 4) + 1. */
export function swizzle(pin: IntxPin, device: number): IntxPin {
  return ((((pin - 1 + device) % 4) + 4) % 4 + 1) as IntxPin;
}

/** The route of one attached function, or undefined when it has no interrupt pin (or a pin outside 1-4). */
export function intxRoute(topology: PciTopology, fn: PciFunction): IntxRoute | undefined {
  const own = fn.read(INTERRUPT_PIN, 1);
  if (own < 1 || own > 4) return undefined;
  let pin = own as IntxPin;
  let at: PciFunction = fn;
  let bus: BusNode = topology.busOf(fn);
  const bridges: PciFunction[] = [];
  while (bus.bridge !== null) {
    pin = swizzle(pin, at.device);
    at = bus.bridge;
    bridges.unshift(at);
    bus = topology.busOf(at);
  }
  return {
    fn,
    bdf: fn.address,
    pin: own as IntxPin,
    rootBus: { segment: bus.segment, bus: bus.number },
    rootDevice: at.device,
    rootPin: pin,
    bridges,
  };
}

/** The INTx routing of every function a guest reaches that has an interrupt pin, in BDF order. */
export function intxRoutes(topology: PciTopology): IntxRoute[] {
  const out: IntxRoute[] = [];
  for (const { fn } of topology.reachable()) {
    const r = intxRoute(topology, fn);
    if (r !== undefined) out.push(r);
  }
  return out;
}
