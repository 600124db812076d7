import { absoluteSegs } from '../aml/names.js';
import type { FieldElement, NameString, Target, Term } from '../aml/terms.js';

/**
 * A scoped rewrite of term trees, for the world-view rules: every term is shown to a visitor
 * together with the namespace scope its names resolve in and the slot it sits in, and the
 * visitor keeps it, replaces it, or removes it. Removal is what makes hiding safe to express:
 *
 * - `DROP` removes the term from the list that holds it (a statement from a body, an element
 *   from a package). A term that is not in a list cannot be removed on its own, so there
 *   `DROP` turns into `POISON`.
 * - `POISON` climbs to the nearest statement list inside a method body and removes the whole
 *   statement there. It never removes a table-level declaration: reaching one is reported
 *   through `onUnabsorbed` and the term is kept, so the caller can refuse.
 *
 * Unchanged subtrees come back as the same objects, so they re-encode to their original bytes.
 * Iterative over lists and recursive over nesting; the parser bounds nesting depth.
 */

export const DROP: unique symbol = Symbol('drop');
export const POISON: unique symbol = Symbol('poison');
export type Removal = typeof DROP | typeof POISON;

/** Where a term sits. */
export type Slot =
  /** A member of a term list: a table body, an object body, If/Else/While bodies. */
  | 'statement'
  /** An element of a Package or VarPackage. */
  | 'element'
  /** An operand whose value is read: arithmetic, comparisons, predicates, Store's source, Return, call arguments. */
  | 'value'
  /** An operand taken as an object: a target, what RefOf/DerefOf/SizeOf/Index/Increment act on, a mutex. */
  | 'object';

export interface RewriteContext {
  /** Absolute padded segments of the scope names resolve in (`['_SB_', 'PCI0']`). */
  readonly scope: readonly string[];
  /** Inside a method body (statements there may be removed by POISON). */
  readonly inMethod: boolean;
  /** The last segment of the nearest enclosing Name or Method (`_PRW`, `_PRT`), for packages. */
  readonly holder: string | undefined;
  readonly slot: Slot;
  /** For elements: the enclosing package's elements and this one's index. */
  readonly siblings?: readonly Term[];
  readonly index?: number;
}

/**
 * Returns undefined to keep the term and rewrite inside it, a term to replace it (taken as is),
 * or DROP/POISON to remove it.
 */
export type Visitor = (term: Term, ctx: RewriteContext) => Term | Removal | undefined;

export interface RewriteOptions {
  /** A POISON reached table level (or an operand of a declaration): the term is kept. */
  readonly onUnabsorbed?: (term: Term, ctx: RewriteContext) => void;
}

/** Rewrites a table's term list (its scope is the root). */
export function rewriteTable(terms: readonly Term[], visit: Visitor, options: RewriteOptions = {}): readonly Term[] {
  const r = new Rewriter(visit, options);
  return r.list(terms, { scope: [], inMethod: false, holder: undefined, slot: 'statement' });
}

/** The scope a named object's body opens: its name made absolute against the current scope. */
export function bodyScope(name: NameString, scope: readonly string[]): readonly string[] {
  return absoluteSegs(name, scope) ?? scope;
}

class Rewriter {
  constructor(
    private readonly visit: Visitor,
    private readonly options: RewriteOptions,
  ) {}

  /** A statement list: removed members vanish; a POISON inside a method removes its statement. */
  list(terms: readonly Term[], ctx: RewriteContext): readonly Term[] {
    let out: Term[] | undefined;
    for (let i = 0; i < terms.length; i++) {
      const t = terms[i]!;
      let r = this.term(t, ctx);
      if (r === POISON && !ctx.inMethod) {
        this.options.onUnabsorbed?.(t, ctx);
        r = t;
      }
      if (r === t && out === undefined) continue;
      if (out === undefined) out = terms.slice(0, i);
      if (r !== DROP && r !== POISON) out.push(r);
    }
    return out ?? terms;
  }

  /** Package elements: DROP removes one; POISON poisons the package. */
  elements(terms: readonly Term[], ctx: RewriteContext): readonly Term[] | typeof POISON {
    let out: Term[] | undefined;
    for (let i = 0; i < terms.length; i++) {
      const t = terms[i]!;
      const r = this.term(t, { ...ctx, slot: 'element', siblings: terms, index: i });
      if (r === POISON) return POISON;
      if (r === t && out === undefined) continue;
      if (out === undefined) out = terms.slice(0, i);
      if (r !== DROP) out.push(r);
    }
    return out ?? terms;
  }

  operand(t: Term, ctx: RewriteContext, slot: 'value' | 'object' = 'value'): Term | typeof POISON {
    const r = this.term(t, { scope: ctx.scope, inMethod: ctx.inMethod, holder: ctx.holder, slot });
    return r === DROP ? POISON : r;
  }

  target(t: Target, ctx: RewriteContext): Target | typeof POISON {
    return t === null ? null : this.operand(t, ctx, 'object');
  }

  term(t: Term, ctx: RewriteContext): Term | Removal {
    const v = this.visit(t, ctx);
    if (v !== undefined) return v;
    return this.inside(t, ctx);
  }

  /** Rewrites the children of `t`; returns `t` itself when none changed. */
  inside(t: Term, ctx: RewriteContext): Term | Removal {
    const base = { scope: ctx.scope, inMethod: ctx.inMethod, holder: ctx.holder, slot: 'value' as const };
    const op = (x: Term): Term | typeof POISON => this.operand(x, base);
    const obj = (x: Term): Term | typeof POISON => this.operand(x, base, 'object');
    const tg = (x: Target): Target | typeof POISON => this.target(x, base);
    switch (t.kind) {
      case 'Integer':
      case 'String':
      case 'NamePath':
      case 'Local':
      case 'Arg':
      case 'Noop':
      case 'Break':
      case 'Continue':
      case 'BreakPoint':
      case 'Revision':
      case 'Debug':
      case 'Timer':
      case 'Alias':
      case 'External':
      case 'Mutex':
      case 'Event':
      case 'Load':
        if (t.kind === 'Load') {
          const target = tg(t.target);
          if (target === POISON) return POISON;
          return target === t.target ? t : { ...t, target };
        }
        return t;
      case 'Buffer': {
        const size = op(t.size);
        if (size === POISON) return POISON;
        return size === t.size ? t : { ...t, size };
      }
      case 'Package': {
        const elements = this.elements(t.elements, base);
        if (elements === POISON) return POISON;
        if (elements === t.elements) return t;
        return { ...t, elements, count: t.count === t.elements.length ? elements.length : Math.max(t.count, elements.length) };
      }
      case 'VarPackage': {
        const count = op(t.count);
        const elements = this.elements(t.elements, base);
        if (count === POISON || elements === POISON) return POISON;
        if (count === t.count && elements === t.elements) return t;
        const fixedCount =
          count.kind === 'Integer' && count.value === BigInt(t.elements.length) && count === t.count ? { ...count, value: BigInt(elements.length) } : count;
        return { ...t, count: fixedCount, elements };
      }
      case 'MethodCall': {
        const args = this.operands(t.args, base);
        if (args === POISON) return POISON;
        return args === t.args ? t : { ...t, args };
      }
      case 'Add':
      case 'Concatenate':
      case 'Subtract':
      case 'Multiply':
      case 'ShiftLeft':
      case 'ShiftRight':
      case 'And':
      case 'Nand':
      case 'Or':
      case 'Nor':
      case 'Xor':
      case 'Mod':
      case 'Index':
      case 'ConcatenateResTemplate': {
        const asObjects = t.kind === 'Index' || t.kind === 'ConcatenateResTemplate';
        const left = asObjects ? obj(t.left) : op(t.left);
        const right = t.kind === 'ConcatenateResTemplate' ? obj(t.right) : op(t.right);
        const target = tg(t.target);
        if (left === POISON || right === POISON || target === POISON) return POISON;
        return left === t.left && right === t.right && target === t.target ? t : { ...t, left, right, target };
      }
      case 'Not':
      case 'FindSetLeftBit':
      case 'FindSetRightBit':
      case 'ToBuffer':
      case 'ToDecimalString':
      case 'ToHexString':
      case 'ToInteger':
      case 'FromBCD':
      case 'ToBCD':
      case 'CondRefOf': {
        const operand = t.kind === 'CondRefOf' ? obj(t.operand) : op(t.operand);
        const target = tg(t.target);
        if (operand === POISON || target === POISON) return POISON;
        return operand === t.operand && target === t.target ? t : { ...t, operand, target };
      }
      case 'LAnd':
      case 'LOr':
      case 'LEqual':
      case 'LGreater':
      case 'LLess': {
        const left = op(t.left);
        const right = op(t.right);
        if (left === POISON || right === POISON) return POISON;
        return left === t.left && right === t.right ? t : { ...t, left, right };
      }
      case 'LNot':
      case 'RefOf':
      case 'DerefOf':
      case 'Increment':
      case 'Decrement':
      case 'SizeOf':
      case 'ObjectType':
      case 'Sleep':
      case 'Stall':
      case 'Signal':
      case 'Reset':
      case 'Release':
      case 'Unload':
      case 'Return': {
        const read = t.kind === 'LNot' || t.kind === 'Sleep' || t.kind === 'Stall' || t.kind === 'Return';
        const operand = read ? op(t.operand) : obj(t.operand);
        if (operand === POISON) return POISON;
        return operand === t.operand ? t : { ...t, operand };
      }
      case 'Store':
      case 'CopyObject': {
        const value = op(t.value);
        const target = tg(t.target);
        if (value === POISON || target === POISON) return POISON;
        return value === t.value && target === t.target ? t : { ...t, value, target };
      }
      case 'Divide': {
        const dividend = op(t.dividend);
        const divisor = op(t.divisor);
        const remainder = tg(t.remainder);
        const quotient = tg(t.quotient);
        if (dividend === POISON || divisor === POISON || remainder === POISON || quotient === POISON) return POISON;
        return dividend === t.dividend && divisor === t.divisor && remainder === t.remainder && quotient === t.quotient
          ? t
          : { ...t, dividend, divisor, remainder, quotient };
      }
      case 'Match': {
        const pkg = obj(t.package);
        const operand1 = op(t.operand1);
        const operand2 = op(t.operand2);
        const start = op(t.start);
        if (pkg === POISON || operand1 === POISON || operand2 === POISON || start === POISON) return POISON;
        return pkg === t.package && operand1 === t.operand1 && operand2 === t.operand2 && start === t.start
          ? t
          : { ...t, package: pkg, operand1, operand2, start };
      }
      case 'Mid': {
        const source = obj(t.source);
        const index = op(t.index);
        const length = op(t.length);
        const target = tg(t.target);
        if (source === POISON || index === POISON || length === POISON || target === POISON) return POISON;
        return source === t.source && index === t.index && length === t.length && target === t.target ? t : { ...t, source, index, length, target };
      }
      case 'ToString': {
        const source = obj(t.source);
        const length = op(t.length);
        const target = tg(t.target);
        if (source === POISON || length === POISON || target === POISON) return POISON;
        return source === t.source && length === t.length && target === t.target ? t : { ...t, source, length, target };
      }
      case 'Notify': {
        const object = obj(t.object);
        const value = op(t.value);
        if (object === POISON || value === POISON) return POISON;
        return object === t.object && value === t.value ? t : { ...t, object, value };
      }
      case 'Acquire': {
        const mutex = obj(t.mutex);
        if (mutex === POISON) return POISON;
        return mutex === t.mutex ? t : { ...t, mutex };
      }
      case 'Wait': {
        const event = obj(t.event);
        const timeout = op(t.timeout);
        if (event === POISON || timeout === POISON) return POISON;
        return event === t.event && timeout === t.timeout ? t : { ...t, event, timeout };
      }
      case 'Fatal': {
        const arg = op(t.arg);
        if (arg === POISON) return POISON;
        return arg === t.arg ? t : { ...t, arg };
      }
      case 'LoadTable': {
        const k = [t.signature, t.oemId, t.oemTableId, t.rootPath, t.parameterPath, t.parameterData].map(op);
        if (k.includes(POISON)) return POISON;
        const [signature, oemId, oemTableId, rootPath, parameterPath, parameterData] = k as Term[];
        return signature === t.signature &&
          oemId === t.oemId &&
          oemTableId === t.oemTableId &&
          rootPath === t.rootPath &&
          parameterPath === t.parameterPath &&
          parameterData === t.parameterData
          ? t
          : { ...t, signature: signature!, oemId: oemId!, oemTableId: oemTableId!, rootPath: rootPath!, parameterPath: parameterPath!, parameterData: parameterData! };
      }
      case 'If': {
        const predicate = op(t.predicate);
        if (predicate === POISON) return POISON;
        const body = this.list(t.body, { ...base, slot: 'statement' });
        const elseBody = t.else === undefined ? undefined : this.list(t.else.body, { ...base, slot: 'statement' });
        if (predicate === t.predicate && body === t.body && elseBody === t.else?.body) return t;
        const out = { ...t, predicate, body };
        return t.else === undefined ? out : { ...out, else: elseBody === t.else.body ? t.else : { ...t.else, body: elseBody! } };
      }
      case 'While': {
        const predicate = op(t.predicate);
        if (predicate === POISON) return POISON;
        const body = this.list(t.body, { ...base, slot: 'statement' });
        return predicate === t.predicate && body === t.body ? t : { ...t, predicate, body };
      }
      case 'Name': {
        const r = this.operand(t.value, { ...base, holder: t.name.segs[t.name.segs.length - 1] });
        if (r === POISON) return POISON;
        return r === t.value ? t : { ...t, value: r };
      }
      case 'Scope':
      case 'Device':
      case 'ThermalZone':
      case 'Processor':
      case 'PowerResource': {
        const body = this.list(t.body, { scope: bodyScope(t.name, ctx.scope), inMethod: ctx.inMethod, holder: undefined, slot: 'statement' });
        return body === t.body ? t : { ...t, body };
      }
      case 'Method': {
        const body = this.list(t.body, { scope: bodyScope(t.name, ctx.scope), inMethod: true, holder: t.name.segs[t.name.segs.length - 1], slot: 'statement' });
        return body === t.body ? t : { ...t, body };
      }
      case 'OperationRegion': {
        const offset = op(t.offset);
        const length = op(t.length);
        if (offset === POISON || length === POISON) return POISON;
        return offset === t.offset && length === t.length ? t : { ...t, offset, length };
      }
      case 'DataRegion': {
        const signature = op(t.signature);
        const oemId = op(t.oemId);
        const oemTableId = op(t.oemTableId);
        if (signature === POISON || oemId === POISON || oemTableId === POISON) return POISON;
        return signature === t.signature && oemId === t.oemId && oemTableId === t.oemTableId ? t : { ...t, signature, oemId, oemTableId };
      }
      case 'Field':
      case 'IndexField': {
        const elements = this.fieldElements(t.elements, base);
        if (elements === POISON) return POISON;
        return elements === t.elements ? t : { ...t, elements };
      }
      case 'BankField': {
        const bankValue = op(t.bankValue);
        const elements = this.fieldElements(t.elements, base);
        if (bankValue === POISON || elements === POISON) return POISON;
        return bankValue === t.bankValue && elements === t.elements ? t : { ...t, bankValue, elements };
      }
      case 'CreateBitField':
      case 'CreateByteField':
      case 'CreateWordField':
      case 'CreateDWordField':
      case 'CreateQWordField': {
        const source = obj(t.source);
        const index = op(t.index);
        if (source === POISON || index === POISON) return POISON;
        return source === t.source && index === t.index ? t : { ...t, source, index };
      }
      case 'CreateField': {
        const source = obj(t.source);
        const bitIndex = op(t.bitIndex);
        const numBits = op(t.numBits);
        if (source === POISON || bitIndex === POISON || numBits === POISON) return POISON;
        return source === t.source && bitIndex === t.bitIndex && numBits === t.numBits ? t : { ...t, source, bitIndex, numBits };
      }
    }
  }

  operands(terms: readonly Term[], ctx: RewriteContext): readonly Term[] | typeof POISON {
    let out: Term[] | undefined;
    for (let i = 0; i < terms.length; i++) {
      const r = this.operand(terms[i]!, ctx);
      if (r === POISON) return POISON;
      if (r === terms[i] && out === undefined) continue;
      if (out === undefined) out = terms.slice(0, i);
      out.push(r);
    }
    return out ?? terms;
  }

  fieldElements(elements: readonly FieldElement[], ctx: RewriteContext): readonly FieldElement[] | typeof POISON {
    let out: FieldElement[] | undefined;
    for (let i = 0; i < elements.length; i++) {
      const e = elements[i]!;
      if (e.kind !== 'ConnectionBuffer') {
        if (out !== undefined) out.push(e);
        continue;
      }
      const r = this.operand(e.buffer, ctx);
      if (r === POISON) return POISON;
      if (r === e.buffer && out === undefined) continue;
      if (r.kind !== 'Buffer') return POISON;
      if (out === undefined) out = elements.slice(0, i);
      out.push({ ...e, buffer: r });
    }
    return out ?? elements;
  }
}
