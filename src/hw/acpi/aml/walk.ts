import type { FieldElement, Target, Term } from './terms.js';

/**
 * Generic traversal of term trees, for code that looks for something anywhere (every call of
 * a method, every reference to a device being hidden) rather than following the namespace.
 */

/** The direct sub-terms of `t`, in encoding order (bodies and else bodies included). */
export function childTerms(t: Term): Term[] {
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
      return [];
    case 'Buffer':
      return [t.size];
    case 'Package':
      return [...t.elements];
    case 'VarPackage':
      return [t.count, ...t.elements];
    case 'MethodCall':
      return [...t.args];
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
    case 'ConcatenateResTemplate':
      return withTargets([t.left, t.right], t.target);
    case 'Not':
    case 'FindSetLeftBit':
    case 'FindSetRightBit':
    case 'ToBuffer':
    case 'ToDecimalString':
    case 'ToHexString':
    case 'ToInteger':
    case 'FromBCD':
    case 'ToBCD':
      return withTargets([t.operand], t.target);
    case 'LAnd':
    case 'LOr':
    case 'LEqual':
    case 'LGreater':
    case 'LLess':
      return [t.left, t.right];
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
    case 'Return':
      return [t.operand];
    case 'Store':
    case 'CopyObject':
      return withTargets([t.value], t.target);
    case 'Divide':
      return withTargets([t.dividend, t.divisor], t.remainder, t.quotient);
    case 'Match':
      return [t.package, t.operand1, t.operand2, t.start];
    case 'Mid':
      return withTargets([t.source, t.index, t.length], t.target);
    case 'ToString':
      return withTargets([t.source, t.length], t.target);
    case 'CondRefOf':
      return withTargets([t.operand], t.target);
    case 'Notify':
      return [t.object, t.value];
    case 'Acquire':
      return [t.mutex];
    case 'Wait':
      return [t.event, t.timeout];
    case 'Fatal':
      return [t.arg];
    case 'Load':
      return withTargets([], t.target);
    case 'LoadTable':
      return [t.signature, t.oemId, t.oemTableId, t.rootPath, t.parameterPath, t.parameterData];
    case 'If':
      return [t.predicate, ...t.body, ...(t.else?.body ?? [])];
    case 'While':
      return [t.predicate, ...t.body];
    case 'Name':
      return [t.value];
    case 'Scope':
    case 'Device':
    case 'ThermalZone':
    case 'Method':
    case 'Processor':
    case 'PowerResource':
      return [...t.body];
    case 'OperationRegion':
      return [t.offset, t.length];
    case 'DataRegion':
      return [t.signature, t.oemId, t.oemTableId];
    case 'Field':
    case 'IndexField':
      return fieldBuffers(t.elements);
    case 'BankField':
      return [t.bankValue, ...fieldBuffers(t.elements)];
    case 'CreateBitField':
    case 'CreateByteField':
    case 'CreateWordField':
    case 'CreateDWordField':
    case 'CreateQWordField':
      return [t.source, t.index];
    case 'CreateField':
      return [t.source, t.bitIndex, t.numBits];
  }
}

function withTargets(terms: Term[], ...targets: Target[]): Term[] {
  for (const t of targets) if (t !== null) terms.push(t);
  return terms;
}

function fieldBuffers(elements: readonly FieldElement[]): Term[] {
  const out: Term[] = [];
  for (const e of elements) if (e.kind === 'ConnectionBuffer') out.push(e.buffer);
  return out;
}

/**
 * Visits every term depth-first, parents before children. Return `false` from `visit` to
 * skip a term's children. Iterative, so any depth the parser accepted is safe here.
 */
export function visitTerms(terms: readonly Term[], visit: (term: Term) => boolean | void): void {
  const stack: Term[] = [];
  for (let i = terms.length - 1; i >= 0; i--) stack.push(terms[i]!);
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (visit(t) === false) continue;
    const kids = childTerms(t);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}

/**
 * Rewrites the term lists of a tree (object bodies, If/Else/While bodies, package elements,
 * including packages held by a Name or returned by a Return): `edit` sees every term in such
 * a list, outer before inner, and returns it (its lists are then rewritten in turn), a
 * replacement (taken as is), or null to drop it. Terms whose lists
 * did not change are returned as the same objects, so an untouched subtree re-encodes to
 * its original bytes. A Package whose declared count equalled its element count keeps them
 * equal; a larger declared count is kept as it was.
 */
export function editTermLists(terms: readonly Term[], edit: (term: Term) => Term | null): Term[] {
  const out: Term[] = [];
  for (const t of terms) {
    const r = edit(t);
    if (r === null) continue;
    out.push(r === t ? editLists(t, edit) : r);
  }
  return out;
}

function sameList(a: readonly Term[], b: readonly Term[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function editLists(t: Term, edit: (term: Term) => Term | null): Term {
  switch (t.kind) {
    case 'Scope':
    case 'Device':
    case 'ThermalZone':
    case 'Method':
    case 'Processor':
    case 'PowerResource':
    case 'While': {
      const body = editTermLists(t.body, edit);
      return sameList(body, t.body) ? t : { ...t, body };
    }
    case 'If': {
      const body = editTermLists(t.body, edit);
      const elseBody = t.else === undefined ? undefined : editTermLists(t.else.body, edit);
      const elseSame = t.else === undefined || sameList(elseBody!, t.else.body);
      if (sameList(body, t.body) && elseSame) return t;
      return { ...t, body, ...(t.else === undefined ? {} : { else: elseSame ? t.else : { ...t.else, body: elseBody! } }) };
    }
    case 'Package': {
      const elements = editTermLists(t.elements, edit);
      if (sameList(elements, t.elements)) return t;
      return { ...t, elements, count: t.count === t.elements.length ? elements.length : Math.max(t.count, elements.length) };
    }
    case 'VarPackage': {
      const elements = editTermLists(t.elements, edit);
      return sameList(elements, t.elements) ? t : { ...t, elements };
    }
    case 'Name': {
      const value = editLists(t.value, edit);
      return value === t.value ? t : { ...t, value };
    }
    case 'Return': {
      const operand = editLists(t.operand, edit);
      return operand === t.operand ? t : { ...t, operand };
    }
    default:
      return t;
  }
}
