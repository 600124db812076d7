import type { Term } from '../aml/terms.js';
import { visitTerms } from '../aml/walk.js';
import type { AcpiNamespace, NsNode } from './namespace.js';

/**
 * A deliberately small evaluator for the control methods that only choose between constant
 * objects: `If (PICM) { Return (AR00) } Return (PR00)`, `Return (AR00 ())`, a method-local
 * `Name (RBUF, ResourceTemplate ...)` returned at the end. Anything with side effects or
 * arithmetic is "not static" and the caller reports it as such; this is not an interpreter.
 */

/** A value found without running code, and the scope its names resolve in. */
export interface StaticValue {
  readonly term: Term;
  /** The node whose scope holds `term` (the Name's parent, or the method for inline values). */
  readonly scope: NsNode;
  /** Path of the object that holds it (`\_SB_.AR00`), or of the method that returns it inline. */
  readonly from: string;
}

export class NotStatic extends Error {}

export interface EvalContext {
  readonly ns: AcpiNamespace;
  /** Names whose value is the condition under test (PICM and the like). */
  readonly flags: ReadonlySet<NsNode>;
  /** The value those names hold in this evaluation. */
  readonly flagValue: bigint;
  /** Treat any name tested by a predicate as a flag (when _PIC names none). */
  readonly anyNameIsFlag: boolean;
  /** Names the predicates tested, collected as evaluation goes. */
  readonly tested: Set<NsNode>;
}

const MAX_CALL_DEPTH = 8;

/** Evaluates a method with no arguments to the constant object it returns. */
export function evaluateMethod(ctx: EvalContext, method: NsNode, depth = 0): StaticValue {
  if (depth > MAX_CALL_DEPTH) throw new NotStatic(`calls nested deeper than ${MAX_CALL_DEPTH}`);
  const t = method.term;
  if (t?.kind !== 'Method') throw new NotStatic(`${method.path} is not a method`);
  if (t.argCount !== 0) throw new NotStatic(`${method.path} takes ${t.argCount} argument(s)`);
  return evaluateStatements(ctx, method, t.body, t.body, depth);
}

/**
 * Evaluates `statements` as the body of `method` (whose full body, `methodBody`, holds the
 * method-local Names they may return).
 */
export function evaluateStatements(
  ctx: EvalContext,
  method: NsNode,
  statements: readonly Term[],
  methodBody: readonly Term[],
  depth = 0,
): StaticValue {
  const r = run(ctx, statements, method, methodBody, depth);
  if (r === undefined) throw new NotStatic(`${method.path} returns nothing`);
  return r;
}

function run(ctx: EvalContext, body: readonly Term[], method: NsNode, methodBody: readonly Term[], depth: number): StaticValue | undefined {
  for (const s of body) {
    switch (s.kind) {
      case 'If': {
        const p = predicate(ctx, s.predicate, method);
        const r = p ? run(ctx, s.body, method, methodBody, depth) : s.else !== undefined ? run(ctx, s.else.body, method, methodBody, depth) : undefined;
        if (r !== undefined) return r;
        break;
      }
      case 'Return':
        return value(ctx, s.operand, method, methodBody, depth);
      case 'Noop':
      case 'Name':
      case 'CreateBitField':
      case 'CreateByteField':
      case 'CreateWordField':
      case 'CreateDWordField':
      case 'CreateQWordField':
      case 'CreateField':
        break;
      default:
        throw new NotStatic(`${method.path} does more than choose a value (${s.kind})`);
    }
  }
  return undefined;
}

function value(ctx: EvalContext, t: Term, method: NsNode, methodBody: readonly Term[], depth: number): StaticValue {
  switch (t.kind) {
    case 'Package':
    case 'VarPackage':
    case 'Buffer':
    case 'Integer':
    case 'String':
      return { term: t, scope: method, from: method.path };
    case 'NamePath':
    case 'MethodCall': {
      if (t.kind === 'MethodCall' && t.args.length > 0) throw new NotStatic(`${method.path} calls a method with arguments`);
      const seg = t.name.segs.length === 1 && !t.name.root && t.name.parents === 0 ? t.name.segs[0] : undefined;
      // A Name declared in the method body itself (not in the static namespace).
      const local = seg === undefined ? undefined : methodBody.find((x) => x.kind === 'Name' && x.name.segs.length === 1 && x.name.segs[0] === seg);
      if (local?.kind === 'Name') return { term: local.value, scope: method, from: `${method.path}.${seg}` };
      const node = ctx.ns.resolve(t.name, method);
      const target = node === undefined ? undefined : ctx.ns.deref(node);
      if (target === undefined) throw new NotStatic(`${method.path} returns ${t.name.segs.join('.')}, which no table declares`);
      if (target.term?.kind === 'Name') return { term: target.term.value, scope: target.parent ?? target, from: target.path };
      if (target.term?.kind === 'Method') return evaluateMethod(ctx, target, depth + 1);
      throw new NotStatic(`${method.path} returns ${target.path}, a ${target.kind}`);
    }
    default:
      throw new NotStatic(`${method.path} computes its result (${t.kind})`);
  }
}

function integer(ctx: EvalContext, t: Term, scope: NsNode): bigint {
  if (t.kind === 'Integer') return t.value;
  if (t.kind === 'NamePath') {
    const node = ctx.ns.resolve(t.name, scope);
    if (node !== undefined && (ctx.flags.has(node) || (ctx.anyNameIsFlag && ctx.flags.size === 0))) {
      ctx.tested.add(node);
      return ctx.flagValue;
    }
    throw new NotStatic(`condition reads ${t.name.segs.join('.')}, which is not the interrupt-model flag`);
  }
  return predicate(ctx, t, scope) ? 1n : 0n;
}

function predicate(ctx: EvalContext, t: Term, scope: NsNode): boolean {
  switch (t.kind) {
    case 'Integer':
    case 'NamePath':
      return integer(ctx, t, scope) !== 0n;
    case 'LNot':
      return !predicate(ctx, t.operand, scope);
    case 'LAnd':
      return predicate(ctx, t.left, scope) && predicate(ctx, t.right, scope);
    case 'LOr':
      return predicate(ctx, t.left, scope) || predicate(ctx, t.right, scope);
    case 'LEqual':
      return integer(ctx, t.left, scope) === integer(ctx, t.right, scope);
    case 'LGreater':
      return integer(ctx, t.left, scope) > integer(ctx, t.right, scope);
    case 'LLess':
      return integer(ctx, t.left, scope) < integer(ctx, t.right, scope);
    default:
      throw new NotStatic(`condition ${t.kind} is not a test of the interrupt-model flag`);
  }
}

/**
 * The objects _PIC stores its argument into (PICM, GPIC, PICF...): the flags that say whether
 * the OS chose the APIC (1) or the PIC (0) interrupt model.
 */
export function interruptModelFlags(ns: AcpiNamespace): Set<NsNode> {
  const flags = new Set<NsNode>();
  const pic = ns.get('\\_PIC');
  if (pic?.term?.kind !== 'Method') return flags;
  visitTerms(pic.term.body, (t) => {
    if ((t.kind === 'Store' || t.kind === 'CopyObject') && t.value.kind === 'Arg' && t.value.index === 0 && t.target?.kind === 'NamePath') {
      const n = ns.resolve(t.target.name, pic);
      if (n !== undefined) flags.add(n);
    }
  });
  return flags;
}
