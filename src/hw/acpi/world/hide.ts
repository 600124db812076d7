import { absoluteSegs, formatName, isSearchable, pathOf, trimSeg } from '../aml/names.js';
import type { NameString, Term } from '../aml/terms.js';
import type { AcpiNamespace, NsNode } from '../namespace/namespace.js';
import { bodyScope, DROP, POISON, rewriteTable, type RewriteContext } from './rewrite.js';
import type { ReferencePolicy } from './rules.js';
import { tableLabel, type WorldTable } from './tables.js';

/**
 * Hiding namespace objects: the objects (with everything under them) disappear from every
 * table, and so does every reference that would dangle. What happens to a reference depends
 * on where it is (docs/acpi.md, "Hiding"):
 *
 * | reference | becomes |
 * | --- | --- |
 * | a declaration of a hidden path (Device, Name, Method, Scope() extensions, in any table) | removed |
 * | External of a hidden path | removed |
 * | an Alias of, a Field over a region of, a Create*Field over a buffer of a hidden object | removed, and what it declares is hidden too |
 * | Notify (hidden, code) | the statement is removed |
 * | CondRefOf (hidden, …) | Zero, which is what it evaluates to once the object is gone |
 * | an element of a package of references (_DEP, _PRx, _PSL, _TZD, …), or after the second element of _PRW | the element is removed |
 * | the source of a _PRT entry (`{address, pin, hidden, index}`) | the entry is removed |
 * | a string holding the hidden path, in a package of another shape | an empty string (code indexes such packages by position) |
 * | a Name whose whole value is the hidden path (`Name (_EJD, "\\_SB.DOCK")`) | removed, and hidden too |
 * | anything else (a call, a read or a store in code, a package of another shape) | by policy: `refuse` (an error naming each); `neutralize` inside method bodies: a read reads Zero, a statement calling, writing or taking it as an object is removed; `keep` |
 */

export interface HideReport {
  readonly declarations: number;
  /** Declarations written inside a hidden object's term but lying outside it, kept. */
  readonly hoisted: number;
  readonly externals: number;
  readonly notifies: number;
  readonly condRefOfs: number;
  readonly elements: number;
  readonly prtEntries: number;
  /** Strings naming a hidden object in packages that are not lists, made empty. */
  readonly blanked: number;
  /** Reads in code made Zero (neutralize). */
  readonly zeroed: number;
  /** Statements removed because they called, wrote or took a hidden object (neutralize). */
  readonly statements: number;
  readonly kept: number;
}

export interface DanglingReference {
  readonly table: string;
  /** The scope the reference is made from (a method's path inside code). */
  readonly scope: string;
  readonly name: string;
  readonly target: string;
  readonly what: string;
}

export interface HideResult {
  /** The rewritten terms of each changed table. */
  readonly terms: ReadonlyMap<WorldTable, readonly Term[]>;
  readonly hidden: readonly NsNode[];
  readonly report: HideReport;
  /** References the policy refused (empty unless the policy is `refuse` or one reached table level). */
  readonly refused: readonly DanglingReference[];
}

const ZERO: Term = Object.freeze({ kind: 'Integer', value: 0n, enc: 'zero' });
const EMPTY: Term = Object.freeze({ kind: 'String', value: '' });

/**
 * The objects that go with `roots`: their subtrees, then, until nothing changes, aliases of
 * hidden objects, field units over hidden regions and buffer fields over hidden buffers.
 */
export function hiddenClosure(ns: AcpiNamespace, roots: readonly NsNode[]): Set<NsNode> {
  const hidden = new Set<NsNode>();
  for (const r of roots) for (const n of ns.nodes(r)) hidden.add(n);
  const namesHidden = (text: string): boolean => {
    if (!text.startsWith('\\')) return false;
    for (const n of hidden) if (pathForms(n.path).includes(text.toUpperCase())) return true;
    return false;
  };
  const resolvesHidden = (name: NameString, scope: NsNode | null): boolean => {
    const n = scope === null ? undefined : ns.resolve(name, scope);
    return n !== undefined && hidden.has(n);
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of ns.nodes()) {
      if (hidden.has(n)) continue;
      const t = n.term;
      let dependent = false;
      if (t?.kind === 'Alias') dependent = resolvesHidden(t.source, n.parent);
      else if (t?.kind === 'Name' && (t.value.kind === 'NamePath' || t.value.kind === 'String')) {
        // `Name (_EJD, "\\_SB.DOCK")`: an object whose whole value names a hidden one.
        const v = t.value;
        dependent = v.kind === 'NamePath' ? resolvesHidden(v.name, n.parent) : namesHidden(v.value);
      }
      else if (t?.kind === 'Field') dependent = resolvesHidden(t.region, n.parent);
      else if (t?.kind === 'IndexField') dependent = resolvesHidden(t.index, n.parent) || resolvesHidden(t.data, n.parent);
      else if (t?.kind === 'BankField') dependent = resolvesHidden(t.region, n.parent) || resolvesHidden(t.bank, n.parent);
      else if (t !== undefined && n.kind === 'BufferField' && 'source' in t && (t.source.kind === 'NamePath' || t.source.kind === 'MethodCall')) {
        dependent = resolvesHidden(t.source.name, n.parent);
      }
      if (dependent) {
        for (const d of ns.nodes(n)) hidden.add(d);
        changed = true;
      }
    }
  }
  return hidden;
}

/** `\_SB_.PCI0.LPC_.EC__` and `\_SB.PCI0.LPC.EC`: the forms a string naming it may take. */
export function pathForms(path: string): string[] {
  const segs = path.slice(1).split('.');
  return [path, '\\' + segs.map(trimSeg).join('.')];
}

function isReference(t: Term): boolean {
  return t.kind === 'NamePath' || (t.kind === 'MethodCall' && t.args.length === 0) || t.kind === 'String';
}

/** A _PRT entry: `{address, pin, source, index}` with integers around the source. */
function isPrtEntry(t: Term): boolean {
  if (t.kind !== 'Package' || t.elements.length !== 4) return false;
  const [a, p, , i] = t.elements;
  return a!.kind === 'Integer' && p!.kind === 'Integer' && i!.kind === 'Integer';
}

const DECLARING_KINDS = new Set<Term['kind']>([
  'Scope',
  'Device',
  'ThermalZone',
  'Processor',
  'PowerResource',
  'Method',
  'Name',
  'Alias',
  'Mutex',
  'Event',
  'OperationRegion',
  'DataRegion',
  'External',
]);

/**
 * Removes `roots` (and their closure) from `tables`' AML. `removedTables` are tables being
 * dropped whole (hide-table): their terms are not rewritten.
 */
export function hideObjects(
  ns: AcpiNamespace,
  tables: readonly WorldTable[],
  roots: readonly NsNode[],
  policy: ReferencePolicy,
  removedTables: ReadonlySet<WorldTable> = new Set(),
): HideResult {
  const hidden = hiddenClosure(ns, roots);
  const hiddenPaths = new Set([...hidden].map((n) => n.path));
  const drop = new Set<Term>();
  for (const n of hidden) {
    if (n.term !== undefined) drop.add(n.term);
    for (const r of n.redeclarations) drop.add(r.term);
    for (const s of n.scopes) drop.add(s.term);
  }
  const strings = new Set<string>();
  for (const n of hidden) for (const f of pathForms(n.path)) strings.add(f);
  /** The hidden path at or above `segs`, if any. */
  const hiddenAncestor = (segs: readonly string[]): string | undefined => {
    for (let i = segs.length; i > 0; i--) {
      const p = pathOf(segs.slice(0, i));
      if (hiddenPaths.has(p)) return p;
    }
    return undefined;
  };
  /** A string holding a hidden path, or a path under one (`"\\_SB.PCI0.GFX0.DD01"`). */
  const namesHiddenPath = (text: string): boolean => {
    const up = text.toUpperCase();
    if (!up.startsWith('\\')) return false;
    for (let end = up.length; end > 1; end = up.lastIndexOf('.', end - 1)) {
      if (strings.has(up.slice(0, end))) return true;
      if (up.lastIndexOf('.', end - 1) < 0) break;
    }
    return false;
  };

  const report = { declarations: 0, hoisted: 0, externals: 0, notifies: 0, condRefOfs: 0, elements: 0, prtEntries: 0, blanked: 0, zeroed: 0, statements: 0, kept: 0 };
  const refused: DanglingReference[] = [];
  const out = new Map<WorldTable, readonly Term[]>();

  /**
   * Declarations written inside a hidden object's term whose paths lie outside the hidden
   * objects (`Device (LPCB) { Scope (\_SB) { Device (LNKA) … } }`: LNKA is \_SB.LNKA): removing
   * the term must not take them along, so they are kept with absolute names.
   */
  const escapees = (t: Term, scope: readonly string[]): Term[] => {
    const found: Term[] = [];
    const walk = (list: readonly Term[], inner: readonly string[]): void => {
      for (const item of list) {
        if (item.kind === 'If') {
          walk(item.body, inner);
          if (item.else !== undefined) walk(item.else.body, inner);
          continue;
        }
        if (!DECLARING_KINDS.has(item.kind) || item.kind === 'External' || !('name' in item) || typeof item.name !== 'object') continue;
        const segs = absoluteSegs(item.name, inner);
        if (segs === undefined) continue;
        if (hiddenAncestor(segs) === undefined) {
          const absolute = { root: true, parents: 0, segs };
          const same = item.name.root && item.name.segs.length === segs.length;
          found.push(same ? item : ({ ...item, name: absolute } as Term));
        } else if (item.kind === 'Scope' || item.kind === 'Device' || item.kind === 'ThermalZone' || item.kind === 'Processor' || item.kind === 'PowerResource') {
          walk(item.body, segs);
        }
      }
    };
    if (t.kind === 'Scope' || t.kind === 'Device' || t.kind === 'ThermalZone' || t.kind === 'Processor' || t.kind === 'PowerResource') {
      walk(t.body, bodyScope(t.name, scope));
    }
    return found;
  };

  for (const table of tables) {
    if (table.terms === undefined || removedTables.has(table)) continue;
    const label = tableLabel(table);
    // First, hidden declarations that hold declarations of other objects become those alone.
    const hoisted = rewriteTable(table.terms, (t, ctx) => {
      if (!drop.has(t)) return undefined;
      const keep = escapees(t, ctx.scope);
      if (keep.length === 0) return undefined;
      report.hoisted += keep.length;
      return { kind: 'Scope', name: { root: true, parents: 0, segs: [] }, body: keep } as Term;
    });
    const scopeNodes = new Map<string, NsNode>();
    const scopeNode = (segs: readonly string[]): NsNode => {
      const key = segs.join('.');
      let n = scopeNodes.get(key);
      if (n === undefined) {
        n = ns.root;
        for (const s of segs) n = n.children.get(s) ?? n;
        scopeNodes.set(key, n);
      }
      return n;
    };
    const resolve = (name: NameString, ctx: RewriteContext): NsNode | undefined => ns.resolve(name, scopeNode(ctx.scope));
    /**
     * The hidden path a name refers to: what it resolves to, or, for a name no table declares
     * (`\_SB.PCI0.SAT1.PRIM.GTME` used without an object behind it), the path it spells out
     * when that lies under a hidden object.
     */
    const hiddenName = (name: NameString, ctx: RewriteContext): string | undefined => {
      const n = resolve(name, ctx);
      if (n !== undefined) return hiddenPaths.has(n.path) ? n.path : undefined;
      if (isSearchable(name)) return undefined;
      const segs = absoluteSegs(name, ctx.scope);
      return segs === undefined ? undefined : hiddenAncestor(segs);
    };
    const hiddenTarget = (t: Term, ctx: RewriteContext): string | undefined => {
      if (t.kind === 'NamePath' || t.kind === 'MethodCall') return hiddenName(t.name, ctx);
      if (t.kind === 'String') return namesHiddenPath(t.value) ? t.value : undefined;
      return undefined;
    };
    const other = (t: Term, target: string, ctx: RewriteContext, what: string): Term | typeof POISON | typeof DROP | undefined => {
      if (policy === 'keep') {
        report.kept++;
        return undefined;
      }
      if (policy === 'neutralize' && ctx.inMethod) {
        if (ctx.slot === 'value') {
          report.zeroed++;
          return ZERO;
        }
        report.statements++;
        return ctx.slot === 'statement' ? DROP : POISON;
      }
      const name = t.kind === 'NamePath' || t.kind === 'MethodCall' ? formatName(t.name, false) : JSON.stringify(t.kind === 'String' ? t.value : '');
      refused.push({ table: label, scope: pathOf(ctx.scope), name, target, what });
      return undefined;
    };

    const terms = rewriteTable(
      hoisted,
      (t, ctx) => {
        if (drop.has(t)) {
          report.declarations++;
          return DROP;
        }
        if (DECLARING_KINDS.has(t.kind) && 'name' in t && typeof t.name === 'object' && t.kind !== 'Alias') {
          // A declaration of a hidden path the namespace does not list (inside a method body).
          const segs = absoluteSegs(t.name, ctx.scope);
          if (t.kind === 'External') {
            // Externals only tell parsers what a name is; `keep` leaves them with the references.
            const named = (segs !== undefined && hiddenAncestor(segs) !== undefined) || (isSearchable(t.name) && hiddenName(t.name, ctx) !== undefined);
            if (!named) return t;
            if (policy === 'keep') {
              report.kept++;
              return t;
            }
            report.externals++;
            return DROP;
          }
          if (segs !== undefined && hiddenAncestor(segs) !== undefined) {
            report.declarations++;
            return DROP;
          }
        }
        switch (t.kind) {
          case 'Notify': {
            const target = hiddenTarget(t.object, ctx);
            if (target === undefined) return undefined;
            report.notifies++;
            return ctx.slot === 'statement' ? DROP : other(t.object, target, ctx, 'Notify in an expression');
          }
          case 'CondRefOf': {
            if (hiddenTarget(t.operand, ctx) === undefined) return undefined;
            report.condRefOfs++;
            return ZERO;
          }
          case 'Package': {
            if (ctx.slot !== 'element' || !isPrtEntry(t)) return undefined;
            const source = t.elements[2]!;
            if (hiddenTarget(source, ctx) === undefined) return undefined;
            report.prtEntries++;
            return DROP;
          }
          case 'NamePath':
          case 'MethodCall':
          case 'String': {
            const target = hiddenTarget(t, ctx);
            if (target === undefined) return undefined;
            if (ctx.slot === 'element' && ctx.siblings !== undefined && ctx.index !== undefined) {
              if (ctx.siblings.every(isReference) || (ctx.holder === '_PRW' && ctx.index >= 2)) {
                report.elements++;
                return DROP;
              }
              if (t.kind === 'String') {
                // Packages of other shapes are indexed by position (Intel's PEPD device lists
                // are): the entry stays, without the name.
                report.blanked++;
                return EMPTY;
              }
              return other(t, target, ctx, 'an element of a package that is not a list of references');
            }
            const what =
              ctx.slot === 'statement'
                ? 'a call standing as a statement'
                : ctx.slot === 'value'
                  ? t.kind === 'MethodCall' && t.args.length > 0
                    ? 'a call whose result is read'
                    : 'a read'
                  : 'a target, or an operand taken as an object';
            return other(t, target, ctx, ctx.inMethod ? `${what} in a method body` : `${what} outside any method`);
          }
          default:
            return undefined;
        }
      },
      {
        onUnabsorbed: (t, ctx) => {
          refused.push({ table: label, scope: pathOf(ctx.scope), name: t.kind, target: '(see above)', what: 'a table-level statement, which neutralize does not change' });
        },
      },
    );
    if (terms !== table.terms) out.set(table, terms);
  }
  return { terms: out, hidden: [...hidden], report, refused };
}

/** `bodyScope` re-exported for rule code that walks declarations itself. */
export { bodyScope };
