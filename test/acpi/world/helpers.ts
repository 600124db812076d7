import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import { absoluteSegs, isSearchable, pathOf } from '../../../src/hw/acpi/aml/names.js';
import type { NameString, Term } from '../../../src/hw/acpi/aml/terms.js';
import type { TableImage } from '../../../src/hw/acpi/dump/image.js';
import { AcpiNamespace, type NsNode } from '../../../src/hw/acpi/namespace/namespace.js';
import { tableHeader } from '../../../src/hw/acpi/tables/header.js';
import { encodeTable, type AcpiTable } from '../../../src/hw/acpi/tables/table.js';
import type { OutputTable } from '../../../src/hw/acpi/world/apply.js';
import { pathForms } from '../../../src/hw/acpi/world/hide.js';
import { rewriteTable } from '../../../src/hw/acpi/world/rewrite.js';

/** Table images for the world loader, built from models. */
export function image(name: string, table: AcpiTable): TableImage {
  const data = encodeTable(table);
  return { name, origin: `test ${name}`, signature: String.fromCharCode(...data.subarray(0, 4)), data };
}

export function block(signature: 'DSDT' | 'SSDT', terms: readonly Term[], oemTableId = 'TEST'): AcpiTable {
  return { kind: 'definitionBlock', header: tableHeader(signature, 2, { oemTableId }), aml: encodeAml(terms) };
}

/** The output's definition blocks parsed again together, as an OS would load them. */
export function reparse(tables: readonly OutputTable[]): { ns: AcpiNamespace; trees: Map<string, readonly Term[]> } {
  const blocks = tables.filter((t) => t.table.kind === 'definitionBlock');
  const ordered = [...blocks.filter((t) => t.signature === 'DSDT'), ...blocks.filter((t) => t.signature !== 'DSDT')];
  const trees = parseAmlTables(ordered.map((t) => ({ body: (t.table as { aml: Uint8Array }).aml, table: t.name, baseOffset: 36 })));
  const ns = AcpiNamespace.build(trees.map((tree, i) => ({ table: ordered[i]!.name, terms: tree.terms })));
  return { ns, trees: new Map(trees.map((tree, i) => [ordered[i]!.name, tree.terms])) };
}

export interface Leak {
  readonly table: string;
  readonly scope: string;
  readonly what: string;
}

/**
 * Every name an output table uses, resolved by ACPI's rules against the namespace as it was
 * before hiding, from the same scope: any that lands on a hidden object is a reference left
 * behind. Strings holding a hidden path count too.
 */
export function leftoverReferences(trees: ReadonlyMap<string, readonly Term[]>, before: AcpiNamespace, hidden: ReadonlySet<string>): Leak[] {
  const leaks: Leak[] = [];
  const strings = new Set([...hidden].flatMap(pathForms));
  for (const [table, terms] of trees) {
    rewriteTable(terms, (t, ctx) => {
      const scopePath = '\\' + ctx.scope.join('.');
      let scope: NsNode = before.root;
      for (const s of ctx.scope) scope = scope.children.get(s) ?? scope;
      const check = (name: NameString, what: string): void => {
        const n = before.resolve(name, scope);
        if (n !== undefined && hidden.has(n.path)) leaks.push({ table, scope: scopePath, what: `${what} ${n.path}` });
        // A name no table declares, spelled out under a hidden object.
        const segs = n === undefined && !isSearchable(name) ? absoluteSegs(name, ctx.scope) : undefined;
        if (segs !== undefined && segs.some((_, i) => hidden.has(pathOf(segs.slice(0, i + 1))))) leaks.push({ table, scope: scopePath, what: `${what} ${pathOf(segs)} (undeclared, under a hidden object)` });
      };
      if (t.kind === 'NamePath' || t.kind === 'MethodCall' || t.kind === 'External' || t.kind === 'Scope') check(t.name, t.kind);
      if (t.kind === 'Alias') check(t.source, 'Alias of');
      if (t.kind === 'Field') check(t.region, 'Field over');
      if (t.kind === 'String') {
        const up = t.value.toUpperCase();
        if ([...strings].some((f) => up === f || up.startsWith(`${f}.`))) leaks.push({ table, scope: scopePath, what: `string "${t.value}"` });
      }
      return undefined;
    });
  }
  return leaks;
}
