/**
 * The guest's own ACPI tables, generated from the facts of the machine the monitor emulates.
 * See docs/acpi.md ("Generating a guest's tables").
 */
export { generateGuestTables } from './generate.js';
export type { GeneratedTable, GeneratedTables } from './generate.js';
export {
  DEFAULT_IO,
  DEFAULT_IOAPIC,
  DEFAULT_LINK_IRQS,
  DEFAULT_LOCAL_APIC,
  DEFAULT_MEM32,
  DEFAULT_PIRQ_IRQS,
  DEFAULT_PM,
  DEFAULT_RESET,
  DEFAULT_RSDP_ADDRESS,
  DEFAULT_TABLES_ADDRESS,
  GuestFactsError,
  piixPirq,
  resolveFacts,
} from './facts.js';
export type { GuestAcpiFacts, InterruptFacts, OemFacts, PciDeviceFact, PciFacts, PciRouteFact, ResolvedFacts, SsdtFact, WindowFact } from './facts.js';
export { hostBridgeResources, LINKS, plannedRoutes, slotName, uuidBytes } from './dsdt.js';
export type { PlannedRoute } from './dsdt.js';
export { pciFactsFromTopology } from './pci.js';
export type { PciFactsOptions } from './pci.js';
