import { AmlEncodeError } from './errors.js';
import { BINARY_OPS, CREATE_FIELD_OPS, LOGICAL_OPS, NULLARY_OPS, Op, UNARY_OPS, UNARY_TARGET_OPS } from './opcodes.js';
import { maxPkgValue, minimalPkgWidth, minimalValueWidth, writePkgLength } from './pkglength.js';
import type { BufferTerm, FieldElement, IfTerm, IntegerTerm, MethodTerm, NameString, PackageTerm, PkgLengthWidth, Target, Term } from './terms.js';

/**
 * Term tree to AML bytes. Parsed trees come back byte for byte: every encoding choice the
 * parser saw (PkgLength widths, integer widths, name forms) is in the tree. Hand-built trees
 * get the minimal encodings.
 */

export interface EncodeOptions {
  /** Deepest nesting accepted (a guard against cyclic or absurd hand-built trees). */
  readonly maxDepth?: number;
}

/** Encodes a term list (a table body, or any sequence of terms). */
export function encodeAml(terms: readonly Term[], options: EncodeOptions = {}): Uint8Array {
  const w = new Writer(options.maxDepth ?? 1024);
  w.list(terms);
  return w.result();
}

/** Encodes a single term. */
export function encodeTerm(term: Term, options: EncodeOptions = {}): Uint8Array {
  return encodeAml([term], options);
}

/** Encodes a name string on its own (e.g. for a world-view rule comparing paths as AML). */
export function encodeNameString(name: NameString): Uint8Array {
  const w = new Writer(1);
  w.name(name);
  return w.result();
}

const ALL_ONES = 0xffff_ffff_ffff_ffffn;
const INT_LIMIT: Record<IntegerTerm['enc'], bigint> = {
  zero: 0n,
  one: 1n,
  ones: ALL_ONES,
  byte: 0xffn,
  word: 0xffffn,
  dword: 0xffff_ffffn,
  qword: ALL_ONES,
};

function checkIndex(index: number, max: number, what: string): number {
  if (!Number.isInteger(index) || index < 0 || index > max) throw new AmlEncodeError(`${what}${index} does not exist`);
  return index;
}

// One scratch buffer for all encodes (they are synchronous and copy their result out), so a
// small table does not pay for zeroing a fresh 64 KiB.
let scratch: Uint8Array | undefined = new Uint8Array(1 << 16);

class Writer {
  buf: Uint8Array;
  len = 0;
  depth = 0;
  readonly maxDepth: number;

  constructor(maxDepth: number) {
    this.maxDepth = maxDepth;
    // Taken while in use, in case an encode ever runs inside another.
    this.buf = scratch ?? new Uint8Array(1 << 16);
    scratch = undefined;
  }

  result(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    scratch = this.buf;
    return out;
  }

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }

  op(code: number): void {
    if (code > 0xff) {
      this.ensure(2);
      this.buf[this.len++] = code >> 8;
      this.buf[this.len++] = code & 0xff;
    } else {
      this.u8(code);
    }
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf[this.len++] = v & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
  }

  u32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    b[this.len++] = v & 0xff;
    b[this.len++] = (v >>> 8) & 0xff;
    b[this.len++] = (v >>> 16) & 0xff;
    b[this.len++] = (v >>> 24) & 0xff;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  /**
   * Reserves one byte for a PkgLength; endPkg widens it once the body's length is known. Most
   * objects (Ifs, packages, small methods) fit one byte and need no move; a larger one moves
   * its body up by the extra bytes.
   */
  beginPkg(): number {
    this.ensure(1);
    return this.len++;
  }

  endPkg(at: number, hint: PkgLengthWidth | undefined): void {
    const bodyLength = this.len - (at + 1);
    const minimal = minimalPkgWidth(bodyLength);
    // A recorded wider width that no longer fits (the tree grew) yields to the minimal one.
    const width = hint !== undefined && hint > minimal && bodyLength + hint <= maxPkgValue(hint) ? hint : minimal;
    if (bodyLength + width > maxPkgValue(4)) throw new AmlEncodeError(`object of ${bodyLength} bytes is too large for a PkgLength`);
    if (width > 1) {
      const extra = width - 1;
      this.ensure(extra);
      this.buf.copyWithin(at + width, at + 1, this.len);
      this.len += extra;
    }
    writePkgLength(this.buf, at, bodyLength + width, width);
  }

  seg(seg: string): void {
    if (seg.length !== 4) throw new AmlEncodeError(`name segment "${seg}" is not 4 characters`);
    this.ensure(4);
    for (let i = 0; i < 4; i++) {
      const c = seg.charCodeAt(i);
      if (c > 0xff) throw new AmlEncodeError(`name segment "${seg}" has a non-byte character`);
      this.buf[this.len++] = c;
    }
  }

  name(n: NameString): void {
    if (n.root) this.u8(Op.RootChar);
    else for (let i = 0; i < n.parents; i++) this.u8(Op.ParentPrefixChar);
    const segs = n.segs;
    if (n.multi === true || segs.length > 2) {
      if (segs.length > 255) throw new AmlEncodeError(`name string of ${segs.length} segments (at most 255)`);
      this.u8(Op.MultiNamePrefix);
      this.u8(segs.length);
    } else if (segs.length === 0) {
      this.u8(0);
      return;
    } else if (segs.length === 2) {
      this.u8(Op.DualNamePrefix);
    }
    for (let i = 0; i < segs.length; i++) this.seg(segs[i]!);
  }

  integer(t: IntegerTerm): void {
    const v = t.value;
    const enc = t.enc;
    // Range checks on the Number conversion are exact for these widths (it is monotonic).
    const n = enc === 'byte' || enc === 'word' || enc === 'dword' ? Number(v) : 0;
    const ok =
      enc === 'byte' || enc === 'word' || enc === 'dword'
        ? n >= 0 && n <= (enc === 'byte' ? 0xff : enc === 'word' ? 0xffff : 0xffff_ffff)
        : enc === 'qword'
          ? v >= 0n && v <= ALL_ONES
          : v === INT_LIMIT[enc] || (enc === 'ones' && v === 0xffff_ffffn);
    if (!ok) throw new AmlEncodeError(`integer ${v} cannot be encoded as ${enc}`);
    switch (enc) {
      case 'zero':
        return this.u8(Op.Zero);
      case 'one':
        return this.u8(Op.One);
      case 'ones':
        return this.u8(Op.Ones);
      case 'byte':
        this.u8(Op.BytePrefix);
        return this.u8(n);
      case 'word':
        this.u8(Op.WordPrefix);
        return this.u16(n);
      case 'dword':
        this.u8(Op.DWordPrefix);
        return this.u32(n);
      case 'qword':
        this.u8(Op.QWordPrefix);
        this.u32(Number(v & 0xffff_ffffn));
        return this.u32(Number(v >> 32n));
    }
  }

  string(value: string): void {
    this.ensure(value.length + 2);
    this.buf[this.len++] = Op.StringPrefix;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0 || c > 0xff) throw new AmlEncodeError(`string has a character (0x${c.toString(16)}) AML cannot hold`);
      this.buf[this.len++] = c;
    }
    this.buf[this.len++] = 0;
  }

  target(t: Target): void {
    if (t === null) this.u8(0);
    else this.term(t);
  }

  list(terms: readonly Term[]): void {
    for (let i = 0; i < terms.length; i++) this.term(terms[i]!);
  }

  fieldElements(elements: readonly FieldElement[]): void {
    for (const e of elements) {
      switch (e.kind) {
        case 'NamedField':
          this.seg(e.name);
          this.fieldLength(e.bits, e.pkgLenBytes);
          break;
        case 'ReservedField':
          this.u8(0x00);
          this.fieldLength(e.bits, e.pkgLenBytes);
          break;
        case 'AccessAs':
          this.u8(0x01);
          this.u8(e.accessType);
          this.u8(e.attrib);
          break;
        case 'ExtendedAccessAs':
          this.u8(0x03);
          this.u8(e.accessType);
          this.u8(e.attrib);
          this.u8(e.length);
          break;
        case 'Connection':
          this.u8(0x02);
          this.name(e.name);
          break;
        case 'ConnectionBuffer':
          this.u8(0x02);
          this.term(e.buffer);
          break;
      }
    }
  }

  fieldLength(bits: number, hint: PkgLengthWidth | undefined): void {
    const minimal = minimalValueWidth(bits);
    const width = hint !== undefined && hint > minimal ? hint : minimal;
    if (bits > maxPkgValue(4)) throw new AmlEncodeError(`field of ${bits} bits is too wide`);
    this.ensure(width);
    writePkgLength(this.buf, this.len, bits, width);
    this.len += width;
  }

  ifTerm(t: IfTerm): void {
    this.u8(Op.If);
    const at = this.beginPkg();
    this.term(t.predicate);
    this.list(t.body);
    this.endPkg(at, t.pkgLenBytes);
    if (t.else !== undefined) {
      this.u8(Op.Else);
      const e = this.beginPkg();
      this.list(t.else.body);
      this.endPkg(e, t.else.pkgLenBytes);
    }
  }

  packageTerm(t: PackageTerm): void {
    if (t.count < 0 || t.count > 255) throw new AmlEncodeError(`Package count ${t.count} (use VarPackage above 255)`);
    this.u8(Op.Package);
    const at = this.beginPkg();
    this.u8(t.count);
    this.list(t.elements);
    this.endPkg(at, t.pkgLenBytes);
  }

  methodTerm(t: MethodTerm): void {
    if (t.argCount < 0 || t.argCount > 7 || t.syncLevel < 0 || t.syncLevel > 15) {
      throw new AmlEncodeError(`method ${t.name.segs.join('.')}: argCount 0-7 and syncLevel 0-15`);
    }
    this.u8(Op.Method);
    const at = this.beginPkg();
    this.name(t.name);
    this.u8(t.argCount | (t.serialized ? 8 : 0) | (t.syncLevel << 4));
    this.list(t.body);
    this.endPkg(at, t.pkgLenBytes);
  }

  bufferTerm(t: BufferTerm): void {
    this.u8(Op.Buffer);
    const at = this.beginPkg();
    this.term(t.size);
    this.bytes(t.data);
    this.endPkg(at, t.pkgLenBytes);
  }

  term(t: Term): void {
    // Leaves are half of all terms: write them without the general dispatch.
    const k = t.kind;
    if (k === 'Integer') {
      const v = t.value;
      switch (t.enc) {
        case 'zero':
          if (v === 0n) return this.u8(Op.Zero);
          break;
        case 'one':
          if (v === 1n) return this.u8(Op.One);
          break;
        case 'byte':
          if (v >= 0n && v <= 0xffn) {
            this.ensure(2);
            this.buf[this.len++] = Op.BytePrefix;
            this.buf[this.len++] = Number(v);
            return;
          }
          break;
        default:
          break;
      }
      return this.integer(t);
    }
    if (k === 'Local' || k === 'Arg') return this.termInner(t);
    if (k === 'NamePath') {
      const n = t.name;
      const segs = n.segs;
      if (segs.length === 1 && !n.root && n.parents === 0 && n.multi !== true) return this.seg(segs[0]!);
      return this.name(n);
    }
    if (++this.depth > this.maxDepth) throw new AmlEncodeError(`terms nested deeper than ${this.maxDepth} levels`);
    this.termInner(t);
    this.depth--;
  }

  termInner(t: Term): void {
    // The most frequent kinds first: a string switch is a chain of comparisons.
    const k = t.kind;
    if (k === 'Integer') return this.integer(t);
    if (k === 'NamePath') return this.name(t.name);
    if (k === 'Local') return this.u8(Op.Local0 + checkIndex(t.index, 7, 'Local'));
    if (k === 'Store') {
      this.u8(Op.Store);
      this.term(t.value);
      return this.target(t.target);
    }
    if (k === 'MethodCall') {
      this.name(t.name);
      return this.list(t.args);
    }
    if (k === 'Arg') return this.u8(Op.Arg0 + checkIndex(t.index, 6, 'Arg'));
    if (k === 'If') return this.ifTerm(t);
    if (k === 'Return' || k === 'DerefOf' || k === 'LNot') {
      this.u8(k === 'Return' ? Op.Return : k === 'DerefOf' ? Op.DerefOf : Op.LNot);
      return this.term(t.operand);
    }
    if (k === 'LEqual' || k === 'LAnd' || k === 'LOr' || k === 'LLess' || k === 'LGreater') {
      this.u8(LOGICAL_OPS[k]);
      this.term(t.left);
      return this.term(t.right);
    }
    if (k === 'Name') {
      this.u8(Op.Name);
      this.name(t.name);
      return this.term(t.value);
    }
    if (k === 'Package') return this.packageTerm(t);
    if (k === 'Method') return this.methodTerm(t);
    if (k === 'Index' || k === 'And' || k === 'Add' || k === 'Or') {
      this.u8(BINARY_OPS[k]);
      this.term(t.left);
      this.term(t.right);
      return this.target(t.target);
    }
    if (k === 'Buffer') return this.bufferTerm(t);
    if (k === 'String') return this.string(t.value);
    switch (t.kind) {
      case 'VarPackage': {
        this.u8(Op.VarPackage);
        const at = this.beginPkg();
        this.term(t.count);
        this.list(t.elements);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'Noop':
      case 'Break':
      case 'Continue':
      case 'BreakPoint':
      case 'Revision':
      case 'Debug':
      case 'Timer':
        return this.op(NULLARY_OPS[t.kind]);
      case 'Add':
      case 'And':
      case 'Or':
      case 'Index':
      case 'Concatenate':
      case 'Subtract':
      case 'Multiply':
      case 'ShiftLeft':
      case 'ShiftRight':
      case 'Nand':
      case 'Nor':
      case 'Xor':
      case 'Mod':
      case 'ConcatenateResTemplate':
        this.op(BINARY_OPS[t.kind]);
        this.term(t.left);
        this.term(t.right);
        return this.target(t.target);
      case 'Not':
      case 'FindSetLeftBit':
      case 'FindSetRightBit':
      case 'ToBuffer':
      case 'ToDecimalString':
      case 'ToHexString':
      case 'ToInteger':
      case 'FromBCD':
      case 'ToBCD':
        this.op(UNARY_TARGET_OPS[t.kind]);
        this.term(t.operand);
        return this.target(t.target);
      case 'LAnd':
      case 'LOr':
      case 'LEqual':
      case 'LGreater':
      case 'LLess':
        this.op(LOGICAL_OPS[t.kind]);
        this.term(t.left);
        return this.term(t.right);
      case 'LNot':
      case 'DerefOf':
      case 'Return':
      case 'RefOf':
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
        this.op(UNARY_OPS[t.kind]);
        return this.term(t.operand);
      case 'CopyObject':
        this.u8(Op.CopyObject);
        this.term(t.value);
        return this.target(t.target);
      case 'Divide':
        this.u8(Op.Divide);
        this.term(t.dividend);
        this.term(t.divisor);
        this.target(t.remainder);
        return this.target(t.quotient);
      case 'Match':
        this.u8(Op.Match);
        this.term(t.package);
        this.u8(t.op1);
        this.term(t.operand1);
        this.u8(t.op2);
        this.term(t.operand2);
        return this.term(t.start);
      case 'Mid':
        this.u8(Op.Mid);
        this.term(t.source);
        this.term(t.index);
        this.term(t.length);
        return this.target(t.target);
      case 'ToString':
        this.u8(Op.ToString);
        this.term(t.source);
        this.term(t.length);
        return this.target(t.target);
      case 'CondRefOf':
        this.op(0x5b00 | Op.CondRefOf);
        this.term(t.operand);
        return this.target(t.target);
      case 'Notify':
        this.u8(Op.Notify);
        this.term(t.object);
        return this.term(t.value);
      case 'Acquire':
        this.op(0x5b00 | Op.Acquire);
        this.term(t.mutex);
        return this.u16(t.timeout);
      case 'Wait':
        this.op(0x5b00 | Op.Wait);
        this.term(t.event);
        return this.term(t.timeout);
      case 'Fatal':
        this.op(0x5b00 | Op.Fatal);
        this.u8(t.type);
        this.u32(t.code);
        return this.term(t.arg);
      case 'Load':
        this.op(0x5b00 | Op.Load);
        this.name(t.name);
        return this.target(t.target);
      case 'LoadTable':
        this.op(0x5b00 | Op.LoadTable);
        this.term(t.signature);
        this.term(t.oemId);
        this.term(t.oemTableId);
        this.term(t.rootPath);
        this.term(t.parameterPath);
        return this.term(t.parameterData);
      case 'While': {
        this.u8(Op.While);
        const at = this.beginPkg();
        this.term(t.predicate);
        this.list(t.body);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'Alias':
        this.u8(Op.Alias);
        this.name(t.source);
        return this.name(t.name);
      case 'Scope':
      case 'Device':
      case 'ThermalZone': {
        this.op(t.kind === 'Scope' ? Op.Scope : t.kind === 'Device' ? 0x5b00 | Op.Device : 0x5b00 | Op.ThermalZone);
        const at = this.beginPkg();
        this.name(t.name);
        this.list(t.body);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'External':
        this.u8(Op.External);
        this.name(t.name);
        this.u8(t.objectType);
        return this.u8(t.argCount);
      case 'Mutex':
        this.op(0x5b00 | Op.Mutex);
        this.name(t.name);
        return this.u8(t.syncFlags);
      case 'Event':
        this.op(0x5b00 | Op.Event);
        return this.name(t.name);
      case 'OperationRegion':
        this.op(0x5b00 | Op.OpRegion);
        this.name(t.name);
        this.u8(t.space);
        this.term(t.offset);
        return this.term(t.length);
      case 'DataRegion':
        this.op(0x5b00 | Op.DataRegion);
        this.name(t.name);
        this.term(t.signature);
        this.term(t.oemId);
        return this.term(t.oemTableId);
      case 'Field': {
        this.op(0x5b00 | Op.Field);
        const at = this.beginPkg();
        this.name(t.region);
        this.u8(t.flags);
        this.fieldElements(t.elements);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'IndexField': {
        this.op(0x5b00 | Op.IndexField);
        const at = this.beginPkg();
        this.name(t.index);
        this.name(t.data);
        this.u8(t.flags);
        this.fieldElements(t.elements);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'BankField': {
        this.op(0x5b00 | Op.BankField);
        const at = this.beginPkg();
        this.name(t.region);
        this.name(t.bank);
        this.term(t.bankValue);
        this.u8(t.flags);
        this.fieldElements(t.elements);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'CreateBitField':
      case 'CreateByteField':
      case 'CreateWordField':
      case 'CreateDWordField':
      case 'CreateQWordField':
        this.u8(CREATE_FIELD_OPS[t.kind]);
        this.term(t.source);
        this.term(t.index);
        return this.name(t.name);
      case 'CreateField':
        this.op(0x5b00 | Op.CreateField);
        this.term(t.source);
        this.term(t.bitIndex);
        this.term(t.numBits);
        return this.name(t.name);
      case 'Processor': {
        this.op(0x5b00 | Op.Processor);
        const at = this.beginPkg();
        this.name(t.name);
        this.u8(t.procId);
        this.u32(t.pblkAddress);
        this.u8(t.pblkLength);
        this.list(t.body);
        return this.endPkg(at, t.pkgLenBytes);
      }
      case 'PowerResource': {
        this.op(0x5b00 | Op.PowerRes);
        const at = this.beginPkg();
        this.name(t.name);
        this.u8(t.systemLevel);
        this.u16(t.resourceOrder);
        this.list(t.body);
        return this.endPkg(at, t.pkgLenBytes);
      }
      default: {
        const never: never = t;
        throw new AmlEncodeError(`unknown term kind ${(never as { kind: string }).kind}`);
      }
    }
  }
}
