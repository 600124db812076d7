import { acpiPlan, PlanWithAcpiSchema, type AcpiPlanOptions, type LoadedAcpiPlan } from '../../plan/acpi.js';
import type { z } from 'zod';
import { loadStructuredFile } from '../../plan/load.js';
import { resolvePlanFiles } from './files.js';

/** Reads a plan file's `acpi` section, the files it names, and composes its `pci` section, if any. */
export function loadAcpiPlan(file: string, options: AcpiPlanOptions = {}): LoadedAcpiPlan {
  return acpiPlanFrom(loadStructuredFile(PlanWithAcpiSchema, file), file, options);
}

/** The same from a plan already parsed (and validated against PlanWithAcpiSchema). */
export function acpiPlanFrom(plan: z.output<typeof PlanWithAcpiSchema>, file: string, options: AcpiPlanOptions = {}): LoadedAcpiPlan {
  // Only the sections this schema validated: a machine section passes through it unchecked.
  return acpiPlan(plan, file, resolvePlanFiles({ acpi: plan.acpi, pci: plan.pci }, file), options);
}
