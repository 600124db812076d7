/**
 * Reads every file a plan names, in one step, before anything is composed: one PlanError lists
 * every file that cannot be read or parsed, each by the plan path that names it.
 */
import { HvmptError } from '../../errors.js';
import { PlanFiles, planFileRefs, type PlanFileRef, type PlanWithFiles, type ResolvedFile } from '../../plan/files.js';
import { readInputBytes, type InputKind } from '../../plan/input.js';
import { PlanError, planRelative, type PlanProblem } from '../../plan/load.js';
import { loadAcpiSource } from '../acpi/source.js';
import { readE820Input } from '../mem/read.js';
import { loadCapture } from '../pci/load.js';

/** The cap a raw file is read under: a kernel, an initrd or what goes into one may be large, anything else is small. */
function bytesKind(at: string): InputKind {
  if (at === 'machine.boot.kernel') return 'kernel';
  if (at === 'machine.boot.initrd') return 'initrd';
  return at.startsWith('machine.boot.files[') ? 'guestFile' : 'firmware';
}

function readOne(ref: PlanFileRef, path: string): ResolvedFile {
  switch (ref.kind) {
    case 'bytes':
      return { kind: 'bytes', path, bytes: readInputBytes(path, bytesKind(ref.at)) };
    case 'pci-capture':
      return { kind: 'pci-capture', path, capture: loadCapture(path) };
    case 'acpi-tables':
      return { kind: 'acpi-tables', path, tables: loadAcpiSource(path).tables };
    case 'e820':
      return { kind: 'e820', path, result: readE820Input(path) };
  }
}

/** Why a file could not be had, without repeating its name when the error already names it. */
function reason(err: unknown, path: string): string {
  if (err instanceof HvmptError) return err.where.input === path ? `${path}: ${err.detail}` : err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined) return `${path}: cannot read: ${code}`;
  throw err;
}

export function resolvePlanFiles(plan: PlanWithFiles, planFile: string): PlanFiles {
  const problems: PlanProblem[] = [];
  const files = new Map<string, ResolvedFile>();
  for (const ref of planFileRefs(plan)) {
    const path = planRelative(planFile, ref.file);
    try {
      files.set(ref.at, readOne(ref, path));
    } catch (err) {
      problems.push({ path: ref.at, message: reason(err, path) });
    }
  }
  if (problems.length > 0) throw new PlanError(planFile, problems);
  return new PlanFiles(planFile, files);
}
