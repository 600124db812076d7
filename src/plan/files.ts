/**
 * The files a plan names, resolved once at the edge.
 *
 * A plan names files in many places (firmware, kernel, captures, host maps and tables, ROMs,
 * SSDTs). `planFileRefs` lists every one of them with the plan path that names it; the host
 * layer reads them all in one step (src/host/plan-files.ts), reporting every unreadable file by
 * its plan path at once, and hands composition a `PlanFiles` it only looks things up in. So
 * composing a platform is pure, and an exporter or a test can compose from files it already
 * holds (an archive, a fixture) without touching the disk.
 */
import type { TableImage } from '../hw/acpi/dump/image.js';
import type { ParseResult } from '../hw/mem/e820-parse.js';
import type { Capture } from '../hw/pci/capture.js';
import type { AcpiSection } from './acpi.js';
import type { MachineSection } from './machine.js';
import type { PciSection } from './pci.js';

/** How a file is read: raw bytes, a PCI capture, ACPI tables, or an E820 source. */
export type PlanFileKind = 'bytes' | 'pci-capture' | 'acpi-tables' | 'e820';

export interface PlanFileRef {
  /** The plan path that names the file (`machine.boot.kernel`, `pci.real[2].dump`). */
  readonly at: string;
  /** The file as the plan wrote it (relative to the plan file). */
  readonly file: string;
  readonly kind: PlanFileKind;
}

/** A file read for a plan; `path` is where it was read from (relative paths resolved). */
export type ResolvedFile =
  | { readonly kind: 'bytes'; readonly path: string; readonly bytes: Uint8Array }
  | { readonly kind: 'pci-capture'; readonly path: string; readonly capture: Capture }
  | { readonly kind: 'acpi-tables'; readonly path: string; readonly tables: readonly TableImage[] }
  | { readonly kind: 'e820'; readonly path: string; readonly result: ParseResult };

/** The sections that name files; any plan shape with some of them will do. */
export interface PlanWithFiles {
  readonly pci?: PciSection | undefined;
  readonly acpi?: AcpiSection | undefined;
  readonly machine?: MachineSection | undefined;
}

/** Every file the plan names, in plan order. */
export function planFileRefs(plan: PlanWithFiles): PlanFileRef[] {
  const refs: PlanFileRef[] = [];
  const add = (at: string, file: string | undefined, kind: PlanFileKind): void => {
    if (file !== undefined) refs.push({ at, file, kind });
  };
  const m = plan.machine;
  if (m !== undefined) {
    add('machine.firmware', m.firmware, 'bytes');
    if (m.boot.kind === 'linux') {
      add('machine.boot.kernel', m.boot.kernel, 'bytes');
      add('machine.boot.initrd', m.boot.initrd, 'bytes');
    }
    if (m.boot.kind === 'probe') m.boot.files.forEach((f, i) => add(`machine.boot.files[${i}].file`, f.file, 'bytes'));
    add('machine.hostMap', m.hostMap, 'e820');
    add('machine.acpiTables', m.acpiTables, 'acpi-tables');
    add('machine.hostPci.capture', m.hostPci?.capture, 'pci-capture');
    m.roms.forEach((r, i) => add(`machine.roms[${i}].file`, r.file, 'bytes'));
  }
  plan.pci?.real?.forEach((r, i) => add(`pci.real[${i}].dump`, r.dump, 'pci-capture'));
  plan.pci?.passthrough?.forEach((p, i) => add(`pci.passthrough[${i}].rom`, p.rom.kind === 'file' ? p.rom.file : undefined, 'bytes'));
  plan.acpi?.rules?.forEach((r, i) => {
    // A rule that gives both aml and body is refused by the rules' own checks, before any file matters.
    if ((r.action === 'replace-method' || r.action === 'add-ssdt') && r.aml !== undefined && r.body === undefined) add(`acpi.rules[${i}].aml`, r.aml, 'bytes');
  });
  plan.acpi?.generate?.ssdts?.forEach((s, i) => add(`acpi.generate.ssdts[${i}].aml`, 'aml' in s ? s.aml : undefined, 'bytes'));
  return refs;
}

/** A file was looked up that `planFileRefs` does not list: a bug in hvmpt, not in the plan. */
export class UnresolvedPlanFileError extends Error {}

/** The plan's files, read: composition looks files up here by the plan path that names them. */
export class PlanFiles {
  constructor(
    /** The plan, for messages; relative paths in it were resolved against its directory. */
    readonly planFile: string,
    private readonly byPath: ReadonlyMap<string, ResolvedFile>,
  ) {}

  /** For plans that name no files (tests, in-memory plans). */
  static none(planFile: string): PlanFiles {
    return new PlanFiles(planFile, new Map());
  }

  has(at: string): boolean {
    return this.byPath.has(at);
  }

  private get<K extends PlanFileKind>(at: string, kind: K): Extract<ResolvedFile, { kind: K }> {
    const f = this.byPath.get(at);
    if (f === undefined || f.kind !== kind) throw new UnresolvedPlanFileError(`${this.planFile}: ${at} was not resolved as ${kind} before composition`);
    return f as Extract<ResolvedFile, { kind: K }>;
  }

  bytes(at: string): { readonly path: string; readonly bytes: Uint8Array } {
    return this.get(at, 'bytes');
  }

  capture(at: string): { readonly path: string; readonly capture: Capture } {
    return this.get(at, 'pci-capture');
  }

  acpiTables(at: string): { readonly path: string; readonly tables: readonly TableImage[] } {
    return this.get(at, 'acpi-tables');
  }

  e820(at: string): { readonly path: string; readonly result: ParseResult } {
    return this.get(at, 'e820');
  }
}
