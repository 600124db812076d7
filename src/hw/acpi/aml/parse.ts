import { DeclarationIndex, type DeclKind, type DeclNode } from './declarations.js';
import { AmlDepthError, AmlParseError } from './errors.js';
import { formatName } from './names.js';
import { editTermLists } from './walk.js';
import { isLeadNameChar, Op } from './opcodes.js';
import { minimalPkgWidth, minimalValueWidth } from './pkglength.js';
import type {
  BinaryKind,
  BufferTerm,
  CreateSizedFieldKind,
  FieldElement,
  IntegerTerm,
  LogicalKind,
  NameString,
  NullaryKind,
  PkgLengthWidth,
  Target,
  Term,
  UnaryKind,
  UnaryTargetKind,
} from './terms.js';

/**
 * AML bytes to a term tree. Two passes, as ACPICA's disassembler does: the first walks every
 * table skipping method bodies (and package/buffer contents) to learn which names are methods
 * and their argument counts; the second parses everything, deciding for each name in a
 * TermArg position whether it is a reference or a call, and how many arguments follow.
 *
 * Names the second pass cannot resolve are parsed as references (a call with zero arguments
 * encodes identically), and listed in `AmlTree.unresolved` with their offsets; one standing
 * alone as a statement is taken as a call with the value-like terms after it as arguments,
 * as iasl does (see termList). If an unresolved name is really a method taking arguments in a
 * table that was not supplied, the terms after it are misread (the bytes still re-encode
 * exactly), so callers should pass every table of a machine together (parseAmlTables).
 */

export interface ParseOptions {
  /** Names the input in errors: a signature (DSDT, SSDT3) or a file. */
  readonly table?: string;
  /** Added to offsets in errors and `unresolved`: 36 when `body` follows a table header. */
  readonly baseOffset?: number;
  /** Deepest term nesting accepted before AmlDepthError (default 256; real tables use < 40). */
  readonly maxDepth?: number;
  /** Methods and objects known from other tables (see parseAmlTables). */
  readonly declarations?: DeclarationIndex;
}

export interface AmlInput {
  readonly body: Uint8Array;
  readonly table: string;
  readonly baseOffset?: number;
}

/** A name in a position where it could have been a call, found in no supplied table. */
export interface UnresolvedName {
  readonly name: string;
  /** The scope it was used in, `\_SB_.PCI0.LPCB`. */
  readonly scope: string;
  readonly offset: number;
  /** Set when the name stood alone as a statement and was parsed as a call with this many arguments. */
  readonly guessedArgs?: number;
}

export interface AmlTree {
  readonly table: string;
  readonly baseOffset: number;
  readonly terms: readonly Term[];
  readonly unresolved: readonly UnresolvedName[];
}

export const DEFAULT_MAX_DEPTH = 256;

/** Parses one table's AML (the bytes after its 36-byte header). */
export function parseAml(body: Uint8Array, options: ParseOptions = {}): AmlTree {
  const index = options.declarations ?? new DeclarationIndex();
  collectDeclarations(index, body, options);
  return parseBody(index, body, options);
}

/**
 * Parses several tables of one machine (DSDT and its SSDTs) against one shared index, so a
 * call from one table to a method declared in another is parsed with the right arguments.
 */
export function parseAmlTables(tables: readonly AmlInput[], options: Omit<ParseOptions, 'table' | 'baseOffset'> = {}): AmlTree[] {
  const index = options.declarations ?? new DeclarationIndex();
  for (const t of tables) collectDeclarations(index, t.body, { ...options, ...t });
  return tables.map((t) => parseBody(index, t.body, { ...options, ...t }));
}

/**
 * First pass only: records `body`'s declarations in `index`. It never throws on bad AML: a
 * block it cannot parse is skipped, and the second pass reports the error properly. It runs
 * again while a rerun can learn more (a call before its method's declaration at table level).
 */
export function collectDeclarations(index: DeclarationIndex, body: Uint8Array, options: ParseOptions = {}): void {
  if (index.collected.has(body)) return;
  index.collected.add(body);
  let failures = Infinity;
  for (let round = 0; round < 3; round++) {
    const p = new Parser(body, options, index, true);
    p.topLevel();
    if (p.skippedBlocks === 0 || p.skippedBlocks >= failures) break;
    failures = p.skippedBlocks;
  }
}

function lastSegOf(formatted: string): string {
  const dot = formatted.lastIndexOf('.');
  return formatted.slice(dot + 1).replace(/^[\\^]+/, '');
}

function parseBody(index: DeclarationIndex, body: Uint8Array, options: ParseOptions): AmlTree {
  const first = new Parser(body, options, index, false);
  const terms = first.topLevel();
  const firstTree = { table: first.table, baseOffset: first.base, terms, unresolved: first.unresolved };
  if (first.guesses.length === 0) return firstTree;
  // As iasl does: treat the guesses as External declarations and parse again, so every other
  // use of the same name reads the same argument count. The guesses hold for this table
  // only, and if another use contradicts one (the reparse fails), the first parse stands.
  //
  // Only uses of a guessed name can parse differently (a guess declares a name nothing else
  // resolved to, and the scopes on its path, which names under them may now reach), and a
  // method's body is bounded by its PkgLength: so when every such use is inside a method
  // body, only those methods are parsed again.
  const guessed = new Set(first.guesses.flatMap((g) => g.name.segs));
  const affected = first.unresolved.filter((u) => u.guessedArgs === undefined && guessed.has(lastSegOf(u.name)));
  if (affected.length === 0) return firstTree;
  const methods = first.methods;
  const methodAt = (offset: number): Parser['methods'][number] | undefined => {
    let lo = 0;
    let hi = methods.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = methods[mid]!;
      if (offset < m.start) hi = mid - 1;
      else if (offset >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  };
  const targets = new Set<Parser['methods'][number]>();
  let whole = false;
  for (const u of affected) {
    const m = methodAt(u.offset - first.base);
    if (m === undefined) whole = true;
    else targets.add(m);
  }
  const undo = first.guesses.map((g) => index.declareTentatively(g.scope, g.name, { kind: 'guess', argCount: g.argCount }));
  try {
    if (whole) {
      const again = new Parser(body, options, index, false);
      return { table: again.table, baseOffset: again.base, terms: again.topLevel(), unresolved: again.unresolved };
    }
    const replace = new Map<Term, Term>();
    const fresh: UnresolvedName[] = [];
    for (const m of targets) {
      const p = new Parser(body, options, index, false);
      p.pos = m.start + 1;
      p.scope = m.scope;
      replace.set(m.term, p.method());
      fresh.push(...p.unresolved);
    }
    const inTarget = (u: UnresolvedName): boolean => {
      const m = methodAt(u.offset - first.base);
      return m !== undefined && targets.has(m);
    };
    const unresolved = [...first.unresolved.filter((u) => !inTarget(u)), ...fresh].sort((a, b) => a.offset - b.offset);
    return { table: first.table, baseOffset: first.base, terms: editTermLists(terms, (t) => replace.get(t) ?? t), unresolved };
  } catch (err) {
    if (!(err instanceof AmlParseError)) throw err;
    return firstTree;
  } finally {
    for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
  }
}

/** Adds the PkgLength width the original used when it was longer than needed (`w` > 0). */
function withWidth<T extends object>(t: T, w: number): T {
  return w === 0 ? t : { ...t, pkgLenBytes: w as PkgLengthWidth };
}

/**
 * Terms that ACPICA's disassembler takes as arguments of an unknown method called as a
 * statement: data, locals and args, names, calls, RefOf, and operators with no target.
 */
function isArgLike(t: Term): boolean {
  switch (t.kind) {
    case 'Integer':
    case 'String':
    case 'Local':
    case 'Arg':
    case 'NamePath':
    case 'MethodCall':
    case 'RefOf':
      return true;
    case 'Divide':
      return t.remainder === null || t.quotient === null;
    default:
      return 'target' in t && t.kind !== 'Store' && t.kind !== 'CopyObject' && t.kind !== 'Load' && t.target === null;
  }
}

// ---- shared constant terms (allocation-light: these occur tens of thousands of times) ----

const NO_TERMS: readonly Term[] = Object.freeze([]);
const NO_SEGS: readonly string[] = Object.freeze([]);
const ALL_ONES = 0xffff_ffff_ffff_ffffn;
const ZERO: IntegerTerm = Object.freeze({ kind: 'Integer', value: 0n, enc: 'zero' });
const ONE: IntegerTerm = Object.freeze({ kind: 'Integer', value: 1n, enc: 'one' });
const ONES: IntegerTerm = Object.freeze({ kind: 'Integer', value: ALL_ONES, enc: 'ones' });
const BYTES: readonly IntegerTerm[] = Array.from({ length: 256 }, (_, i) =>
  Object.freeze({ kind: 'Integer', value: BigInt(i), enc: 'byte' } as const),
);
const LOCALS: readonly Term[] = Array.from({ length: 8 }, (_, index) => Object.freeze({ kind: 'Local', index } as const));
const ARGS: readonly Term[] = Array.from({ length: 7 }, (_, index) => Object.freeze({ kind: 'Arg', index } as const));
const NULLARY = new Map<NullaryKind, Term>(
  (['Noop', 'Break', 'Continue', 'BreakPoint', 'Revision', 'Debug', 'Timer'] as const).map((k) => [k, Object.freeze({ kind: k })]),
);
function nullary(kind: NullaryKind): Term {
  return NULLARY.get(kind)!;
}

const BINARY_BY_OP: Partial<Record<number, BinaryKind>> = {
  0x72: 'Add',
  0x73: 'Concatenate',
  0x74: 'Subtract',
  0x77: 'Multiply',
  0x79: 'ShiftLeft',
  0x7a: 'ShiftRight',
  0x7b: 'And',
  0x7c: 'Nand',
  0x7d: 'Or',
  0x7e: 'Nor',
  0x7f: 'Xor',
  0x84: 'ConcatenateResTemplate',
  0x85: 'Mod',
  0x88: 'Index',
};
const UNARY_TARGET_BY_OP: Partial<Record<number, UnaryTargetKind>> = {
  0x80: 'Not',
  0x81: 'FindSetLeftBit',
  0x82: 'FindSetRightBit',
  0x96: 'ToBuffer',
  0x97: 'ToDecimalString',
  0x98: 'ToHexString',
  0x99: 'ToInteger',
};
const LOGICAL_BY_OP: Partial<Record<number, LogicalKind>> = {
  0x90: 'LAnd',
  0x91: 'LOr',
  0x93: 'LEqual',
  0x94: 'LGreater',
  0x95: 'LLess',
};
const CREATE_BY_OP: Partial<Record<number, CreateSizedFieldKind>> = {
  0x8a: 'CreateDWordField',
  0x8b: 'CreateWordField',
  0x8c: 'CreateByteField',
  0x8d: 'CreateBitField',
  0x8f: 'CreateQWordField',
};

// NameSegs repeat endlessly (_SB_, PCI0, Local names): intern each one, together with the
// NameString, reference and zero-argument call a lone segment makes, keyed by its bytes.
interface SegEntry {
  readonly seg: string;
  readonly name: NameString;
  readonly ref: Term;
  readonly call0: Term;
}
// 7 bits per character keeps the key a small integer (cheap Map key); other bytes go to a
// second map keyed by all 32 bits. In front of the map, a direct-mapped table by a hash of
// the key answers most lookups with two array reads (the map's own hashing was the parser's
// hottest line).
const asciiSegs = new Map<number, SegEntry>();
const otherSegs = new Map<number, SegEntry>();
const SLOT_BITS = 12;
const slotKeys = new Int32Array(1 << SLOT_BITS).fill(-1);
const slotEntries: (SegEntry | undefined)[] = new Array<SegEntry | undefined>(1 << SLOT_BITS).fill(undefined);
function newEntry(c0: number, c1: number, c2: number, c3: number): SegEntry {
  const seg = String.fromCharCode(c0, c1, c2, c3);
  const name: NameString = Object.freeze({ root: false, parents: 0, segs: Object.freeze([seg]) });
  return { seg, name, ref: Object.freeze({ kind: 'NamePath', name }), call0: Object.freeze({ kind: 'MethodCall', name, args: NO_TERMS }) };
}
function segEntry(b: Uint8Array, p: number): SegEntry {
  const c0 = b[p]!;
  const c1 = b[p + 1]!;
  const c2 = b[p + 2]!;
  const c3 = b[p + 3]!;
  if (((c0 | c1 | c2 | c3) & 0x80) === 0) {
    const key = (c0 << 21) | (c1 << 14) | (c2 << 7) | c3;
    const slot = Math.imul(key, 0x9e3779b1) >>> (32 - SLOT_BITS);
    if (slotKeys[slot] === key) return slotEntries[slot]!;
    let e = asciiSegs.get(key);
    if (e === undefined) {
      e = newEntry(c0, c1, c2, c3);
      if (asciiSegs.size >= 1 << 16) asciiSegs.clear();
      asciiSegs.set(key, e);
    }
    slotKeys[slot] = key;
    slotEntries[slot] = e;
    return e;
  }
  const key = (c0 | (c1 << 8) | (c2 << 16) | (c3 << 24)) >>> 0;
  let e = otherSegs.get(key);
  if (e === undefined) {
    e = newEntry(c0, c1, c2, c3);
    if (otherSegs.size >= 1 << 16) otherSegs.clear();
    otherSegs.set(key, e);
  }
  return e;
}
// Word and DWord constants repeat too (_PRT addresses, _ADR values, region offsets), and a
// BigInt made from a number is a runtime call: share one term per value.
const words = new Map<number, IntegerTerm>();
const dwords = new Map<number, IntegerTerm>();
function wordTerm(v: number): IntegerTerm {
  let t = words.get(v);
  if (t === undefined) {
    t = Object.freeze({ kind: 'Integer', value: BigInt(v), enc: 'word' } as const);
    words.set(v, t);
  }
  return t;
}
function dwordTerm(v: number): IntegerTerm {
  let t = dwords.get(v);
  if (t === undefined) {
    t = Object.freeze({ kind: 'Integer', value: BigInt(v), enc: 'dword' } as const);
    if (dwords.size >= 1 << 16) dwords.clear();
    dwords.set(v, t);
  }
  return t;
}

function segAt(b: Uint8Array, p: number): string {
  return segEntry(b, p).seg;
}

function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let p = start; p < end; p += 4096) {
    // apply() takes the typed array as it is (spreading it would build an array first).
    s += String.fromCharCode.apply(null, b.subarray(p, Math.min(end, p + 4096)) as unknown as number[]);
  }
  return s;
}

class Parser {
  readonly b: Uint8Array;
  readonly table: string;
  readonly base: number;
  readonly maxDepth: number;
  readonly index: DeclarationIndex;
  /** First pass: register declarations, skip method bodies and data, tolerate errors. */
  readonly declareOnly: boolean;
  readonly unresolved: UnresolvedName[] = [];
  skippedBlocks = 0;
  pos = 0;
  end: number;
  depth = 0;
  scope: DeclNode;
  /** Scratch space for the lists being built (see termList); `sp` is its top. */
  readonly stack: Term[] = [];
  sp = 0;
  /** The last name found in no table, so termList can tell a statement-level one. */
  lastUnresolved: Term | undefined;
  /** Its index in `unresolved`. */
  lastUnresolvedAt = -1;
  /** Argument counts guessed for unknown names used as statements. */
  readonly guesses: { scope: DeclNode; name: NameString; argCount: number }[] = [];
  /** Method bodies being parsed (second pass): declarations there are new to the index. */
  methodDepth = 0;
  /** Width in bytes of the PkgLength pkgLength() read last. */
  encodedWidth = 1;
  /** The enclosing objects' ends, saved by open(). */
  readonly ends: number[] = [];
  /** Width of the PkgLength just read when it was longer than needed, else 0. */
  pkgWidth = 0;
  /** Scope-opening declarations' index nodes by offset, shared by the passes over this body. */
  readonly known: Map<number, DeclNode>;
  /** Table-level methods as parsed (second pass), in offset order: a guess reparses only those it touches. */
  readonly methods: { readonly start: number; readonly end: number; readonly scope: DeclNode; readonly term: Term }[] = [];

  constructor(body: Uint8Array, options: ParseOptions, index: DeclarationIndex, declareOnly: boolean) {
    this.b = body;
    this.end = body.length;
    this.table = options.table ?? 'AML';
    this.base = options.baseOffset ?? 0;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.index = index;
    this.scope = index.root;
    this.declareOnly = declareOnly;
    this.known = index.nodesAt(body);
  }

  /** Leaf declarations outside methods were all recorded by the first pass. */
  declaring(): boolean {
    return this.declareOnly || this.methodDepth > 0;
  }

  fail(message: string, at: number = this.pos): AmlParseError {
    return new AmlParseError(message, this.table, this.base + at);
  }

  topLevel(): Term[] {
    if (!this.declareOnly) return this.termList(this.b.length);
    try {
      return this.termList(this.b.length);
    } catch (err) {
      if (!(err instanceof AmlParseError)) throw err;
      this.skippedBlocks++;
      return [];
    }
  }

  // ---- primitive reads ----

  need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw this.fail(`truncated ${what}: needs ${n} byte(s), ${Math.max(0, this.end - this.pos)} left in the enclosing object`);
    }
  }

  u8(what: string): number {
    if (this.pos >= this.end) this.need(1, what);
    return this.b[this.pos++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const b = this.b;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  u32(what: string): number {
    this.need(4, what);
    const b = this.b;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /**
   * Reads a PkgLength and bounds parsing to the object it measures until close(); returns
   * the object's end (pkgWidth says how the length was written).
   */
  open(): number {
    const end = this.pkgEnd();
    this.ends.push(this.end);
    this.end = end;
    return end;
  }

  close(): void {
    this.end = this.ends.pop()!;
  }

  /** Decodes a PkgLength's value; `encodedWidth` is left holding its width in bytes. */
  pkgLength(what: string): number {
    const start = this.pos;
    const lead = this.u8(what);
    const extra = lead >> 6;
    this.encodedWidth = extra + 1;
    if (extra === 0) return lead & 0x3f;
    if ((lead & 0x30) !== 0) throw this.fail(`${what} lead byte 0x${lead.toString(16)} has reserved bits 4-5 set`, start);
    this.need(extra, what);
    let value = lead & 0x0f;
    for (let i = 0; i < extra; i++) value |= this.b[this.pos + i]! << (4 + 8 * i);
    this.pos += extra;
    return value;
  }

  /** Reads a PkgLength; returns the absolute end of the object it measures. */
  pkgEnd(): number {
    const start = this.pos;
    const len = this.pkgLength('PkgLength');
    const width = this.encodedWidth;
    if (len < width) throw this.fail(`PkgLength ${len} is shorter than its own ${width}-byte encoding`, start);
    const end = start + len;
    if (end > this.end) {
      throw this.fail(`PkgLength ${len} runs past the end of the enclosing object (${this.end - start} bytes left)`, start);
    }
    this.pkgWidth = width === minimalPkgWidth(len - width) ? 0 : width;
    return end;
  }

  /** A PkgLength used as a plain number (field widths): not a length of following bytes. */
  pkgValue(): number {
    const value = this.pkgLength('field length');
    this.pkgWidth = this.encodedWidth === minimalValueWidth(value) ? 0 : this.encodedWidth;
    return value;
  }

  nameString(): NameString {
    const b = this.b;
    const end = this.end;
    const start = this.pos;
    let p = start;
    let root = false;
    let parents = 0;
    if (p < end && b[p] === Op.RootChar) {
      root = true;
      p++;
    } else {
      while (p < end && b[p] === Op.ParentPrefixChar) {
        parents++;
        p++;
      }
    }
    if (p >= end) throw this.fail('truncated name string', start);
    const c = b[p]!;
    let segs: readonly string[];
    let multi = false;
    if (c === 0x00) {
      p++;
      segs = NO_SEGS;
    } else if (c === Op.DualNamePrefix) {
      if (p + 9 > end) throw this.fail('truncated dual name path', start);
      segs = [segAt(b, p + 1), segAt(b, p + 5)];
      p += 9;
    } else if (c === Op.MultiNamePrefix) {
      if (p + 2 > end) throw this.fail('truncated multi name path', start);
      const n = b[p + 1]!;
      if (p + 2 + 4 * n > end) throw this.fail(`truncated multi name path of ${n} segments`, start);
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(segAt(b, p + 2 + 4 * i));
      segs = out;
      multi = n <= 2;
      p += 2 + 4 * n;
    } else if (isLeadNameChar(c)) {
      if (p + 4 > end) throw this.fail('truncated name segment', start);
      if (!root && parents === 0) {
        this.pos = p + 4;
        return segEntry(b, p).name;
      }
      segs = [segAt(b, p)];
      p += 4;
    } else {
      throw this.fail(`invalid name string: byte 0x${c.toString(16)} where a name segment was expected`, p);
    }
    this.pos = p;
    return multi ? { root, parents, segs, multi: true } : { root, parents, segs };
  }

  // ---- term positions ----

  termList(end: number): Term[] {
    const saveEnd = this.end;
    this.end = end;
    if (this.declareOnly) {
      // The first pass wants the declarations the terms make, not the lists.
      while (this.pos < end) this.term(true);
      this.end = saveEnd;
      return NO_TERMS as Term[];
    }
    // Terms collect on a shared stack and leave it as one exact-size array: fewer and smaller
    // allocations than growing an array per list.
    const stack = this.stack;
    const base = this.sp;
    let next: Term | undefined;
    while (next !== undefined || this.pos < end) {
      const t = next ?? this.term(true);
      next = undefined;
      if (t !== this.lastUnresolved || t.kind !== 'NamePath') {
        stack[this.sp++] = t;
        continue;
      }
      // An unknown name standing alone as a statement can only be a call (a bare reference
      // does nothing). Like ACPICA's disassembler, take the value-like terms after it as its
      // arguments: a value on its own as a statement would do nothing either.
      const entry = this.lastUnresolvedAt;
      const args: Term[] = [];
      while (args.length < 7 && this.pos < end) {
        const u = this.term(true);
        if (!isArgLike(u)) {
          next = u;
          break;
        }
        args.push(u);
      }
      this.guesses.push({ scope: this.scope, name: t.name, argCount: args.length });
      const u = this.unresolved[entry];
      if (u !== undefined) this.unresolved[entry] = { ...u, guessedArgs: args.length };
      stack[this.sp++] = { kind: 'MethodCall', name: t.name, args };
    }
    this.end = saveEnd;
    // The top moves back without truncating the array (a builtin call per list); slots above
    // it are overwritten by the next list.
    const out = stack.slice(base, this.sp);
    this.sp = base;
    return out;
  }

  /**
   * A PkgLength-bounded body. In the first pass a body that fails to parse is skipped whole
   * (its end is known), so one misread call loses only that block's declarations.
   */
  body(end: number): readonly Term[] {
    if (!this.declareOnly) return this.termList(end);
    return this.guarded(end, () => this.termList(end)) ?? NO_TERMS;
  }


  /** TermArg / SuperName: a name here may be a method call. */
  arg(): Term {
    return this.term(true);
  }

  /** SimpleName and data positions (package elements, Name values): names are references. */
  ref(): Term {
    return this.term(false);
  }

  /** Target: 0x00 is the NullName (no destination). */
  target(): Target {
    if (this.pos < this.end && this.b[this.pos] === 0) {
      this.pos++;
      return null;
    }
    return this.term(true);
  }

  /** A SimpleName target (CopyObject, CondRefOf): names are references. */
  simpleTarget(): Target {
    if (this.pos < this.end && this.b[this.pos] === 0) {
      this.pos++;
      return null;
    }
    return this.term(false);
  }

  term(allowCall: boolean): Term {
    if (++this.depth > this.maxDepth) {
      throw new AmlDepthError(`terms nested deeper than ${this.maxDepth} levels`, this.table, this.base + this.pos);
    }
    const t = this.termAt(allowCall);
    this.depth--;
    return t;
  }

  nameTerm(allowCall: boolean): Term {
    const at = this.pos;
    const b = this.b;
    let entry: SegEntry | undefined;
    let name: NameString;
    if (isLeadNameChar(b[at]!) && at + 4 <= this.end) {
      entry = segEntry(b, at);
      name = entry.name;
      this.pos = at + 4;
    } else {
      name = this.nameString();
    }
    if (!allowCall) return entry?.ref ?? { kind: 'NamePath', name };
    const node = this.index.lookup(this.scope, name);
    if (node === undefined) {
      // A fresh object, so termList can tell this very reference by identity.
      const ref: Term = { kind: 'NamePath', name };
      if (!this.declareOnly && name.segs.length > 0) {
        this.lastUnresolvedAt = this.unresolved.length;
        this.unresolved.push({ name: formatName(name), scope: this.scope.path, offset: this.base + at });
        this.lastUnresolved = ref;
      }
      return ref;
    }
    const arity = this.index.arityOf(node);
    if (node.source === 'guessed' && !this.declareOnly) {
      this.unresolved.push({ name: formatName(name), scope: this.scope.path, offset: this.base + at, guessedArgs: arity });
    }
    if (arity < 0) return entry?.ref ?? { kind: 'NamePath', name };
    if (arity === 0) return entry?.call0 ?? { kind: 'MethodCall', name, args: NO_TERMS };
    const stack = this.stack;
    const base = this.sp;
    for (let i = 0; i < arity; i++) {
      if (this.pos >= this.end) {
        this.sp = base;
        throw this.fail(`call of ${formatName(name)} (${arity} arguments) ends after ${i} argument(s)`, at);
      }
      const arg = this.term(true);
      stack[this.sp++] = arg;
    }
    const args = stack.slice(base, this.sp);
    this.sp = base;
    return { kind: 'MethodCall', name, args };
  }

  termAt(allowCall: boolean): Term {
    const b = this.b;
    const start = this.pos;
    if (start >= this.end) throw this.fail('truncated: a term was expected');
    const op = b[start]!;
    if (isLeadNameChar(op) || op === Op.RootChar || op === Op.ParentPrefixChar || op === Op.DualNamePrefix || op === Op.MultiNamePrefix) {
      return this.nameTerm(allowCall);
    }
    this.pos = start + 1;
    switch (op) {
      case Op.Zero:
        return ZERO;
      case Op.One:
        return ONE;
      case Op.Ones:
        return ONES;
      case Op.BytePrefix:
        return BYTES[this.u8('ByteConst')]!;
      case Op.WordPrefix:
        return wordTerm(this.u16('WordConst'));
      case Op.DWordPrefix:
        return dwordTerm(this.u32('DWordConst'));
      case Op.QWordPrefix: {
        const lo = this.u32('QWordConst');
        const hi = this.u32('QWordConst');
        return { kind: 'Integer', value: (BigInt(hi) << 32n) | BigInt(lo), enc: 'qword' };
      }
      case Op.StringPrefix: {
        const s = this.pos;
        let p = s;
        const end = this.end;
        while (p < end && b[p] !== 0) p++;
        if (p >= end) throw this.fail('unterminated string', start);
        this.pos = p + 1;
        return { kind: 'String', value: latin1(b, s, p) };
      }
      case Op.Alias: {
        const source = this.nameString();
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, { kind: 'alias', target: source });
        return { kind: 'Alias', source, name };
      }
      case Op.Name: {
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'Name', name, value: this.ref() };
      }
      case Op.Scope:
        return this.scoped('Scope');
      case Op.Buffer:
        return this.buffer();
      case Op.Package:
      case Op.VarPackage:
        return this.pkg(op);
      case Op.Method:
        return this.method();
      case Op.External: {
        const name = this.nameString();
        const objectType = this.u8('External object type');
        const argCount = this.u8('External argument count');
        if (this.declaring()) this.index.declare(this.scope, name, { kind: 'external', objectType, argCount });
        return { kind: 'External', name, objectType, argCount };
      }
      case Op.ExtPrefix:
        return this.extended(start);
      case Op.Store:
        return { kind: 'Store', value: this.arg(), target: this.target() };
      case Op.CopyObject:
        return { kind: 'CopyObject', value: this.arg(), target: this.simpleTarget() };
      case Op.RefOf:
        return this.unary('RefOf', this.ref());
      case Op.ObjectType:
        return this.unary('ObjectType', this.ref());
      case Op.Increment:
      case Op.Decrement:
      case Op.DerefOf:
      case Op.SizeOf:
      case Op.LNot:
      case Op.Return:
        return this.unary(UNARY_BY_OP[op]!, this.arg());
      case Op.Divide:
        return { kind: 'Divide', dividend: this.arg(), divisor: this.arg(), remainder: this.target(), quotient: this.target() };
      case Op.Notify:
        return { kind: 'Notify', object: this.arg(), value: this.arg() };
      case Op.Match:
        return {
          kind: 'Match',
          package: this.arg(),
          op1: this.u8('Match operator'),
          operand1: this.arg(),
          op2: this.u8('Match operator'),
          operand2: this.arg(),
          start: this.arg(),
        };
      case Op.ToString:
        return { kind: 'ToString', source: this.arg(), length: this.arg(), target: this.target() };
      case Op.Mid:
        return { kind: 'Mid', source: this.arg(), index: this.arg(), length: this.arg(), target: this.target() };
      case Op.If:
        return this.ifElse();
      case Op.While: {
        const end = this.pkgEnd();
        const w = this.pkgWidth;
        const { predicate, body } = this.predicateAndBody(end);
        return withWidth({ kind: 'While', predicate, body }, w);
      }
      case Op.Else:
        throw this.fail('Else without a preceding If', start);
      case Op.Noop:
        return nullary('Noop');
      case Op.Break:
        return nullary('Break');
      case Op.Continue:
        return nullary('Continue');
      case Op.BreakPoint:
        return nullary('BreakPoint');
      default:
        break;
    }
    if (op >= Op.Local0 && op <= Op.Local0 + 7) return LOCALS[op - Op.Local0]!;
    if (op >= Op.Arg0 && op <= Op.Arg0 + 6) return ARGS[op - Op.Arg0]!;
    const binary = BINARY_BY_OP[op];
    if (binary !== undefined) return { kind: binary, left: this.arg(), right: this.arg(), target: this.target() };
    const unaryTarget = UNARY_TARGET_BY_OP[op];
    if (unaryTarget !== undefined) return { kind: unaryTarget, operand: this.arg(), target: this.target() };
    const logical = LOGICAL_BY_OP[op];
    if (logical !== undefined) return { kind: logical, left: this.arg(), right: this.arg() };
    const create = CREATE_BY_OP[op];
    if (create !== undefined) {
      const source = this.arg();
      const index = this.arg();
      const name = this.nameString();
      if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
      return { kind: create, source, index, name };
    }
    throw this.fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`, start);
  }

  unary(kind: UnaryKind, operand: Term): Term {
    return { kind, operand };
  }

  /** Runs `fn` in the first pass, skipping to `end` (and returning undefined) if it fails. */
  guarded<T>(end: number, fn: () => T): T | undefined {
    const saveEnd = this.end;
    const saveEnds = this.ends.length;
    const saveDepth = this.depth;
    const saveScope = this.scope;
    const saveStack = this.sp;
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof AmlParseError)) throw err;
      this.skippedBlocks++;
      this.end = saveEnd;
      this.ends.length = saveEnds;
      this.depth = saveDepth;
      this.scope = saveScope;
      this.sp = saveStack;
      this.pos = end;
      return undefined;
    }
  }


  /** If and While: the predicate and body after the PkgLength that ends at `end`. */
  predicateAndBody(end: number): { predicate: Term; body: readonly Term[] } {
    const saveEnd = this.end;
    this.end = end;
    let predicate: Term = ZERO;
    let body: readonly Term[] = NO_TERMS;
    if (this.declareOnly) {
      const r = this.guarded(end, () => this.arg());
      if (r !== undefined) {
        predicate = r;
        body = this.body(end);
      }
    } else {
      predicate = this.arg();
      body = this.termList(end);
    }
    this.end = saveEnd;
    return { predicate, body };
  }

  ifElse(): Term {
    const end = this.pkgEnd();
    const w = this.pkgWidth;
    const { predicate, body } = this.predicateAndBody(end);
    if (this.pos < this.end && this.b[this.pos] === Op.Else) {
      this.pos++;
      const elseEnd = this.pkgEnd();
      const ew = this.pkgWidth;
      const clause = withWidth({ body: this.body(elseEnd) }, ew);
      return withWidth({ kind: 'If', predicate, body, else: clause }, w);
    }
    return withWidth({ kind: 'If', predicate, body }, w);
  }

  /** Parses a body with `node` as the current scope. */
  bodyIn(node: DeclNode, end: number): readonly Term[] {
    const saveScope = this.scope;
    this.scope = node;
    const body = this.body(end);
    this.scope = saveScope;
    return body;
  }

  /**
   * The index node a scope-opening declaration (`at` is its PkgLength's offset) names. At
   * table level the first pass has declared it already and remembers the node by offset, so
   * the second pass does not walk the index again; in method bodies (parsed once) it declares.
   */
  scopeNode(at: number, name: NameString, what: DeclKind): DeclNode {
    if (this.methodDepth > 0) return this.index.declare(this.scope, name, what);
    if (!this.declareOnly) {
      const known = this.known.get(at);
      if (known !== undefined) return known;
    }
    const node = this.index.declare(this.scope, name, what);
    if (this.declareOnly) this.known.set(at, node);
    return node;
  }

  scoped(kind: 'Scope' | 'Device' | 'ThermalZone'): Term {
    const at = this.pos;
    const end = this.open();
    const w = this.pkgWidth;
    const name = this.nameString();
    const node = this.scopeNode(at, name, kind === 'Scope' ? DeclarationIndex.SCOPE : DeclarationIndex.OBJECT);
    const body = this.bodyIn(node, end);
    this.close();
    return withWidth({ kind, name, body }, w);
  }

  method(): Term {
    const at = this.pos;
    const end = this.open();
    const w = this.pkgWidth;
    const name = this.nameString();
    const flags = this.u8('method flags');
    const node = this.scopeNode(at, name, { kind: 'method', argCount: flags & 7 });
    let body: readonly Term[];
    const saveScope = this.scope;
    if (this.declareOnly) {
      body = NO_TERMS;
      this.pos = end;
    } else {
      this.scope = node;
      this.methodDepth++;
      body = this.termList(end);
      this.methodDepth--;
      this.scope = saveScope;
    }
    this.close();
    const m = withWidth({ kind: 'Method', name, argCount: flags & 7, serialized: (flags & 8) !== 0, syncLevel: flags >> 4, body } as const, w);
    if (!this.declareOnly && this.methodDepth === 0) this.methods.push({ start: at - 1, end, scope: saveScope, term: m });
    return m;
  }

  buffer(): BufferTerm {
    const end = this.open();
    const w = this.pkgWidth;
    const size = this.declareOnly ? ZERO : this.arg();
    const data = this.b.subarray(this.declareOnly ? end : this.pos, end);
    this.pos = end;
    this.close();
    return withWidth<BufferTerm>({ kind: 'Buffer', size, data }, w);
  }

  pkg(op: number): Term {
    const end = this.open();
    const w = this.pkgWidth;
    let elements: Term[] | readonly Term[] = NO_TERMS;
    let count: number | Term = 0;
    if (this.declareOnly) {
      this.pos = end;
    } else {
      count = op === Op.Package ? this.u8('package element count') : this.arg();
      const stack = this.stack;
      const base = this.sp;
      while (this.pos < end) {
        const e = this.ref();
        stack[this.sp++] = e;
      }
      elements = stack.slice(base, this.sp);
      this.sp = base;
    }
    this.close();
    return typeof count === 'number'
      ? withWidth({ kind: 'Package', count, elements }, w)
      : withWidth({ kind: 'VarPackage', count, elements }, w);
  }

  fieldList(end: number): FieldElement[] {
    const b = this.b;
    const out: FieldElement[] = [];
    while (this.pos < end) {
      const at = this.pos;
      const c = b[at]!;
      switch (c) {
        case 0x00: {
          this.pos++;
          const bits = this.pkgValue();
          const w = this.pkgWidth;
          // The first pass wants only the names: no element objects.
          if (!this.declareOnly) out.push(withWidth({ kind: 'ReservedField', bits }, w));
          break;
        }
        case 0x01: {
          this.pos++;
          out.push({ kind: 'AccessAs', accessType: this.u8('AccessAs type'), attrib: this.u8('AccessAs attribute') });
          break;
        }
        case 0x02: {
          this.pos++;
          if (this.pos < end && b[this.pos] === Op.Buffer) {
            this.pos++;
            out.push({ kind: 'ConnectionBuffer', buffer: this.withDepth(() => this.buffer()) });
          } else {
            out.push({ kind: 'Connection', name: this.nameString() });
          }
          break;
        }
        case 0x03: {
          this.pos++;
          out.push({
            kind: 'ExtendedAccessAs',
            accessType: this.u8('AccessAs type'),
            attrib: this.u8('AccessAs attribute'),
            length: this.u8('AccessAs length'),
          });
          break;
        }
        default: {
          if (!isLeadNameChar(c)) throw this.fail(`invalid field list element 0x${c.toString(16)}`, at);
          this.need(4, 'field name');
          const name = segAt(b, this.pos);
          this.pos += 4;
          const bits = this.pkgValue();
          const w = this.pkgWidth;
          if (this.declaring()) this.index.declareSeg(this.scope, name);
          if (!this.declareOnly) out.push(withWidth({ kind: 'NamedField', name, bits }, w));
        }
      }
    }
    return out;
  }

  withDepth<T>(fn: () => T): T {
    if (++this.depth > this.maxDepth) {
      throw new AmlDepthError(`terms nested deeper than ${this.maxDepth} levels`, this.table, this.base + this.pos);
    }
    const r = fn();
    this.depth--;
    return r;
  }

  extended(start: number): Term {
    const op = this.u8('extended opcode');
    switch (op) {
      case Op.Mutex: {
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'Mutex', name, syncFlags: this.u8('mutex sync flags') };
      }
      case Op.Event: {
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'Event', name };
      }
      case Op.CondRefOf:
        return { kind: 'CondRefOf', operand: this.ref(), target: this.target() };
      case Op.CreateField: {
        const source = this.arg();
        const bitIndex = this.arg();
        const numBits = this.arg();
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'CreateField', source, bitIndex, numBits, name };
      }
      case Op.LoadTable:
        return {
          kind: 'LoadTable',
          signature: this.arg(),
          oemId: this.arg(),
          oemTableId: this.arg(),
          rootPath: this.arg(),
          parameterPath: this.arg(),
          parameterData: this.arg(),
        };
      case Op.Load:
        return { kind: 'Load', name: this.nameString(), target: this.target() };
      case Op.Stall:
        return this.unary('Stall', this.arg());
      case Op.Sleep:
        return this.unary('Sleep', this.arg());
      case Op.Acquire:
        return { kind: 'Acquire', mutex: this.arg(), timeout: this.u16('Acquire timeout') };
      case Op.Signal:
        return this.unary('Signal', this.arg());
      case Op.Wait:
        return { kind: 'Wait', event: this.arg(), timeout: this.arg() };
      case Op.Reset:
        return this.unary('Reset', this.arg());
      case Op.Release:
        return this.unary('Release', this.arg());
      case Op.FromBCD:
        return { kind: 'FromBCD', operand: this.arg(), target: this.target() };
      case Op.ToBCD:
        return { kind: 'ToBCD', operand: this.arg(), target: this.target() };
      case Op.Unload:
        return this.unary('Unload', this.arg());
      case Op.Revision:
        return nullary('Revision');
      case Op.Debug:
        return nullary('Debug');
      case Op.Fatal:
        return { kind: 'Fatal', type: this.u8('Fatal type'), code: this.u32('Fatal code'), arg: this.arg() };
      case Op.Timer:
        return nullary('Timer');
      case Op.OpRegion: {
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'OperationRegion', name, space: this.u8('region space'), offset: this.arg(), length: this.arg() };
      }
      case Op.Field: {
        const end = this.open();
        const w = this.pkgWidth;
        const region = this.nameString();
        const flags = this.u8('field flags');
        const elements = this.fieldList(end);
        this.close();
        const t = { kind: 'Field', region, flags, elements } as const;
        return withWidth(t, w);
      }
      case Op.IndexField: {
        const end = this.open();
        const w = this.pkgWidth;
        const index = this.nameString();
        const data = this.nameString();
        const flags = this.u8('field flags');
        const elements = this.fieldList(end);
        this.close();
        const t = { kind: 'IndexField', index, data, flags, elements } as const;
        return withWidth(t, w);
      }
      case Op.BankField: {
        const end = this.open();
        const w = this.pkgWidth;
        const region = this.nameString();
        const bank = this.nameString();
        const bankValue = this.arg();
        const flags = this.u8('field flags');
        const elements = this.fieldList(end);
        this.close();
        const t = { kind: 'BankField', region, bank, bankValue, flags, elements } as const;
        return withWidth(t, w);
      }
      case Op.Device:
        return this.scoped('Device');
      case Op.ThermalZone:
        return this.scoped('ThermalZone');
      case Op.Processor: {
        const at = this.pos;
        const end = this.open();
        const w = this.pkgWidth;
        const name = this.nameString();
        const procId = this.u8('processor id');
        const pblkAddress = this.u32('processor block address');
        const pblkLength = this.u8('processor block length');
        const body = this.bodyIn(this.scopeNode(at, name, DeclarationIndex.OBJECT), end);
        this.close();
        return withWidth({ kind: 'Processor', name, procId, pblkAddress, pblkLength, body }, w);
      }
      case Op.PowerRes: {
        const at = this.pos;
        const end = this.open();
        const w = this.pkgWidth;
        const name = this.nameString();
        const systemLevel = this.u8('power resource system level');
        const resourceOrder = this.u16('power resource order');
        const body = this.bodyIn(this.scopeNode(at, name, DeclarationIndex.OBJECT), end);
        this.close();
        return withWidth({ kind: 'PowerResource', name, systemLevel, resourceOrder, body }, w);
      }
      case Op.DataRegion: {
        const name = this.nameString();
        if (this.declaring()) this.index.declare(this.scope, name, DeclarationIndex.OBJECT);
        return { kind: 'DataRegion', name, signature: this.arg(), oemId: this.arg(), oemTableId: this.arg() };
      }
      default:
        throw this.fail(`unknown extended opcode 0x5b 0x${op.toString(16).padStart(2, '0')}`, start);
    }
  }
}

const UNARY_BY_OP: Partial<Record<number, UnaryKind>> = {
  [Op.Increment]: 'Increment',
  [Op.Decrement]: 'Decrement',
  [Op.DerefOf]: 'DerefOf',
  [Op.SizeOf]: 'SizeOf',
  [Op.LNot]: 'LNot',
  [Op.Return]: 'Return',
};
