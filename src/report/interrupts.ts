/**
 * The interrupt routing table: for each function the guest reaches, its INTx pin, the root
 * slot and pin it arrives on after the bridges' swizzle, the PIIX3 PIRQ line and the DSDT's
 * link device for it, and the GSI the IOAPIC gets (the APIC-mode _PRT's answer); or its MSI /
 * MSI-X capability. Vectors are the guest OS's choice, made at run time.
 */
import { DEFAULT_PIRQ_IRQS, piixPirq } from '../hw/acpi/generate/facts.js';
import { LINKS } from '../hw/acpi/generate/dsdt.js';
import { formatBdf } from '../hw/pci/address.js';
import { intxRoute } from '../hw/pci/intx.js';
import type { ComposedMachine } from '../platform/compose.js';
import type { PlatformFunction } from '../platform/functions.js';

export interface InterruptRow {
  readonly device: string;
  readonly bdf: string;
  readonly pin: string;
  /** `root slot 05 INTB` after the swizzle, or '' for a device on the root bus. */
  readonly via: string;
  readonly pirq: string;
  readonly link: string;
  readonly gsi: string;
  readonly msi: string;
}

const PIN = ['', 'INTA', 'INTB', 'INTC', 'INTD'];

export function interruptRows(composed: ComposedMachine, functions: readonly PlatformFunction[]): InterruptRow[] {
  const pirqIrqs = composed.acpi.generated?.facts.pirqIrqs ?? DEFAULT_PIRQ_IRQS;
  const gsiBase = composed.acpi.generated?.facts.ioApic.gsiBase ?? 0;
  const byId = new Map(composed.pci.entries.map((e) => [e.fn.id, e.fn]));
  const rows: InterruptRow[] = [];
  for (const f of functions) {
    if (f.hidden || f.kind === 'chipset') continue;
    const msi = [f.msi === undefined ? '' : 'MSI', f.msix === undefined ? '' : `MSI-X (${f.msix.tableSize} vectors)`].filter((x) => x !== '').join(', ');
    const base = { device: f.id, bdf: formatBdf(f.bdf), msi: msi === '' ? '—' : msi };
    const fn = byId.get(f.id);
    const route = fn === undefined ? undefined : intxRoute(composed.pci.topology, fn);
    if (route === undefined) {
      if (msi !== '') rows.push({ ...base, pin: 'none', via: '', pirq: '—', link: '—', gsi: '—' });
      continue;
    }
    const pirq = piixPirq(route.rootDevice, route.rootPin);
    rows.push({
      ...base,
      pin: PIN[route.pin]!,
      via: route.bridges.length === 0 ? '' : `root slot ${route.rootDevice.toString(16).padStart(2, '0')} ${PIN[route.rootPin]} (through ${route.bridges.map((b) => b.id).join(', ')})`,
      pirq: `PIRQ${'ABCD'[pirq]}`,
      link: `\\_SB.${LINKS[pirq]}`,
      gsi: String(gsiBase + pirqIrqs[pirq]!),
    });
  }
  return rows;
}
