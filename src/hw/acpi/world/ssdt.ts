import { HvmptError } from '../../../errors.js';
import { encodeAml } from '../aml/encode.js';
import { AmlParseError } from '../aml/errors.js';
import { parseAml } from '../aml/parse.js';
import type { Term } from '../aml/terms.js';
import { AcpiNamespace } from '../namespace/namespace.js';
import { HEADER_SIZE, tableHeader } from '../tables/header.js';
import type { DefinitionBlock } from '../tables/definition-block.js';
import { decodeTable } from '../tables/table.js';
import { worldDeclarations } from './methods.js';
import type { AddSsdtRule, RuleProblem } from './rules.js';
import { AmlSpecError, specStatements } from './spec.js';
import { loadOrder, tableLabel, type WorldTable } from './tables.js';

/**
 * add-ssdt: a table from a compiled .aml file or built from a spec, checked the way the OS
 * would load it after the others: it must parse, must not declare what another table
 * already declares (Linux refuses such a table with AE_ALREADY_EXISTS), and every Scope() it
 * opens must name an existing object.
 */

const PREDEFINED_SCOPES = new Set(['\\_GPE', '\\_PR_', '\\_SB_', '\\_SI_', '\\_TZ_']);

export function buildSsdt(rule: AddSsdtRule, index: number, tables: readonly WorldTable[], problems: RuleProblem[]): WorldTable | undefined {
  const name = `hvmpt-ssdt${index}`;
  let table: DefinitionBlock;
  let terms: readonly Term[];
  const src = rule.source;
  try {
    if (src.kind === 'aml') {
      const t = decodeTable(src.bytes, { input: src.file });
      if (t.kind !== 'definitionBlock' || t.header.signature !== 'SSDT') {
        problems.push({ path: `${rule.path}.aml`, message: `${src.file} is a ${t.kind === 'definitionBlock' ? t.header.signature : t.kind} table, not an SSDT` });
        return undefined;
      }
      table = t;
      terms = parseAml(t.aml, { table: src.file, baseOffset: HEADER_SIZE, declarations: worldDeclarations(tables) }).terms;
    } else {
      terms = specStatements(src.body, `${rule.path}.body`);
      const oemTableId = src.oemTableId ?? `HVMPT${index}`;
      if (oemTableId.length > 8) problems.push({ path: `${rule.path}.oemTableId`, message: `"${oemTableId}" is longer than 8 characters` });
      if ((src.oemId ?? '').length > 6) problems.push({ path: `${rule.path}.oemId`, message: `"${src.oemId}" is longer than 6 characters` });
      table = { kind: 'definitionBlock', header: tableHeader('SSDT', 2, { oemTableId, ...(src.oemId === undefined ? {} : { oemId: src.oemId }), oemRevision: src.oemRevision ?? 1 }), aml: encodeAml(terms) };
    }
  } catch (err) {
    if (err instanceof AmlSpecError) problems.push({ path: err.specPath, message: err.detail });
    else if (err instanceof AmlParseError || err instanceof HvmptError) problems.push({ path: `${rule.path}${src.kind === 'aml' ? '.aml' : ''}`, message: err.message });
    else throw err;
    return undefined;
  }
  const added: WorldTable = { name, origin: src.kind === 'aml' ? src.file : `${rule.path} (spec)`, signature: 'SSDT', table, terms, status: 'added' };
  const start = problems.length;
  const ns = AcpiNamespace.build([...loadOrder(tables).flatMap((t) => (t.terms === undefined ? [] : [{ table: tableLabel(t), terms: t.terms }])), { table: name, terms }]);
  for (const n of ns.nodes()) {
    for (const r of n.redeclarations) {
      if (r.table === name && n.kind !== 'External' && r.term.kind !== 'External' && n.table !== name) {
        problems.push({ path: rule.path, message: `declares ${n.path}, which ${n.table} already declares (the OS would refuse the table: AE_ALREADY_EXISTS)` });
      }
    }
    if (n.kind === 'Scope' && n.term === undefined && n.parent !== null && !PREDEFINED_SCOPES.has(n.path)) {
      if (n.scopes.some((s) => s.table === name)) problems.push({ path: rule.path, message: `opens Scope (${n.path}), which no table declares` });
      else if ([...n.children.values()].some((c) => c.table === name)) problems.push({ path: rule.path, message: `declares objects under ${n.path}, which no table declares` });
    }
  }
  return problems.length > start ? undefined : added;
}
