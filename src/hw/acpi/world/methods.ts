import { DeclarationIndex } from '../aml/declarations.js';
import { AmlParseError } from '../aml/errors.js';
import { collectDeclarations, parseAml } from '../aml/parse.js';
import { formatName, isSearchable } from '../aml/names.js';
import type { MethodTerm, NameString, Term } from '../aml/terms.js';
import { visitTerms } from '../aml/walk.js';
import type { AcpiNamespace, NsNode } from '../namespace/namespace.js';
import { HEADER_SIZE } from '../tables/header.js';
import { decodeTable } from '../tables/table.js';
import { HvmptError } from '../../../errors.js';
import { bodyScope } from './rewrite.js';
import type { MethodSource, PatchMethodRule, ReplaceMethodRule, RuleProblem } from './rules.js';
import { AmlSpecError, specStatements } from './spec.js';
import { loadOrder, type WorldTable } from './tables.js';

/**
 * replace-method and patch-method: a method's body is swapped or extended in place, wherever
 * it is declared (every declaration, when If/Else branches declare it twice). Its name and
 * argument count stay, since callers in every table were parsed with that count.
 */

export interface MethodEdit {
  /** The declarations to change and what each becomes. */
  readonly replace: ReadonlyMap<Term, Term>;
  readonly summary: string;
}

/** A declaration index holding every world table's objects, for parsing code given in AML. */
export function worldDeclarations(tables: readonly WorldTable[]): DeclarationIndex {
  const index = new DeclarationIndex();
  for (const t of loadOrder(tables)) {
    if (t.table.kind === 'definitionBlock' && t.amlError === undefined) collectDeclarations(index, t.table.aml, { table: t.name, baseOffset: HEADER_SIZE });
  }
  return index;
}

function methodDeclarations(ns: AcpiNamespace, path: string, at: string, problems: RuleProblem[]): MethodTerm[] {
  const node = ns.get(path);
  if (node === undefined) {
    problems.push({ path: at, message: `no object ${path} in the tables` });
    return [];
  }
  const terms = [node.term, ...node.redeclarations.map((r) => r.term)].filter((t): t is MethodTerm => t?.kind === 'Method');
  if (terms.length === 0) problems.push({ path: at, message: `${node.path} is a ${node.kind === 'Name' ? 'Name' : node.kind}, not a Method` });
  return terms;
}

/** Picks the method a compiled snippet supplies: the one with the target's path, else its only method. */
function snippetMethod(source: Extract<MethodSource, { kind: 'aml' }>, targetPath: string, tables: readonly WorldTable[], at: string): { path: string; term: MethodTerm } {
  const fail = (message: string): never => {
    throw new SnippetError(message, at);
  };
  let body: Uint8Array;
  try {
    const t = decodeTable(source.bytes, { input: source.file });
    if (t.kind !== 'definitionBlock') fail(`${source.file} is a ${t.kind} table, not AML (compile the snippet with iasl to an .aml file)`);
    body = (t as { aml: Uint8Array }).aml;
  } catch (err) {
    if (err instanceof SnippetError) throw err;
    if (err instanceof HvmptError) fail(err.message);
    throw err;
  }
  let terms: readonly Term[];
  try {
    terms = parseAml(body!, { table: source.file, baseOffset: HEADER_SIZE, declarations: worldDeclarations(tables) }).terms;
  } catch (err) {
    if (err instanceof AmlParseError) fail(err.message);
    throw err;
  }
  const found: { path: string; term: MethodTerm }[] = [];
  const walk = (list: readonly Term[], scope: readonly string[]): void => {
    for (const t of list) {
      if (t.kind === 'Method') found.push({ path: '\\' + bodyScope(t.name, scope).join('.'), term: t });
      else if (t.kind === 'Scope' || t.kind === 'Device' || t.kind === 'ThermalZone' || t.kind === 'Processor' || t.kind === 'PowerResource') walk(t.body, bodyScope(t.name, scope));
      else if (t.kind === 'If') {
        walk(t.body, scope);
        if (t.else !== undefined) walk(t.else.body, scope);
      }
    }
  };
  walk(terms!, []);
  const wanted = source.method ?? targetPath;
  const exact = found.filter((f) => f.path === wanted);
  if (exact.length === 1) return exact[0]!;
  if (source.method === undefined && found.length === 1) return found[0]!;
  return fail(
    found.length === 0
      ? `${source.file} declares no method`
      : `${source.file} declares ${found.map((f) => f.path).join(', ')}; none is ${wanted}${source.method === undefined ? ' (name the one to use with `method:`)' : ''}`,
  );
}

class SnippetError extends Error {
  constructor(
    message: string,
    readonly at: string,
  ) {
    super(message);
  }
}

function newBody(rule: ReplaceMethodRule, target: MethodTerm, tables: readonly WorldTable[], targetPath: string): { body: readonly Term[]; serialized: boolean; syncLevel: number } {
  if (rule.source.kind === 'spec') return { body: specStatements(rule.source.body, `${rule.path}.body`), serialized: target.serialized, syncLevel: target.syncLevel };
  const { path, term: m } = snippetMethod(rule.source, targetPath, tables, `${rule.path}.aml`);
  if (m.argCount !== target.argCount) {
    throw new SnippetError(
      `${rule.source.file}'s ${path} takes ${m.argCount} argument(s), ${targetPath} takes ${target.argCount}: callers in the tables were parsed with ${target.argCount}`,
      `${rule.path}.aml`,
    );
  }
  return { body: m.body, serialized: m.serialized, syncLevel: m.syncLevel };
}

/** The names a body declares anywhere in it (Name, Method, Device, External, fields…): last segments and whole names as written. */
function declaredSegments(body: readonly Term[]): Set<string> {
  const out = new Set<string>();
  visitTerms(body, (t) => {
    if (t.kind === 'Field' || t.kind === 'IndexField' || t.kind === 'BankField') {
      for (const e of t.elements) if (e.kind === 'NamedField') out.add(e.name);
    } else if (t.kind !== 'NamePath' && t.kind !== 'MethodCall' && t.kind !== 'Scope' && 'name' in t && typeof t.name === 'object' && t.name !== null) {
      const name = t.name as NameString;
      if (name.segs.length > 0) out.add(name.segs[name.segs.length - 1]!);
      out.add(formatName(name));
    }
  });
  return out;
}

/**
 * Checks the names new statements use from inside `method`, as add-ssdt checks the scopes it
 * opens: a name that resolves to nothing (from the method's scope by ACPI's search rules, or
 * among what the method's body and the new statements declare) would stop the method with
 * AE_NOT_FOUND when the OS runs it; a call must name a method and pass its argument count.
 */
function checkNames(ns: AcpiNamespace, method: NsNode, existing: readonly Term[], added: ReadonlyArray<{ readonly term: Term; readonly at: string }>, problems: RuleProblem[]): void {
  const local = declaredSegments([...existing, ...added.map((a) => a.term)]);
  for (const { term, at } of added) {
    visitTerms([term], (t) => {
      if (t.kind !== 'NamePath' && t.kind !== 'MethodCall') return;
      const text = formatName(t.name, false);
      if ((isSearchable(t.name) && local.has(t.name.segs[0]!)) || local.has(formatName(t.name))) return;
      const node = ns.resolve(t.name, method);
      if (node === undefined) {
        problems.push({ path: at, message: `${text} names no object the tables or ${method.path} declare (the OS would stop the method there with AE_NOT_FOUND; an external statement declares what another table loads at run time)` });
        return;
      }
      if (t.kind !== 'MethodCall') return;
      const args = ns.argCount(node);
      if (args === undefined) problems.push({ path: at, message: `calls ${text}, which is a ${node.kind}, not a method` });
      else if (args !== t.args.length) problems.push({ path: at, message: `calls ${text} with ${t.args.length} argument(s); it takes ${args}` });
    });
  }
}

function calls(body: readonly Term[]): number {
  let n = 0;
  visitTerms(body, () => void n++);
  return n;
}

export function replaceMethod(ns: AcpiNamespace, tables: readonly WorldTable[], rule: ReplaceMethodRule, problems: RuleProblem[]): MethodEdit | undefined {
  const decls = methodDeclarations(ns, rule.method, `${rule.path}.method`, problems);
  if (decls.length === 0) return undefined;
  const path = ns.get(rule.method)!.path;
  const replace = new Map<Term, Term>();
  try {
    for (const d of decls) {
      const nb = newBody(rule, d, tables, path);
      const { pkgLenBytes: _drop, ...rest } = d;
      replace.set(d, { ...rest, body: nb.body, serialized: nb.serialized, syncLevel: nb.syncLevel });
    }
  } catch (err) {
    if (err instanceof SnippetError) {
      problems.push({ path: err.at, message: err.message });
      return undefined;
    }
    if (err instanceof AmlSpecError) {
      problems.push({ path: err.specPath, message: err.detail });
      return undefined;
    }
    if (err instanceof HvmptError) {
      problems.push({ path: rule.path, message: err.message });
      return undefined;
    }
    throw err;
  }
  if (rule.source.kind === 'spec') {
    const start = problems.length;
    const body = (replace.get(decls[0]!) as MethodTerm).body;
    checkNames(ns, ns.get(rule.method)!, [], body.map((term, i) => ({ term, at: `${rule.path}.body[${i}]` })), problems);
    if (problems.length > start) return undefined;
  }
  const first = [...replace.values()][0] as MethodTerm;
  return { replace, summary: `${path}: body replaced (${decls.length} declaration(s), ${calls(first.body)} term(s) from ${rule.source.kind === 'spec' ? 'the spec' : rule.source.file})` };
}

export function patchMethod(ns: AcpiNamespace, rule: PatchMethodRule, problems: RuleProblem[]): MethodEdit | undefined {
  const decls = methodDeclarations(ns, rule.method, `${rule.path}.method`, problems);
  if (decls.length === 0) return undefined;
  if ((rule.prepend ?? []).length === 0 && (rule.append ?? []).length === 0) {
    problems.push({ path: rule.path, message: 'give statements to prepend or append' });
    return undefined;
  }
  let prepend: Term[];
  let append: Term[];
  try {
    prepend = specStatements(rule.prepend ?? [], `${rule.path}.prepend`);
    append = specStatements(rule.append ?? [], `${rule.path}.append`);
  } catch (err) {
    if (err instanceof AmlSpecError) {
      problems.push({ path: err.specPath, message: err.detail });
      return undefined;
    }
    throw err;
  }
  const node = ns.get(rule.method)!;
  const added = [...prepend.map((term, i) => ({ term, at: `${rule.path}.prepend[${i}]` })), ...append.map((term, i) => ({ term, at: `${rule.path}.append[${i}]` }))];
  const start = problems.length;
  for (const d of decls) checkNames(ns, node, d.body, added, problems);
  if (problems.length > start) {
    // Every declaration gets the same statements: say each problem once.
    const unique = [...new Map(problems.splice(start).map((p) => [`${p.path}\n${p.message}`, p])).values()];
    problems.push(...unique);
    return undefined;
  }
  const replace = new Map<Term, Term>();
  for (const d of decls) {
    const { pkgLenBytes: _drop, ...rest } = d;
    replace.set(d, { ...rest, body: [...prepend, ...d.body, ...append] });
  }
  const path = node.path;
  return { replace, summary: `${path}: ${prepend.length} statement(s) prepended, ${append.length} appended (${decls.length} declaration(s))` };
}
