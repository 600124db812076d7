import { encodeAml } from '../aml/encode.js';
import type { Term } from '../aml/terms.js';
import { acpixtractNames } from '../dump/names.js';
import type { DefinitionBlock } from '../tables/definition-block.js';
import type { Facs } from '../tables/facs.js';
import type { Fadt } from '../tables/fadt.js';
import type { Rsdp } from '../tables/rsdp.js';
import type { Rsdt, Xsdt } from '../tables/sdt.js';
import { encodeTable, tableSignature, type AcpiTable } from '../tables/table.js';
import type { AddSsdtRule, RuleProblem } from '../world/rules.js';
import { buildSsdt } from '../world/ssdt.js';
import type { WorldTable } from '../world/tables.js';
import { buildDsdtTerms, plannedRoutes, type PlannedRoute } from './dsdt.js';
import { GuestFactsError, resolveFacts, type GuestAcpiFacts, type ResolvedFacts, type SsdtFact } from './facts.js';
import { buildFacs, buildFadt, buildHpet, buildMadt, buildMcfg, header } from './fixed.js';

/**
 * The guest's own ACPI tables from the facts of the machine the monitor emulates. Pure: facts
 * in, typed tables and their bytes out. The monitor hands `loaderTables` to its fw_cfg table
 * loader (which places them and makes the RSDP/RSDT/XSDT itself); `hvmpt acpi generate`
 * writes every table, root tables included, laid out at `facts.layout`.
 */

export interface GeneratedTable {
  /** acpixtract's file stem for it among the generated tables: `dsdt`, `apic`, `ssdt1`. */
  readonly name: string;
  readonly signature: string;
  readonly table: AcpiTable;
  readonly bytes: Uint8Array;
  /** Where the layout puts it. */
  readonly address: bigint;
}

export interface GeneratedTables {
  /** Every table: RSDP, XSDT, RSDT, FADT, FACS, DSDT, MADT, MCFG, HPET, SSDTs. */
  readonly tables: readonly GeneratedTable[];
  /**
   * What a table loader that builds the root tables itself takes (the monitor's fw_cfg
   * linker): FADT, FACS, DSDT, MADT, MCFG, HPET and SSDTs, encoded; the FADT's DSDT and FACS
   * pointers are the loader's to patch (the 64-bit FACS pointer is left 0 so it can).
   */
  readonly loaderTables: readonly Uint8Array[];
  /** The _PRT the DSDT holds, entry by entry (APIC GSI and PIC link of each root slot pin). */
  readonly routes: readonly PlannedRoute[];
  /** The DSDT's AML as terms (for callers that check or extend it). */
  readonly dsdtTerms: readonly Term[];
  readonly facts: ResolvedFacts;
}

function ssdtRule(s: SsdtFact, i: number, f: ResolvedFacts): AddSsdtRule {
  const path = `ssdts[${i}]`;
  if (s instanceof Uint8Array) return { action: 'add-ssdt', source: { kind: 'aml', file: path, bytes: s }, path };
  if ('kind' in s && s.kind === 'spec') {
    return { action: 'add-ssdt', source: { kind: 'spec', oemId: f.oem.oemId, oemTableId: s.oemTableId ?? `HVMPTS${i + 1}`, oemRevision: f.oem.oemRevision, body: s.body }, path: s.path ?? path };
  }
  return { action: 'add-ssdt', source: { kind: 'aml', file: path, bytes: encodeTable(s as DefinitionBlock) }, path };
}

function ssdts(f: ResolvedFacts, dsdt: WorldTable): DefinitionBlock[] {
  const tables: WorldTable[] = [dsdt];
  const out: DefinitionBlock[] = [];
  f.ssdts.forEach((s, i) => {
    const problems: RuleProblem[] = [];
    const t = buildSsdt(ssdtRule(s, i, f), i + 1, tables, problems);
    if (t === undefined) {
      const p = problems[0] ?? { path: `ssdts[${i}]`, message: 'cannot be added' };
      throw new GuestFactsError(problems.map((x) => x.message).join('; '), p.path);
    }
    tables.push(t);
    out.push(t.table as DefinitionBlock);
  });
  return out;
}

function align(v: bigint, a: bigint): bigint {
  return (v + a - 1n) & ~(a - 1n);
}

/** Builds the guest's tables. Throws GuestFactsError naming the facts path of a bad value. */
export function generateGuestTables(facts: GuestAcpiFacts): GeneratedTables {
  const f = resolveFacts(facts);
  const dsdtTerms = buildDsdtTerms(f);
  const dsdt: DefinitionBlock = { kind: 'definitionBlock', header: header(f, 'DSDT', 2, f.oem.dsdtTableId), aml: encodeAml(dsdtTerms) };
  const dsdtWorld: WorldTable = { name: 'dsdt', origin: 'generated', signature: 'DSDT', table: dsdt, terms: dsdtTerms, status: 'added' };
  const facs: Facs = buildFacs();
  const fadt0: Fadt = buildFadt(f);
  const rest: AcpiTable[] = [buildMadt(f), buildMcfg(f), buildHpet(f)].filter((t): t is NonNullable<typeof t> => t !== undefined);
  const extra = ssdts(f, dsdtWorld);

  // Layout: FACS (64-byte aligned) first, then the DSDT, the FADT, the others, the XSDT, the RSDT.
  let at = f.tablesAddress;
  const place = (len: number, alignment = 16n): bigint => {
    at = align(at, alignment);
    const here = at;
    at += BigInt(len);
    return here;
  };
  const facsBytes = encodeTable(facs);
  const facsAt = place(facsBytes.length, 64n);
  const dsdtBytes = encodeTable(dsdt);
  const dsdtAt = place(dsdtBytes.length);
  const fadt: Fadt = { ...fadt0, firmwareCtrl: Number(facsAt), dsdt: Number(dsdtAt), xDsdt: dsdtAt };
  const fadtBytes = encodeTable(fadt);
  const fadtAt = place(fadtBytes.length);
  const listed: { table: AcpiTable; bytes: Uint8Array; address: bigint }[] = [{ table: fadt, bytes: fadtBytes, address: fadtAt }];
  for (const t of [...rest, ...extra]) {
    const bytes = encodeTable(t);
    listed.push({ table: t, bytes, address: place(bytes.length) });
  }
  const xsdt: Xsdt = { kind: 'xsdt', header: header(f, 'XSDT', 1), entries: listed.map((l) => l.address) };
  const xsdtBytes = encodeTable(xsdt);
  const xsdtAt = place(xsdtBytes.length);
  const rsdt: Rsdt = { kind: 'rsdt', header: header(f, 'RSDT', 1), entries: listed.map((l) => Number(l.address)) };
  const rsdtBytes = encodeTable(rsdt);
  const rsdtAt = place(rsdtBytes.length);
  if (at > 1n << 32n) throw new GuestFactsError('the tables run past 4 GiB', 'layout.tablesAddress');
  const rsdp: Rsdp = { kind: 'rsdp', revision: 2, oemId: f.oem.oemId, rsdtAddress: Number(rsdtAt), xsdtAddress: xsdtAt };
  const rsdpBytes = encodeTable(rsdp);
  if (f.rsdpAddress < at && f.rsdpAddress + BigInt(rsdpBytes.length) > f.tablesAddress) {
    throw new GuestFactsError(`the RSDP at 0x${f.rsdpAddress.toString(16)} overlaps the tables (0x${f.tablesAddress.toString(16)}-0x${(at - 1n).toString(16)})`, 'layout.rsdpAddress');
  }

  const all: { table: AcpiTable; bytes: Uint8Array; address: bigint }[] = [
    { table: rsdp, bytes: rsdpBytes, address: f.rsdpAddress },
    { table: xsdt, bytes: xsdtBytes, address: xsdtAt },
    { table: rsdt, bytes: rsdtBytes, address: rsdtAt },
    listed[0]!,
    { table: facs, bytes: facsBytes, address: facsAt },
    { table: dsdt, bytes: dsdtBytes, address: dsdtAt },
    ...listed.slice(1),
  ];
  const names = acpixtractNames(all.map((t) => tableSignature(t.table)));
  const loaderFadt = encodeTable({ ...fadt0 });
  return {
    tables: all.map((t, i) => ({ name: names[i]!, signature: tableSignature(t.table), table: t.table, bytes: t.bytes, address: t.address })),
    loaderTables: [loaderFadt, facsBytes, dsdtBytes, ...listed.slice(1).map((l) => l.bytes)],
    routes: plannedRoutes(f),
    dsdtTerms,
    facts: f,
  };
}
