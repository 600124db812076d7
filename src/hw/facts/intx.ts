/**
 * Where a function's INTx line goes on the host, as Linux finds it (drivers/acpi/pci_irq.c
 * acpi_pci_irq_lookup): the _PRT of the bus the function sits on, by slot and pin; without an
 * entry there, the pin swizzled to the bridge above and looked up on that bridge's bus, up to
 * the root. A route ends on a GSI (APIC mode) or a link device whose _CRS names one.
 */
import { readResources } from '../acpi/namespace/crs.js';
import type { AcpiNamespace, NsNode } from '../acpi/namespace/namespace.js';
import { readPrt, type PrtEntry, type PrtRouting, type PrtTable } from '../acpi/namespace/prt.js';
import { devicesAtPciPath, rootBridges, type PciPath } from '../acpi/world/select.js';
import { swizzle, type IntxPin } from '../pci/intx.js';
import type { HostFunction, HostPci } from './host-pci.js';

export interface IntxRouteFact {
  /** The pin the function raises: 1 INTA … 4 INTD. */
  readonly pin: IntxPin;
  /** The _PRT that routes it (`\_SB_.PCI0._PRT`), and the slot and pin it was found under there. */
  readonly via: string;
  readonly slot: number;
  readonly slotPin: IntxPin;
  /** The GSI, when the entry or its link's _CRS names a fixed one. */
  readonly gsi: number | undefined;
  /** The link device, for link routes (`\_SB_.GSIA`). */
  readonly link: string | undefined;
}

export type IntxLookup =
  | { readonly kind: 'routed'; readonly route: IntxRouteFact }
  | { readonly kind: 'no-pin' }
  /** No table names it: no ACPI tables collected, no _PRT, or a _PRT hvmpt cannot evaluate statically. */
  | { readonly kind: 'unknown'; readonly reason: string };

function prtTable(r: PrtRouting | undefined): PrtTable | undefined | string {
  if (r === undefined) return undefined;
  if (r.kind === 'static') return r;
  if (r.kind === 'by-model') return r.apic;
  return r.reason;
}

/** A fixed interrupt a link device's _CRS names (GSI links such as QEMU q35's GSIA-GSIH). */
function linkGsi(ns: AcpiNamespace, link: NsNode | undefined): number | undefined {
  if (link === undefined) return undefined;
  const crs = readResources(ns, link, '_CRS');
  if (crs?.kind !== 'template') return undefined;
  const irqs = crs.template.resources.flatMap((r) => (r.type === 'ExtendedInterrupt' || r.type === 'Irq' ? r.interrupts : []));
  return irqs.length === 1 ? irqs[0] : undefined;
}

export class IntxRouter {
  private readonly ns: AcpiNamespace;
  private readonly pci: HostPci;
  private readonly prts = new Map<NsNode, PrtTable | undefined | string>();

  constructor(ns: AcpiNamespace, pci: HostPci) {
    this.ns = ns;
    this.pci = pci;
  }

  /** The ACPI device object of a bus: the root bridge for a root bus, else the bridge's own object. */
  private busNode(f: HostFunction): NsNode | undefined {
    const bridge = this.pci.parent(f);
    if (bridge === undefined) {
      const roots = rootBridges(this.ns);
      const b = f.facts.bdf;
      const hit = roots.find((r) => (r.segment ?? 0) === b.segment && (r.bus ?? 0) === b.bus);
      return hit?.node ?? (roots.length === 1 ? roots[0]!.node : undefined);
    }
    if (bridge.facts.acpiPath !== undefined) {
      const n = this.ns.get(bridge.facts.acpiPath);
      if (n !== undefined) return n;
    }
    const chain = [...this.pci.upstream(bridge).reverse(), bridge];
    const top = chain[0]!;
    const path: PciPath = { segment: top.facts.bdf.segment, bus: top.facts.bdf.bus, hops: chain.map((c) => ({ device: c.facts.bdf.device, fn: c.facts.bdf.fn })) };
    return devicesAtPciPath(this.ns, path)[0];
  }

  private table(node: NsNode): PrtTable | undefined | string {
    if (!this.prts.has(node)) this.prts.set(node, prtTable(readPrt(this.ns, node)));
    return this.prts.get(node);
  }

  lookup(f: HostFunction): IntxLookup {
    const own = f.hw?.interruptPin ?? 0;
    if (own < 1 || own > 4) return { kind: 'no-pin' };
    let pin = own as IntxPin;
    let cur = f;
    for (;;) {
      const node = this.busNode(cur);
      const table = node === undefined ? undefined : this.table(node);
      if (typeof table === 'string') return { kind: 'unknown', reason: `${node!.path}._PRT cannot be read statically (${table})` };
      const entry: PrtEntry | undefined = table?.entries.find((e) => e.device === cur.facts.bdf.device && e.pin === pin - 1 && (e.function === 'any' || e.function === cur.facts.bdf.fn));
      if (entry !== undefined) {
        const link = entry.source.kind === 'link' ? entry.source : undefined;
        return {
          kind: 'routed',
          route: {
            pin: own as IntxPin,
            via: table!.from,
            slot: cur.facts.bdf.device,
            slotPin: pin,
            gsi: entry.source.kind === 'gsi' ? entry.source.gsi : linkGsi(this.ns, link?.device),
            link: link?.path,
          },
        };
      }
      const up = this.pci.parent(cur);
      if (up === undefined) return { kind: 'unknown', reason: node === undefined ? 'no ACPI object for its host bridge' : `no _PRT entry for slot ${cur.facts.bdf.device} pin ${'ABCD'[pin - 1]} under ${node.path}` };
      pin = swizzle(pin, cur.facts.bdf.device);
      cur = up;
    }
  }
}
