import { dirname, resolve } from 'node:path';
import { isAlias, isCollection, isNode, isPair, isScalar, LineCounter, parseDocument, type Alias, type Document, type Node as YamlNode, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { HvmptError } from '../errors.js';
import { readInputText } from './input.js';

/** A path a plan names: relative paths are relative to the plan file's directory. */
export function planRelative(planFile: string, path: string): string {
  return resolve(dirname(planFile), path);
}

/** A plan, rules file or other structured input that failed parsing or validation. */
export class PlanError extends HvmptError {
  /** Every problem found, each with its path; the message carries them all. */
  readonly problems: readonly PlanProblem[];
  constructor(input: string, problems: readonly PlanProblem[]) {
    super(problems.map((p) => `${p.path === '' ? '(top level)' : p.path}: ${p.message}`).join('; '), {
      input,
    });
    this.problems = problems;
  }
}

export interface PlanProblem {
  /** Dotted path with [index] for arrays, e.g. `pci.devices[2].bars[0].size`. */
  readonly path: string;
  readonly message: string;
}

export { formatPath } from '../util/format.js';
import { formatPath } from '../util/format.js';

/** Deeper nesting than this is refused: real plans nest about ten levels (an SSDT body inside a rule). */
export const MAX_PLAN_DEPTH = 100;
/** Aliases may add at most this many nodes to a plan, so an alias bomb is refused before it expands. */
export const MAX_ALIAS_NODES = 100_000;

/** Parses YAML (a superset of JSON) text; every problem is reported with its line and column. */
export function parseStructuredText(text: string, input: string): unknown {
  const lines = new LineCounter();
  const where = (offset: number): string => {
    const pos = lines.linePos(offset);
    return `line ${pos.line} column ${pos.col}`;
  };
  const fail = (offset: number | undefined, message: string): never => {
    throw new PlanError(input, [{ path: offset === undefined ? '' : where(offset), message }]);
  };
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    // The parser recurses per nesting level: a pathologically deep text overflows the stack.
    if (err instanceof RangeError) return fail(undefined, `nested too deeply to read (a plan nests at most ${MAX_PLAN_DEPTH} levels)`);
    throw err;
  }
  // Warnings too: an unknown tag (`!foo`) or an ambiguous alias means the plan is not what it looks like.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) return fail(problem.pos[0], yamlMessage(problem));
  checkTree(doc, fail);
  try {
    return doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    if (err instanceof RangeError || err instanceof ReferenceError) return fail(undefined, err.message);
    throw err;
  }
}

/** The YAML library's message, in a plan's terms where it speaks of its own API. */
function yamlMessage(e: YAMLError): string {
  const text = e.message.split('\n')[0]!;
  switch (e.code) {
    case 'MULTIPLE_DOCS':
      return 'a second YAML document begins here: a plan is one document (remove the --- line or split the file)';
    case 'DUPLICATE_KEY':
      return 'this key repeats one given earlier in the same mapping';
    case 'TAG_RESOLVE_FAILED':
      return `${text.replace(/^Unresolved tag: /, 'unknown tag ')}: a plan holds plain YAML or JSON values, with no tags`;
  }
  return /call stack/i.test(text) ? `nested too deeply to read (a plan nests at most ${MAX_PLAN_DEPTH} levels)` : text;
}

/**
 * Checks what the YAML library leaves to toJS(): nesting depth, aliases that name no earlier
 * anchor or the node they sit in, and how many nodes the aliases expand to. Iterative, so a
 * deep document cannot overflow the stack here.
 */
function checkTree(doc: Document.Parsed, fail: (offset: number | undefined, message: string) => never): void {
  const anchors = new Map<string, YamlNode>();
  const targets = new Map<Alias, YamlNode>();
  const sizes = new WeakMap<object, number>();
  // Nodes the aliases expand to, each anchored node counted once per use (memoized, saturating).
  const size = (node: unknown): number => {
    if (isAlias(node)) return size(targets.get(node));
    if (!isNode(node) && !isPair(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    let n = 1;
    if (isPair(node)) n += size(node.key) + size(node.value);
    else if (isCollection(node)) for (const item of node.items) n = Math.min(n + size(item), Number.MAX_SAFE_INTEGER);
    sizes.set(node, n);
    return n;
  };
  let added = 0;
  const stack: Array<{ node: unknown; depth: number }> = [{ node: doc.contents, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || node === undefined) continue;
    const offset = isNode(node) ? node.range?.[0] : undefined;
    if (depth > MAX_PLAN_DEPTH) fail(offset, `nested deeper than ${MAX_PLAN_DEPTH} levels`);
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) fail(offset, `alias *${node.source} refers to no anchor (&${node.source}) before it`);
      const range = target!.range;
      if (range !== null && range !== undefined && offset !== undefined && offset >= range[0] && offset < range[2]) {
        fail(offset, `alias *${node.source} refers to the node that contains it`);
      }
      targets.set(node, target!);
      added += size(target);
      if (added > MAX_ALIAS_NODES) fail(offset, `aliases expand the plan past ${MAX_ALIAS_NODES} nodes (an alias bomb?)`);
      continue;
    }
    if (isNode(node) && node.anchor !== undefined) anchors.set(node.anchor, node);
    if (isPair(node)) {
      // YAML allows a map, a list or binary data as a key (`? [a, b]`, `!!binary`); JavaScript objects do not, and toJS would stringify it with a process warning.
      const key = isAlias(node.key) ? anchors.get(node.key.source) : node.key;
      if (isCollection(key) || (isScalar(key) && typeof key.value === 'object' && key.value !== null)) {
        fail(isNode(node.key) ? node.key.range?.[0] : offset, 'a key that is a map, a list or binary data: a plan\'s keys are plain names');
      }
      stack.push({ node: node.value, depth: depth + 1 }, { node: node.key, depth: depth + 1 });
    } else if (isCollection(node)) {
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ node: node.items[i], depth: depth + (isPair(node.items[i]) ? 0 : 1) });
    }
  }
}

/** Validates already-parsed data against a schema; every problem is reported with its path. */
export function validate<S extends z.ZodType>(schema: S, data: unknown, input: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new PlanError(
    input,
    result.error.issues.flatMap((issue) => innermost(issue, [])).map((p) => ({ path: formatPath(p.path), message: p.message })),
  );
}

interface Issue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * The problems behind a zod issue, with full paths. A value that fits none of a union's shapes
 * is reported by the shape it came closest to fitting (the one whose problems lie deepest,
 * then the one with fewest), so a mistake inside an SSDT body reads `body[0].args: Too big`
 * rather than "Invalid input"; when no shape gets past the value itself, each says what it wanted.
 */
function innermost(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): Issue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ path, message: issue.message }];
  const branches = issue.errors.map((b) => b.flatMap((i) => innermost(i, path)));
  const depth = (b: readonly Issue[]): number => Math.max(...b.map((i) => i.path.length));
  const best = branches.reduce((a, b) => (depth(b) > depth(a) || (depth(b) === depth(a) && b.length < a.length) ? b : a));
  if (depth(best) > path.length) return best;
  // A union that says what it wants in its own words keeps them.
  if (issue.message !== 'Invalid input') return [{ path, message: issue.message }];
  const wanted = [...new Set(branches.flat().map((i) => i.message.replace(/^Invalid input: /, '')))];
  return [{ path, message: wanted.join(', or ') }];
}

/** Reads a YAML or JSON file (at most INPUT_LIMITS.plan) and validates it. */
export function loadStructuredFile<S extends z.ZodType>(schema: S, file: string): z.output<S> {
  return validate(schema, parseStructuredText(readInputText(file, 'plan'), file), file);
}
