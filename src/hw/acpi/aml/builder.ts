import { encodeResources } from '../resources/codec.js';
import type { Resource } from '../resources/types.js';
import { encodeEisaId } from './eisaid.js';
import { AmlEncodeError } from './errors.js';
import { nameString } from './names.js';
import type {
  AliasTerm,
  ArgTerm,
  BinaryKind,
  BufferTerm,
  CreateSizedFieldKind,
  CreateSizedFieldTerm,
  ExternalTerm,
  FieldElement,
  FieldTerm,
  IfTerm,
  IntegerTerm,
  LocalTerm,
  LogicalTerm,
  MethodCallTerm,
  MethodTerm,
  MutexTerm,
  NamePathTerm,
  NameString,
  NameTerm,
  NotifyTerm,
  OperationRegionTerm,
  PackageTerm,
  PowerResourceTerm,
  ProcessorTerm,
  ScopeTerm,
  StoreTerm,
  StringTerm,
  Target,
  Term,
  UnaryTerm,
  VarPackageTerm,
  WhileTerm,
} from './terms.js';

/**
 * Building AML from typed values, for generated tables: every helper returns a plain term,
 * so a built tree is the same kind of value the parser produces, and `encodeAml` writes it
 * with the PkgLengths computed. Names are ASL text (`\_SB.PCI0`, `^LNKA`, `_HID`); numbers and
 * bigints become integers in their smallest encoding; JS strings become String literals (use
 * ref() for a name reference).
 *
 *   encodeAml([
 *     scope('\\_SB', [
 *       device('PCI0', [
 *         name('_HID', eisaId('PNP0A08')),
 *         name('_CRS', resourceTemplate([...])),
 *         method('_PRT', 0, [ifElse(ref('\\PICM'), [ret(ref('PRTA'))], [ret(ref('PRTP'))])]),
 *       ]),
 *     ]),
 *   ])
 */

/** What builders accept where a term goes. */
export type Value = Term | number | bigint | string;
/** What builders accept where a name goes. */
export type NameLike = string | NameString;

const ALL_ONES = 0xffff_ffff_ffff_ffffn;

function toName(n: NameLike): NameString {
  return typeof n === 'string' ? nameString(n) : n;
}

/** An integer in its smallest encoding (Zero, One, Byte, Word, DWord, QWord). */
export function int(v: number | bigint): IntegerTerm {
  if (typeof v === 'number' && (!Number.isInteger(v) || !Number.isSafeInteger(v))) {
    throw new AmlEncodeError(`integer ${v} is not a safe integer; pass a bigint`);
  }
  const value = BigInt(v);
  if (value < 0n || value > ALL_ONES) throw new AmlEncodeError(`integer ${value} outside 0..2^64-1`);
  if (value === 0n) return { kind: 'Integer', value, enc: 'zero' };
  if (value === 1n) return { kind: 'Integer', value, enc: 'one' };
  if (value <= 0xffn) return { kind: 'Integer', value, enc: 'byte' };
  if (value <= 0xffffn) return { kind: 'Integer', value, enc: 'word' };
  if (value <= 0xffff_ffffn) return { kind: 'Integer', value, enc: 'dword' };
  return { kind: 'Integer', value, enc: 'qword' };
}

/** The Ones constant (all bits set; 32 bits in a revision-1 table). */
export function ones(): IntegerTerm {
  return { kind: 'Integer', value: ALL_ONES, enc: 'ones' };
}

export function str(value: string): StringTerm {
  return { kind: 'String', value };
}

/** Converts builder input to a term. */
export function value(v: Value): Term {
  if (typeof v === 'number' || typeof v === 'bigint') return int(v);
  if (typeof v === 'string') return str(v);
  return v;
}

/** EisaId("PNP0A08"), always a DWord as iasl writes it. */
export function eisaId(id: string): IntegerTerm {
  let n: number;
  try {
    n = encodeEisaId(id);
  } catch (err) {
    throw new AmlEncodeError((err as Error).message);
  }
  return { kind: 'Integer', value: BigInt(n), enc: 'dword' };
}

export function buffer(data: Uint8Array | readonly number[], size?: Value): BufferTerm {
  const bytes = data instanceof Uint8Array ? data : Uint8Array.from(data);
  return { kind: 'Buffer', size: size === undefined ? int(bytes.length) : value(size), data: bytes };
}

/** ResourceTemplate () { ... }: the descriptors, then an EndTag. */
export function resourceTemplate(resources: readonly Resource[]): BufferTerm {
  return buffer(encodeResources(resources));
}

/** Package () { ... }; more than 255 elements makes a VarPackage. */
export function pkg(...elements: Value[]): PackageTerm | VarPackageTerm {
  const els = elements.map(value);
  if (els.length > 255) return { kind: 'VarPackage', count: int(els.length), elements: els };
  return { kind: 'Package', count: els.length, elements: els };
}

/** A reference to a named object. */
export function ref(path: NameLike): NamePathTerm {
  return { kind: 'NamePath', name: toName(path) };
}

/** A method invocation; the argument count must be the method's. */
export function call(path: NameLike, ...args: Value[]): MethodCallTerm {
  if (args.length > 7) throw new AmlEncodeError(`a method takes at most 7 arguments, got ${args.length}`);
  return { kind: 'MethodCall', name: toName(path), args: args.map(value) };
}

export function local(index: number): LocalTerm {
  if (!Number.isInteger(index) || index < 0 || index > 7) throw new AmlEncodeError(`Local${index} does not exist`);
  return { kind: 'Local', index };
}

export function arg(index: number): ArgTerm {
  if (!Number.isInteger(index) || index < 0 || index > 6) throw new AmlEncodeError(`Arg${index} does not exist`);
  return { kind: 'Arg', index };
}

export const debug: Term = { kind: 'Debug' };

// ---- named objects ----

export function name(path: NameLike, v: Value): NameTerm {
  return { kind: 'Name', name: toName(path), value: value(v) };
}

export function scope(path: NameLike, body: readonly Term[]): ScopeTerm {
  return { kind: 'Scope', name: toName(path), body };
}

export function device(path: NameLike, body: readonly Term[]): ScopeTerm {
  return { kind: 'Device', name: toName(path), body };
}

export function thermalZone(path: NameLike, body: readonly Term[]): ScopeTerm {
  return { kind: 'ThermalZone', name: toName(path), body };
}

export interface MethodOptions {
  readonly serialized?: boolean;
  readonly syncLevel?: number;
}

export function method(path: NameLike, argCount: number, body: readonly Term[], options: MethodOptions = {}): MethodTerm {
  if (!Number.isInteger(argCount) || argCount < 0 || argCount > 7) throw new AmlEncodeError(`method argument count ${argCount} (0-7)`);
  return { kind: 'Method', name: toName(path), argCount, serialized: options.serialized ?? false, syncLevel: options.syncLevel ?? 0, body };
}

export function external(path: NameLike, objectType: number, argCount = 0): ExternalTerm {
  return { kind: 'External', name: toName(path), objectType, argCount };
}

export function alias(source: NameLike, path: NameLike): AliasTerm {
  return { kind: 'Alias', source: toName(source), name: toName(path) };
}

export function mutex(path: NameLike, syncLevel = 0): MutexTerm {
  return { kind: 'Mutex', name: toName(path), syncFlags: syncLevel };
}

export function operationRegion(path: NameLike, space: number, offset: Value, length: Value): OperationRegionTerm {
  return { kind: 'OperationRegion', name: toName(path), space, offset: value(offset), length: value(length) };
}

/** Field access types and rules, for field() flags. */
export const FieldAccess = { Any: 0, Byte: 1, Word: 2, DWord: 3, QWord: 4, Buffer: 5 } as const;
export const FieldUpdate = { Preserve: 0, WriteAsOnes: 1, WriteAsZeros: 2 } as const;

export interface FieldOptions {
  readonly access?: number;
  readonly lock?: boolean;
  readonly update?: number;
}

/** Named fields as [name, bits]; `null` names reserve bits. */
export function field(region: NameLike, units: ReadonlyArray<readonly [string | null, number]>, options: FieldOptions = {}): FieldTerm {
  const flags = (options.access ?? FieldAccess.Any) | (options.lock === true ? 0x10 : 0) | ((options.update ?? FieldUpdate.Preserve) << 5);
  const elements: FieldElement[] = units.map(([n, bits]) =>
    n === null ? { kind: 'ReservedField', bits } : { kind: 'NamedField', name: toName(n).segs[0]!, bits },
  );
  return { kind: 'Field', region: toName(region), flags, elements };
}

function createSized(kind: CreateSizedFieldKind) {
  return (source: Value, index: Value, path: NameLike): CreateSizedFieldTerm => ({ kind, source: value(source), index: value(index), name: toName(path) });
}
export const createBitField = createSized('CreateBitField');
export const createByteField = createSized('CreateByteField');
export const createWordField = createSized('CreateWordField');
export const createDWordField = createSized('CreateDWordField');
export const createQWordField = createSized('CreateQWordField');

export function processor(path: NameLike, procId: number, pblkAddress: number, pblkLength: number, body: readonly Term[]): ProcessorTerm {
  return { kind: 'Processor', name: toName(path), procId, pblkAddress, pblkLength, body };
}

export function powerResource(path: NameLike, systemLevel: number, resourceOrder: number, body: readonly Term[]): PowerResourceTerm {
  return { kind: 'PowerResource', name: toName(path), systemLevel, resourceOrder, body };
}

// ---- control ----

/** If (predicate) { then } [Else { otherwise }]. */
export function ifElse(predicate: Value, then: readonly Term[], otherwise?: readonly Term[]): IfTerm {
  const t = { kind: 'If', predicate: value(predicate), body: then } as const;
  return otherwise === undefined ? t : { ...t, else: { body: otherwise } };
}

export function whileLoop(predicate: Value, body: readonly Term[]): WhileTerm {
  return { kind: 'While', predicate: value(predicate), body };
}

export function ret(v: Value = 0): UnaryTerm {
  return { kind: 'Return', operand: value(v) };
}

export const breakLoop: Term = { kind: 'Break' };
export const continueLoop: Term = { kind: 'Continue' };
export const noop: Term = { kind: 'Noop' };

export function notify(object: Value, code: Value): NotifyTerm {
  return { kind: 'Notify', object: value(object), value: value(code) };
}

export function sleep(ms: Value): UnaryTerm {
  return { kind: 'Sleep', operand: value(ms) };
}

// ---- expressions ----

function toTarget(t: Value | null | undefined): Target {
  return t === undefined || t === null ? null : value(t);
}

export function store(v: Value, target: Value): StoreTerm {
  return { kind: 'Store', value: value(v), target: value(target) };
}

function binary(kind: BinaryKind) {
  return (left: Value, right: Value, target?: Value | null): Term => ({ kind, left: value(left), right: value(right), target: toTarget(target) });
}
export const add = binary('Add');
export const subtract = binary('Subtract');
export const multiply = binary('Multiply');
export const and = binary('And');
export const or = binary('Or');
export const xor = binary('Xor');
export const shiftLeft = binary('ShiftLeft');
export const shiftRight = binary('ShiftRight');
export const mod = binary('Mod');
export const concatenate = binary('Concatenate');
export const index = binary('Index');

function logical(kind: LogicalTerm['kind']) {
  return (left: Value, right: Value): LogicalTerm => ({ kind, left: value(left), right: value(right) });
}
export const lAnd = logical('LAnd');
export const lOr = logical('LOr');
export const lEqual = logical('LEqual');
export const lGreater = logical('LGreater');
export const lLess = logical('LLess');

export function lNot(v: Value): UnaryTerm {
  return { kind: 'LNot', operand: value(v) };
}
export const lNotEqual = (a: Value, b: Value): UnaryTerm => lNot(lEqual(a, b));
export const lGreaterEqual = (a: Value, b: Value): UnaryTerm => lNot(lLess(a, b));
export const lLessEqual = (a: Value, b: Value): UnaryTerm => lNot(lGreater(a, b));

function unary(kind: UnaryTerm['kind']) {
  return (v: Value): UnaryTerm => ({ kind, operand: value(v) });
}
export const increment = unary('Increment');
export const decrement = unary('Decrement');
export const derefOf = unary('DerefOf');
export const refOf = unary('RefOf');
export const sizeOf = unary('SizeOf');
