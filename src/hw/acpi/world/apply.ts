import { encodeAml } from '../aml/encode.js';
import { AmlParseError } from '../aml/errors.js';
import { parseAmlTables } from '../aml/parse.js';
import type { Term } from '../aml/terms.js';
import { acpixtractNames } from '../dump/names.js';
import { AcpiNamespace, type NsNode } from '../namespace/namespace.js';
import { printableSignature } from '../signatures.js';
import { HEADER_SIZE } from '../tables/header.js';
import { encodeTable, tableHeaderOf, type AcpiTable } from '../tables/table.js';
import { hideObjects, type HideReport } from './hide.js';
import { pruneDmar } from './iommu.js';
import { patchMethod, replaceMethod } from './methods.js';
import { rewritePrt } from './prt.js';
import { rewriteTable } from './rewrite.js';
import {
  AcpiRuleError,
  type HideDeviceRule,
  type HideTableRule,
  type RuleProblem,
  type WorldRule,
} from './rules.js';
import { devicesAtPciPath, formatPciPath, parsePciPath, pciPathOf, rootBridges, sameFunction, childrenByAdr, type PciPath } from './select.js';
import { buildSsdt } from './ssdt.js';
import { isDefinitionBlock, loadOrder, tableLabel, worldNamespace, type World, type WorldTable } from './tables.js';

/**
 * Applying world-view rules to a machine's tables, all or nothing: each rule works on what the
 * rules before it left, and the first rule that cannot be applied stops everything with an
 * AcpiRuleError naming it. The result is then encoded (lengths and checksums computed), and
 * the rewritten AML is parsed again and checked before anything is returned.
 */

export interface RuleOutcome {
  readonly path: string;
  readonly action: WorldRule['action'];
  /** One line per thing done. */
  readonly done: readonly string[];
}

export interface OutputTable {
  /** The file stem, as `acpixtract -a` would name the table among the output's: `dsdt`, `ssdt2`. */
  readonly name: string;
  /** The input's name for it, or the added table's origin. */
  readonly from: string;
  readonly signature: string;
  readonly status: WorldTable['status'];
  readonly table: AcpiTable;
  readonly bytes: Uint8Array;
}

export interface RewriteResult {
  readonly tables: readonly OutputTable[];
  readonly removed: readonly { readonly name: string; readonly signature: string; readonly path: string }[];
  readonly outcomes: readonly RuleOutcome[];
  /** Absolute paths of every hidden namespace object's root. */
  readonly hiddenObjects: readonly string[];
  /** PCI paths (DMAR-scope style) of the hidden device objects that describe PCI functions. */
  readonly hiddenPci: readonly string[];
  readonly notes: readonly string[];
}

interface State {
  world: World;
  removed: { name: string; signature: string; path: string }[];
  hiddenObjects: string[];
  hiddenPci: PciPath[];
  added: number;
}

function withTerms(world: World, terms: ReadonlyMap<WorldTable, readonly Term[]>): World {
  if (terms.size === 0) return world;
  return { ...world, tables: world.tables.map((t) => (terms.has(t) ? { ...t, terms: terms.get(t)!, status: t.status === 'added' ? 'added' : 'changed' } : t)) };
}

/** Replaces terms (by identity) wherever they are, in every table. */
function replaceTerms(world: World, replace: ReadonlyMap<Term, Term>): Map<WorldTable, readonly Term[]> {
  const out = new Map<WorldTable, readonly Term[]>();
  if (replace.size === 0) return out;
  for (const t of world.tables) {
    if (t.terms === undefined) continue;
    const terms = rewriteTable(t.terms, (x) => replace.get(x));
    if (terms !== t.terms) out.set(t, terms);
  }
  return out;
}

function needAml(world: World, path: string, why: string): RuleProblem[] {
  return world.tables
    .filter((t) => t.amlError !== undefined)
    .map((t) => ({ path, message: `${why}, but ${t.name}'s AML does not parse: ${t.amlError!.message}` }));
}

function reportLine(r: HideReport): string {
  const parts: string[] = [];
  const add = (n: number, what: string): void => void (n > 0 && parts.push(`${n} ${what}`));
  add(r.declarations, 'declaration(s)');
  add(r.externals, 'External(s)');
  add(r.notifies, 'Notify statement(s)');
  add(r.condRefOfs, 'CondRefOf(s) made Zero');
  add(r.elements, 'package element(s)');
  add(r.prtEntries, '_PRT entr(y/ies)');
  add(r.blanked, 'name string(s) in packages (made empty)');
  add(r.zeroed, 'read(s) made Zero');
  add(r.statements, 'statement(s) calling or writing it');
  add(r.kept, 'reference(s) kept');
  const kept = r.hoisted > 0 ? `; kept ${r.hoisted} declaration(s) written inside it but lying outside it` : '';
  return (parts.length === 0 ? 'nothing else referred to it' : `removed ${parts.join(', ')}`) + kept;
}

/**
 * Objects a hide removed beyond the hidden ones: none, or the engine has a bug (the check
 * runs on every hide; it is what caught declarations written inside a hidden device but
 * lying outside it).
 */
function collateral(before: AcpiNamespace, world: World, hidden: readonly NsNode[]): string[] {
  const gone = new Set(hidden.map((n) => n.path));
  // Paths compared as they are (a mutated table may hold segments no ASL name can spell).
  const after = new Set([...worldNamespace(world).nodes()].map((n) => n.path));
  const lost: string[] = [];
  for (const n of before.nodes()) {
    if (n.term === undefined || n.kind === 'External' || gone.has(n.path)) continue;
    if (!after.has(n.path)) lost.push(n.path);
  }
  return lost;
}

function refusedProblems(path: string, refused: ReturnType<typeof hideObjects>['refused'], hint: string): RuleProblem[] {
  const shown = refused.slice(0, 12).map((r) => ({ path, message: `${r.table}: ${r.name} in ${r.scope} refers to hidden ${r.target} (${r.what})` }));
  const more = refused.length > shown.length ? [{ path, message: `and ${refused.length - shown.length} more reference(s)` }] : [];
  return [...shown, ...more, { path, message: hint }];
}

const REFUSE_HINT = 'these references would dangle: set `references: neutralize` (reads become Zero, calls and writes are removed), or replace the methods that make them first';

function sameText(a: string, b: string): boolean {
  return a.trimEnd() === b.trimEnd();
}

function hideTable(state: State, rule: HideTableRule, problems: RuleProblem[]): string[] {
  const sig = rule.signature?.toUpperCase();
  const signature = sig === 'MADT' ? 'APIC' : sig === 'FADT' ? 'FACP' : sig;
  if (signature === undefined && rule.oemTableId === undefined && rule.oemId === undefined) {
    problems.push({ path: rule.path, message: 'give a signature, an oemTableId or an oemId to match' });
    return [];
  }
  const matches = state.world.tables.filter((t) => {
    const h = tableHeaderOf(t.table);
    if (signature !== undefined && t.signature !== signature) return false;
    if (rule.oemTableId !== undefined && (h === undefined || !sameText(h.oemTableId, rule.oemTableId))) return false;
    if (rule.oemId !== undefined && (h === undefined || !sameText(h.oemId, rule.oemId))) return false;
    return true;
  });
  if (matches.length === 0) {
    if (rule.optional !== true) {
      const have = state.world.tables.map((t) => {
        const h = tableHeaderOf(t.table);
        return h === undefined ? t.signature : `${t.signature}/${h.oemTableId.trimEnd()}`;
      });
      problems.push({ path: rule.path, message: `matches no table (there are: ${have.join(', ')})` });
    }
    return [];
  }
  for (const m of matches) {
    if (m.signature === 'DSDT' || m.signature === 'FACP') {
      problems.push({ path: rule.path, message: `would hide the ${m.signature === 'DSDT' ? 'DSDT' : 'FADT'} (${m.name}); the guest needs one: change it with other rules instead` });
    }
  }
  if (problems.length > 0) return [];
  const removed = new Set(matches);
  const done: string[] = [];
  const blocks = matches.filter(isDefinitionBlock);
  let terms = new Map<WorldTable, readonly Term[]>();
  const policy = rule.references ?? 'refuse';
  if (blocks.length > 0) {
    problems.push(...needAml(state.world, rule.path, 'hiding an AML table means checking references to what it declares'));
    if (problems.length > 0) return [];
    const ns = worldNamespace(state.world);
    const labels = new Set(blocks.map(tableLabel));
    // Objects only these tables declare (a redeclaration elsewhere keeps an object alive).
    const roots: NsNode[] = [];
    for (const n of ns.nodes()) {
      if (n.term === undefined || n.kind === 'External' || n.table === undefined || !labels.has(n.table)) continue;
      if (n.redeclarations.some((r) => !labels.has(r.table))) continue;
      if (n.parent !== null && roots.includes(n.parent)) continue;
      roots.push(n);
    }
    const result = hideObjects(ns, state.world.tables, roots, policy, removed);
    if (result.refused.length > 0) {
      problems.push(...refusedProblems(rule.path, result.refused, `${REFUSE_HINT}, or \`references: keep\` to leave them unresolved as for a table the OS never loaded`));
      return [];
    }
    terms = new Map(result.terms);
    const lost = collateral(ns, withTerms({ ...state.world, tables: state.world.tables.filter((t) => !removed.has(t)) }, terms), result.hidden);
    if (lost.length > 0) {
      problems.push({ path: 'output', message: `hiding would also remove ${lost.slice(0, 5).join(', ')}${lost.length > 5 ? ` and ${lost.length - 5} more` : ''}, which only hidden tables do not declare` });
      return [];
    }
    if (roots.length > 0) done.push(`objects only ${blocks.map((b) => b.name).join(', ')} declared: ${roots.length} (with what is under them); elsewhere ${reportLine(result.report)}`);
    state.hiddenObjects.push(...roots.map((r) => r.path));
  }
  for (const m of matches) {
    const h = tableHeaderOf(m.table);
    done.unshift(`hidden: ${m.name} (${printableSignature(m.signature)}${h === undefined ? '' : ` ${h.oemId.trimEnd()}/${h.oemTableId.trimEnd()}`})`);
    state.removed.push({ name: m.name, signature: m.signature, path: rule.path });
  }
  const world = withTerms(state.world, terms);
  state.world = { ...world, tables: world.tables.filter((t) => !matches.some((m) => m.name === t.name)) };
  return done;
}

function selectDevices(ns: AcpiNamespace, rule: HideDeviceRule, problems: RuleProblem[]): { nodes: NsNode[]; what: string } {
  const given = [rule.devicePath, rule.hid, rule.adr, rule.pci].filter((x) => x !== undefined).length;
  if (given !== 1) {
    problems.push({ path: rule.path, message: `give exactly one of devicePath, hid, adr, pci (${given} given)` });
    return { nodes: [], what: '' };
  }
  if (rule.under !== undefined && rule.adr === undefined) problems.push({ path: `${rule.path}.under`, message: 'under goes with adr' });
  if (rule.devicePath !== undefined) {
    const n = ns.get(rule.devicePath);
    if (n === undefined) return { nodes: [], what: `path ${rule.devicePath}` };
    if (!['Device', 'Processor', 'ThermalZone', 'PowerResource'].includes(n.kind)) {
      problems.push({ path: `${rule.path}.devicePath`, message: `${n.path} is a ${n.kind}; hide-device hides Device, Processor, ThermalZone and PowerResource objects` });
    }
    return { nodes: [n], what: `path ${n.path}` };
  }
  if (rule.hid !== undefined) return { nodes: ns.findByHid(rule.hid), what: `_HID/_CID ${rule.hid}` };
  if (rule.adr !== undefined) {
    let parents: NsNode[];
    if (rule.under !== undefined) {
      const u = ns.get(rule.under);
      if (u === undefined) {
        problems.push({ path: `${rule.path}.under`, message: `no object ${rule.under} in the tables` });
        return { nodes: [], what: '' };
      }
      parents = [u];
    } else {
      parents = rootBridges(ns).map((r) => r.node);
    }
    return { nodes: parents.flatMap((p) => childrenByAdr(ns, p, rule.adr!)), what: `_ADR 0x${rule.adr.toString(16)} under ${rule.under ?? 'the PCI root bridges'}` };
  }
  const p = parsePciPath(rule.pci!);
  if (p === undefined) {
    problems.push({ path: `${rule.path}.pci`, message: `expected a PCI address like 00:1f.3, or a path through bridges like 00:1c.4/00.0, got ${JSON.stringify(rule.pci)}` });
    return { nodes: [], what: '' };
  }
  const roots = rootBridges(ns);
  if (!roots.some((r) => (r.segment ?? 0) === p.segment && (r.bus ?? (roots.length === 1 ? 0 : -1)) === p.bus)) {
    const known = roots.map((r) => `${r.node.path} (bus ${r.bus === undefined ? '?' : r.bus.toString(16).padStart(2, '0')})`).join(', ') || 'none';
    problems.push({
      path: `${rule.path}.pci`,
      message: `bus ${p.bus.toString(16).padStart(2, '0')} is not a root bus of the tables (root bridges: ${known}); name a function behind a bridge by its path, e.g. 00:1c.4/00.0`,
    });
    return { nodes: [], what: '' };
  }
  return { nodes: devicesAtPciPath(ns, p), what: `PCI ${formatPciPath(p)}` };
}

function hideDevice(state: State, rule: HideDeviceRule, problems: RuleProblem[]): string[] {
  problems.push(...needAml(state.world, rule.path, 'hiding a device means editing AML'));
  if (problems.length > 0) return [];
  const ns = worldNamespace(state.world);
  const { nodes, what } = selectDevices(ns, rule, problems);
  if (problems.length > 0) return [];
  if (nodes.length === 0) {
    if (rule.optional !== true) problems.push({ path: rule.path, message: `no device matches ${what}` });
    return [];
  }
  // Every object describing the same PCI function goes too, and roots under other roots are
  // covered by them.
  const roots = rootBridges(ns);
  const all = new Set<NsNode>();
  for (const n of nodes) for (const s of sameFunction(ns, n, roots)) all.add(n === s ? n : s);
  const top = [...all].filter((n) => {
    for (let p = n.parent; p !== null; p = p.parent) if (all.has(p)) return false;
    return true;
  });
  const result = hideObjects(ns, state.world.tables, top, rule.references ?? 'refuse');
  if (result.refused.length > 0) {
    problems.push(...refusedProblems(rule.path, result.refused, REFUSE_HINT));
    return [];
  }
  const pci = new Map<string, PciPath>();
  for (const n of result.hidden) {
    if (n.kind !== 'Device') continue;
    const p = pciPathOf(ns, n, roots);
    if (p !== undefined) pci.set(formatPciPath(p), p);
  }
  // A hidden function's children are hidden by being under it; keep the topmost paths.
  const pciTop = [...pci.values()].filter((p) => ![...pci.values()].some((q) => q !== p && q.segment === p.segment && q.bus === p.bus && q.hops.length < p.hops.length && q.hops.every((h, i) => h.device === p.hops[i]!.device && h.fn === p.hops[i]!.fn)));
  const pciText = rule.pci === undefined && pciTop.length > 0 ? `; PCI ${pciTop.map(formatPciPath).join(', ')}` : '';
  const done = [`hidden: ${top.map((n) => n.path).join(', ')} (${what}${pciText}): ${reportLine(result.report)}`];
  let world = withTerms(state.world, result.terms);
  const lost = collateral(ns, world, result.hidden);
  if (lost.length > 0) {
    problems.push({ path: 'output', message: `hiding would also remove ${lost.slice(0, 5).join(', ')}${lost.length > 5 ? ` and ${lost.length - 5} more` : ''}, which are not under a hidden object` });
    return [];
  }
  if (pciTop.length > 0) {
    const ivrs = world.tables.find((t) => t.table.kind === 'ivrs');
    if (ivrs !== undefined) {
      problems.push({
        path: rule.path,
        message: `${ivrs.name} (IVRS) names PCI functions by requester ID, which the ACPI tables cannot map to ${pciTop.map(formatPciPath).join(', ')}: hide the IVRS too (action: hide-table, signature: IVRS) before this rule`,
      });
      return [];
    }
    world = {
      ...world,
      tables: world.tables.map((t) => {
        if (t.table.kind !== 'dmar') return t;
        const r = pruneDmar(t.table, pciTop);
        if (r.removedScopes === 0) return t;
        done.push(`${t.name} (DMAR): removed ${r.removedScopes} device scope(s)${r.removedStructures > 0 ? ` and ${r.removedStructures} structure(s) left without one` : ''}`);
        return { ...t, table: r.dmar, status: 'changed' as const };
      }),
    };
  }
  state.world = world;
  state.hiddenObjects.push(...top.map((n) => n.path));
  state.hiddenPci.push(...pciTop);
  return done;
}

function applyRule(state: State, rule: WorldRule, problems: RuleProblem[]): string[] {
  switch (rule.action) {
    case 'hide-table':
      return hideTable(state, rule, problems);
    case 'hide-device':
      return hideDevice(state, rule, problems);
    case 'replace-method':
    case 'patch-method': {
      problems.push(...needAml(state.world, rule.path, `${rule.action} edits AML`));
      if (problems.length > 0) return [];
      const ns = worldNamespace(state.world);
      const edit = rule.action === 'replace-method' ? replaceMethod(ns, state.world.tables, rule, problems) : patchMethod(ns, rule, problems);
      if (edit === undefined) return [];
      state.world = withTerms(state.world, replaceTerms(state.world, edit.replace));
      return [edit.summary];
    }
    case 'add-ssdt': {
      problems.push(...needAml(state.world, rule.path, 'an added SSDT is checked against the others'));
      if (problems.length > 0) return [];
      const added = buildSsdt(rule, ++state.added, state.world.tables, problems);
      if (added === undefined) return [];
      state.world = { ...state.world, tables: [...state.world.tables, added] };
      const h = tableHeaderOf(added.table)!;
      return [`added SSDT ${h.oemId.trimEnd()}/${h.oemTableId.trimEnd()} from ${added.origin}`];
    }
    case 'rewrite-prt': {
      problems.push(...needAml(state.world, rule.path, 'rewrite-prt edits AML'));
      if (problems.length > 0) return [];
      const ns = worldNamespace(state.world);
      const edit = rewritePrt(ns, rule, problems);
      if (edit === undefined) return [];
      const replace = new Map(edit.replace);
      if (edit.append !== undefined) replace.set(edit.append.device, edit.append.with);
      state.world = withTerms(state.world, replaceTerms(state.world, replace));
      return [edit.summary];
    }
  }
}

/** Encodes the world's tables: changed AML re-encoded, every table's length and checksum computed. */
export function encodeWorld(world: World): { table: AcpiTable; bytes: Uint8Array }[] {
  return world.tables.map((t) => {
    const table: AcpiTable = t.status !== 'kept' && t.table.kind === 'definitionBlock' && t.terms !== undefined ? { ...t.table, aml: encodeAml(t.terms) } : t.table;
    return { table, bytes: encodeTable(table) };
  });
}

/** The rewritten AML must parse again (together, as the OS loads it) and the hidden paths must be gone. */
function verify(world: World, encoded: readonly { table: AcpiTable }[], hidden: readonly string[], input: string): void {
  const blocks = world.tables
    .map((t, i) => ({ t, table: encoded[i]!.table }))
    .filter(({ t }) => isDefinitionBlock(t) && t.amlError === undefined);
  const ordered = loadOrder(blocks.map((b) => b.t)).map((t) => blocks.find((b) => b.t === t)!);
  let trees;
  try {
    trees = parseAmlTables(ordered.map(({ t, table }) => ({ body: (table as { aml: Uint8Array }).aml, table: t.name, baseOffset: HEADER_SIZE })));
  } catch (err) {
    if (err instanceof AmlParseError) throw new AcpiRuleError(input, [{ path: 'output', message: `the rewritten AML does not parse again: ${err.message}` }]);
    throw err;
  }
  const ns = AcpiNamespace.build(trees.map((tree, i) => ({ table: ordered[i]!.t.name, terms: tree.terms })));
  // An External of a hidden path (kept by `references: keep`) declares nothing.
  const declared = new Set([...ns.nodes()].filter((n) => n.kind !== 'Scope' && n.kind !== 'External').map((n) => n.path));
  const left = hidden.filter((p) => declared.has(p));
  if (left.length > 0) throw new AcpiRuleError(input, [{ path: 'output', message: `hidden objects still declared after rewriting: ${left.join(', ')}` }]);
}

/**
 * Applies `rules` in order. Throws AcpiRuleError (naming `input`, the rules file, and each
 * problem's rule path) on the first rule that cannot be applied; nothing is returned then.
 */
export function applyRules(world: World, rules: readonly WorldRule[], input = 'rules'): RewriteResult {
  const state: State = { world, removed: [], hiddenObjects: [], hiddenPci: [], added: 0 };
  const outcomes: RuleOutcome[] = [];
  for (const rule of rules) {
    const problems: RuleProblem[] = [];
    const done = applyRule(state, rule, problems);
    if (problems.length > 0) throw new AcpiRuleError(input, problems);
    outcomes.push({ path: rule.path, action: rule.action, done: done.length > 0 ? done : ['nothing matched (optional)'] });
  }
  const encoded = encodeWorld(state.world);
  verify(state.world, encoded, state.hiddenObjects, input);
  const names = acpixtractNames(state.world.tables.map((t) => t.signature));
  return {
    tables: state.world.tables.map((t, i) => ({
      name: names[i]!,
      from: t.status === 'added' ? t.origin : t.name,
      signature: t.signature,
      status: t.status,
      table: encoded[i]!.table,
      bytes: encoded[i]!.bytes,
    })),
    removed: state.removed,
    outcomes,
    hiddenObjects: state.hiddenObjects,
    hiddenPci: state.hiddenPci.map(formatPciPath),
    notes: world.notes,
  };
}
