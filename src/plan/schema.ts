/**
 * A whole plan: the sections each area defines, composed. Each section's schema lives with its
 * area (src/plan/<area>.ts); this file only puts them together, so a plan is validated once
 * and every problem is reported by its path (`memory.size`, `acpi.generate.cpus`, `machine.boot.kernel`).
 */
import { z } from 'zod';
import { AcpiSectionSchema } from './acpi.js';
import { loadStructuredFile } from './load.js';
import { machineSectionSchema } from './machine.js';
import { memorySectionSchema } from './memory.js';
import { PciSectionSchema } from './pci.js';

export const planSchema = z.strictObject({
  /** A name for messages and reports. */
  name: z.string().min(1).optional(),
  memory: memorySectionSchema.default({ size: 256n * 1024n * 1024n, layout: 'ordinary', reservations: [], lowMemory: 'private' }),
  pci: PciSectionSchema.optional(),
  /** The guest's ACPI tables: generated (default) or the host's, world-view rules, exposed host tables. */
  acpi: AcpiSectionSchema.optional(),
  /**
   * Policy plug-ins (docs/plugins.md), applied in order to the plan as written, before it is
   * composed: each may hide or expose PCI functions, add ACPI rules and SSDTs.
   */
  policies: z
    .array(z.strictObject({ module: z.string().min(1, 'a module specifier: ./my-policy.js or a package name'), export: z.string().min(1).optional(), options: z.record(z.string(), z.unknown()).optional() }))
    .optional(),
  machine: machineSectionSchema.default({ cpus: 1, boot: { kind: 'grub-report' }, serial: 'stdout', onReset: 'exit', roms: [] }),
});

export type Plan = z.output<typeof planSchema>;

export function loadPlan(file: string): Plan {
  return loadStructuredFile(planSchema, file);
}
