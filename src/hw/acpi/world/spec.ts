import * as b from '../aml/builder.js';
import { AmlEncodeError } from '../aml/errors.js';
import type { Term } from '../aml/terms.js';
import { ObjectType } from '../aml/terms.js';
import type { InterruptMode, Resource } from '../resources/types.js';

/**
 * AML as plain data, for rules files: the statements and values a method body, a device or a
 * whole SSDT is made of, written in YAML or JSON and turned into terms by `specStatements`.
 * It covers what rewrites usually need (devices with their identification and resources,
 * methods that return constants, stores, notifies, calls, conditions); anything else can be
 * compiled with iasl and given as an AML file instead.
 *
 * Values: a number (an integer), a string (a String literal), or one of
 * `{eisaId}`, `{ref}` (a name reference), `{call, args}`, `{package: [...]}`,
 * `{buffer: [bytes]}`, `{resources: [...]}`, `{arg: n}`, `{local: n}`, the operators
 * `{op: add|subtract|and|or|xor|shiftLeft|shiftRight|lEqual|lGreater|lLess|lAnd|lOr, args: [a, b]}`
 * and `{lNot: a}`.
 */

export type ValueSpec =
  | number
  | bigint
  | string
  | { readonly eisaId: string }
  | { readonly ref: string }
  | { readonly call: string; readonly args?: readonly ValueSpec[] }
  | { readonly package: readonly ValueSpec[] }
  | { readonly buffer: readonly number[] | Uint8Array }
  | { readonly resources: readonly ResourceSpec[] }
  | { readonly arg: number }
  | { readonly local: number }
  | { readonly op: BinaryOp; readonly args: readonly [ValueSpec, ValueSpec] }
  | { readonly lNot: ValueSpec };

export const BINARY_OPS = ['add', 'subtract', 'and', 'or', 'xor', 'shiftLeft', 'shiftRight', 'lEqual', 'lGreater', 'lLess', 'lAnd', 'lOr'] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export interface InterruptFlagsSpec {
  /** Edge triggered (default level for `interrupt`, edge for `irq` without flags). */
  readonly edge?: boolean;
  readonly activeLow?: boolean;
  readonly shared?: boolean;
}

export type ResourceSpec =
  | { readonly io: { readonly min: number; readonly max?: number; readonly alignment?: number; readonly length: number; readonly decode10?: boolean } }
  | { readonly fixedIo: { readonly base: number; readonly length: number } }
  | ({ readonly irq: readonly number[] } & InterruptFlagsSpec)
  | ({ readonly interrupt: readonly number[] } & InterruptFlagsSpec)
  | { readonly memory32Fixed: { readonly base: number; readonly length: number; readonly writable?: boolean } };

export type StatementSpec =
  | { readonly return: ValueSpec }
  | { readonly store: ValueSpec; readonly to: ValueSpec }
  | { readonly notify: string; readonly value: number }
  | { readonly if: ValueSpec; readonly then: readonly StatementSpec[]; readonly else?: readonly StatementSpec[] }
  | { readonly call: string; readonly args?: readonly ValueSpec[] }
  | { readonly sleep: number }
  | { readonly name: string; readonly value: ValueSpec }
  | { readonly method: string; readonly args?: number; readonly serialized?: boolean; readonly body: readonly StatementSpec[] }
  | DeviceSpec
  | { readonly scope: string; readonly body: readonly StatementSpec[] }
  | { readonly external: string; readonly type: ExternalType; readonly args?: number };

/** A device with the objects most devices have, then anything else in `body`. */
export interface DeviceSpec {
  readonly device: string;
  readonly hid?: string;
  readonly cid?: string | readonly string[];
  readonly uid?: number | string;
  readonly adr?: number;
  /** `_STA` as a constant (0x0F: present, enabled, shown, functioning). */
  readonly sta?: number;
  readonly crs?: readonly ResourceSpec[];
  readonly body?: readonly StatementSpec[];
}

export const EXTERNAL_TYPES = {
  any: ObjectType.Any,
  int: ObjectType.Integer,
  string: ObjectType.String,
  buffer: ObjectType.Buffer,
  package: ObjectType.Package,
  field: ObjectType.FieldUnit,
  device: ObjectType.Device,
  event: ObjectType.Event,
  method: ObjectType.Method,
  mutex: ObjectType.Mutex,
  region: ObjectType.OperationRegion,
  power: ObjectType.PowerResource,
  processor: ObjectType.Processor,
  thermal: ObjectType.ThermalZone,
} as const;
export type ExternalType = keyof typeof EXTERNAL_TYPES;

/** A spec that cannot be turned into AML; `at` is the path inside the spec (`body[2].return`). */
export class AmlSpecError extends AmlEncodeError {
  readonly specPath: string;
  constructor(message: string, specPath: string) {
    super(message, specPath);
    this.specPath = specPath;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);
}

/** An _HID/_CID value: EISA ids (`PNP0A08`) as EisaId integers, other ids (`ACPI0007`, `HVM0001`) as strings. */
export function idValue(id: string): Term {
  return /^[A-Z]{3}[0-9A-F]{4}$/.test(id) ? b.eisaId(id) : b.str(id);
}

function wrap<T>(at: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AmlSpecError) throw err;
    if (err instanceof AmlEncodeError) throw new AmlSpecError(err.message.replace(/^AML: /, ''), at);
    throw err;
  }
}

export function specValue(v: ValueSpec, at: string): Term {
  if (typeof v === 'number' || typeof v === 'bigint') return wrap(at, () => b.int(v));
  if (typeof v === 'string') return b.str(v);
  if (!isObject(v)) throw new AmlSpecError('not a value', at);
  if ('eisaId' in v) return wrap(at, () => b.eisaId(v.eisaId));
  if ('ref' in v) return wrap(at, () => b.ref(v.ref));
  if ('call' in v) return wrap(at, () => b.call(v.call, ...(v.args ?? []).map((a, i) => specValue(a, `${at}.args[${i}]`))));
  if ('package' in v) return b.pkg(...v.package.map((e, i) => specValue(e, `${at}.package[${i}]`)));
  if ('buffer' in v) return b.buffer(v.buffer instanceof Uint8Array ? v.buffer : Uint8Array.from(v.buffer));
  if ('resources' in v) return wrap(at, () => b.resourceTemplate(v.resources.map((r, i) => specResource(r, `${at}.resources[${i}]`))));
  if ('arg' in v) return wrap(at, () => b.arg(v.arg));
  if ('local' in v) return wrap(at, () => b.local(v.local));
  if ('lNot' in v) return b.lNot(specValue(v.lNot, `${at}.lNot`));
  if ('op' in v) {
    const [l, r] = [specValue(v.args[0], `${at}.args[0]`), specValue(v.args[1], `${at}.args[1]`)];
    switch (v.op) {
      case 'add':
        return b.add(l, r);
      case 'subtract':
        return b.subtract(l, r);
      case 'and':
        return b.and(l, r);
      case 'or':
        return b.or(l, r);
      case 'xor':
        return b.xor(l, r);
      case 'shiftLeft':
        return b.shiftLeft(l, r);
      case 'shiftRight':
        return b.shiftRight(l, r);
      case 'lEqual':
        return b.lEqual(l, r);
      case 'lGreater':
        return b.lGreater(l, r);
      case 'lLess':
        return b.lLess(l, r);
      case 'lAnd':
        return b.lAnd(l, r);
      case 'lOr':
        return b.lOr(l, r);
    }
  }
  throw new AmlSpecError('not a value', at);
}

function mode(s: InterruptFlagsSpec, edgeDefault: boolean, lowDefault: boolean): InterruptMode {
  return { edge: s.edge ?? edgeDefault, activeLow: s.activeLow ?? lowDefault, shared: s.shared ?? false, wake: false };
}

export function specResource(r: ResourceSpec, at: string): Resource {
  if ('io' in r) {
    const io = r.io;
    const max = io.max ?? io.min;
    if (max < io.min) throw new AmlSpecError('max is below min', `${at}.io.max`);
    return { type: 'Io', decode16: io.decode10 !== true, min: io.min, max, alignment: io.alignment ?? 1, length: io.length };
  }
  if ('fixedIo' in r) return { type: 'FixedIo', base: r.fixedIo.base, length: r.fixedIo.length };
  if ('irq' in r) {
    const flagged = r.edge !== undefined || r.activeLow !== undefined || r.shared !== undefined;
    if (r.irq.some((n) => n > 15)) throw new AmlSpecError('IRQ descriptors hold ISA IRQs 0-15 (use interrupt for GSIs)', `${at}.irq`);
    return flagged ? { type: 'Irq', interrupts: r.irq, mode: mode(r, true, false) } : { type: 'Irq', interrupts: r.irq };
  }
  if ('interrupt' in r) return { type: 'ExtendedInterrupt', producer: false, mode: mode(r, false, false), interrupts: r.interrupt };
  return { type: 'FixedMemory32', writable: r.memory32Fixed.writable ?? true, base: r.memory32Fixed.base, length: r.memory32Fixed.length };
}

function deviceTerms(d: DeviceSpec, at: string): Term[] {
  const out: Term[] = [];
  if (d.hid !== undefined) out.push(wrap(`${at}.hid`, () => b.name('_HID', idValue(d.hid!))));
  if (d.cid !== undefined) {
    const cids = typeof d.cid === 'string' ? [d.cid] : d.cid;
    out.push(wrap(`${at}.cid`, () => b.name('_CID', cids.length === 1 ? idValue(cids[0]!) : b.pkg(...cids.map(idValue)))));
  }
  if (d.uid !== undefined) out.push(wrap(`${at}.uid`, () => b.name('_UID', d.uid!)));
  if (d.adr !== undefined) out.push(wrap(`${at}.adr`, () => b.name('_ADR', d.adr!)));
  if (d.sta !== undefined) out.push(wrap(`${at}.sta`, () => b.method('_STA', 0, [b.ret(d.sta!)])));
  if (d.crs !== undefined) out.push(wrap(`${at}.crs`, () => b.name('_CRS', b.resourceTemplate(d.crs!.map((r, i) => specResource(r, `${at}.crs[${i}]`))))));
  out.push(...specStatements(d.body ?? [], `${at}.body`));
  return out;
}

export function specStatement(s: StatementSpec, at: string): Term {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new AmlSpecError('not a statement', at);
  if ('return' in s) return b.ret(specValue(s.return, `${at}.return`));
  if ('store' in s) return b.store(specValue(s.store, `${at}.store`), specValue(s.to, `${at}.to`));
  if ('notify' in s) return wrap(at, () => b.notify(b.ref(s.notify), s.value));
  if ('if' in s) {
    const then = specStatements(s.then, `${at}.then`);
    return b.ifElse(specValue(s.if, `${at}.if`), then, s.else === undefined ? undefined : specStatements(s.else, `${at}.else`));
  }
  if ('call' in s) return wrap(at, () => b.call(s.call, ...(s.args ?? []).map((a, i) => specValue(a, `${at}.args[${i}]`))));
  if ('sleep' in s) return b.sleep(s.sleep);
  if ('method' in s) {
    return wrap(`${at}.method`, () => b.method(s.method, s.args ?? 0, specStatements(s.body, `${at}.body`), { serialized: s.serialized ?? false }));
  }
  if ('device' in s) return wrap(`${at}.device`, () => b.device(s.device, deviceTerms(s, at)));
  if ('scope' in s) return wrap(`${at}.scope`, () => b.scope(s.scope, specStatements(s.body, `${at}.body`)));
  if ('external' in s) return wrap(`${at}.external`, () => b.external(s.external, EXTERNAL_TYPES[s.type], s.args ?? 0));
  if ('name' in s) return wrap(`${at}.name`, () => b.name(s.name, specValue(s.value, `${at}.value`)));
  throw new AmlSpecError('not a statement', at);
}

/** Turns a list of statement specs into terms; errors name the place in the spec (`body[2].return`). */
export function specStatements(list: readonly StatementSpec[], at: string): Term[] {
  return list.map((s, i) => specStatement(s, `${at}[${i}]`));
}
