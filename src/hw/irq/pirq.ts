import type { GsiSink } from './line.js';

/**
 * The PIIX3 PCI interrupt router: four PIRQ lines (A-D), each routed by a register (0x60-0x63
 * in the ISA bridge's config space: bit 7 disables, bits 3:0 name an ISA IRQ) to an ISA IRQ,
 * which KVM's routing sends to both the PIC and the IOAPIC pin of the same number. Devices
 * assert INTx through `setIntx`; lines are shared, so each PIRQ counts its asserters and the
 * ISA IRQ is the OR of every PIRQ routed to it.
 */
export class PirqRouter {
  /** Reset value of PIIX3's PIRQRC registers: all routing disabled. */
  static readonly RESET_ROUTE = 0x80;
  private readonly routes = [0x80, 0x80, 0x80, 0x80];
  private readonly asserters: Array<Set<string>> = [new Set(), new Set(), new Set(), new Set()];
  private readonly irqLevel = new Map<number, boolean>();

  constructor(private readonly sink: GsiSink) {}

  /** PCI's conventional swizzle on PIIX: slot 1 INTA is PIRQB... ((slot - 1) + pin) mod 4, as QEMU's piix does and SeaBIOS's tables assume. */
  static pirqOf(slot: number, pin: 1 | 2 | 3 | 4): number {
    return (slot - 1 + (pin - 1)) & 3;
  }

  route(pirq: number): number {
    return this.routes[pirq & 3]!;
  }

  /** The ISA IRQ a PIRQ is routed to, or undefined when disabled. */
  isaIrq(pirq: number): number | undefined {
    const r = this.routes[pirq & 3]!;
    if (r & 0x80) return undefined;
    const irq = r & 0x0f;
    // IRQs 0-2, 8 and 13 are reserved on PIIX3; a route there is treated as disabled.
    return irq < 3 || irq === 8 || irq === 13 ? undefined : irq;
  }

  setRoute(pirq: number, value: number): void {
    this.routes[pirq & 3] = value & 0x8f;
    this.refresh();
  }

  /** `source` names the asserting device (and pin), so shared lines de-assert correctly. */
  setIntx(pirq: number, source: string, level: boolean): void {
    const set = this.asserters[pirq & 3]!;
    if (level) set.add(source);
    else set.delete(source);
    this.refresh();
  }

  private refresh(): void {
    const want = new Map<number, boolean>();
    for (let p = 0; p < 4; p++) {
      const irq = this.isaIrq(p);
      if (irq === undefined) continue;
      want.set(irq, (want.get(irq) ?? false) || this.asserters[p]!.size > 0);
    }
    for (const irq of new Set([...want.keys(), ...this.irqLevel.keys()])) {
      const level = want.get(irq) ?? false;
      if ((this.irqLevel.get(irq) ?? false) === level) continue;
      this.irqLevel.set(irq, level);
      this.sink.setGsi(irq, level);
    }
  }
}
