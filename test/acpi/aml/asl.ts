import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { absoluteSegs, nameString, pathOf } from '../../../src/hw/acpi/aml/names.js';
import type { Machine } from './fixtures.js';

/**
 * The oracle side of the AML tests: ACPICA's disassembler (`iasl -d`, given the machine's other
 * tables with -e as a real OS would have them) turns each table into ASL, and this scanner
 * reads from that text what it declares and which methods it calls with how many arguments.
 * It knows only iasl's output conventions, nothing of hvmpt's parser.
 */

export interface Disassembly {
  readonly asl: string;
  /** iasl had the machine's other tables (-e), so it knew every method's argument count. */
  readonly withExternals: boolean;
}

/**
 * Runs iasl -e <other tables> -d <table> in the machine's extraction directory. With -e, iasl
 * refuses a table whose companions redefine its objects (AE_ALREADY_EXISTS); then it
 * disassembles the table alone, guessing argument counts it cannot know. Returns undefined
 * when iasl cannot disassemble the table at all (iasl 20200925 crashes on one fixture SSDT).
 */
export function disassemble(machine: Machine, tableName: string): Disassembly | undefined {
  const others = machine.tables.filter((t) => t.name !== tableName).map((t) => `${t.name}.dat`);
  const dsl = join(machine.dir, `${tableName}.dsl`);
  for (const extra of others.length > 0 ? [['-e', ...others], []] : [[]]) {
    rmSync(dsl, { force: true });
    const r = spawnSync('iasl', [...extra, '-d', `${tableName}.dat`], { cwd: machine.dir, encoding: 'utf8' });
    if (r.status === 0 && existsSync(dsl)) return { asl: readFileSync(dsl, 'utf8'), withExternals: extra.length > 0 };
  }
  return undefined;
}

/** Compiles ASL source with iasl; returns the whole table (header included). */
export function compileAsl(source: string, flags: readonly string[] = []): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-asl-'));
  try {
    writeFileSync(join(dir, 'in.asl'), source);
    const r = spawnSync('iasl', [...flags, '-p', join(dir, 'out'), join(dir, 'in.asl')], { encoding: 'utf8' });
    if (r.status !== 0 || !existsSync(join(dir, 'out.aml'))) throw new Error(`iasl could not compile:\n${r.stdout}${r.stderr}`);
    return new Uint8Array(readFileSync(join(dir, 'out.aml')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TableDisassembly {
  readonly asl: string;
  /** iasl's own console output (warnings and errors are reported there). */
  readonly log: string;
  readonly status: number | null;
}

/** Disassembles a whole table (header included) with iasl -d. */
export function disassembleTable(table: Uint8Array): TableDisassembly {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-dsl-'));
  try {
    writeFileSync(join(dir, 't.aml'), table);
    const r = spawnSync('iasl', ['-d', 't.aml'], { cwd: dir, encoding: 'utf8' });
    const asl = existsSync(join(dir, 't.dsl')) ? readFileSync(join(dir, 't.dsl'), 'utf8') : '';
    return { asl, log: r.stdout + r.stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Tok = { readonly t: 'id' | 'num' | 'str' | 'p'; readonly v: string };

export function tokenize(text: string): Tok[] {
  const out: Tok[] = [];
  const re =
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:[^"\\]|\\.)*"|(?:\\|\^+)?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|\\|0x[0-9A-Fa-f]+|\d+|\S/g;
  for (const m of text.matchAll(re)) {
    const v = m[0];
    if (v.startsWith('/*') || v.startsWith('//')) continue;
    if (v.startsWith('"')) out.push({ t: 'str', v });
    else if (/^(?:\\|\^)*[A-Za-z_]/.test(v) || v === '\\') out.push({ t: 'id', v });
    else if (/^\d/.test(v)) out.push({ t: 'num', v });
    else out.push({ t: 'p', v });
  }
  return out;
}

export interface AslFacts {
  /** Static declarations (outside method bodies, Externals excluded): path -> `Kind` or `Method/N`. */
  readonly decls: Map<string, string>;
  /** Method invocations anywhere: `SEG_/argc` -> count. */
  readonly calls: Map<string, number>;
  /** Last segments of the names the table declares External (known only by iasl's guess or -e). */
  readonly externals: Set<string>;
  /** Tokens of each static Name's value (`Package (0x02) { ... }`), by path. */
  readonly values: Map<string, Tok[]>;
  /** Tokens of each static method's body, by path. */
  readonly methods: Map<string, Tok[]>;
}

const SCOPE_KW = new Set(['Scope', 'Device', 'Method', 'Processor', 'PowerResource', 'ThermalZone']);
const FIELD_KW = new Set(['Field', 'IndexField', 'BankField']);
const FIRST_ARG_DECL: Record<string, string> = {
  Name: 'Name',
  OperationRegion: 'OperationRegion',
  Mutex: 'Mutex',
  Event: 'Event',
  DataTableRegion: 'DataRegion',
};
const CREATE_KW = new Set(['CreateBitField', 'CreateByteField', 'CreateWordField', 'CreateDWordField', 'CreateQWordField', 'CreateField']);
const KIND_OF: Record<string, string> = {
  Device: 'Device',
  Method: 'Method',
  Processor: 'Processor',
  PowerResource: 'PowerResource',
  ThermalZone: 'ThermalZone',
};

interface Frame {
  readonly kind: 'scope' | 'method' | 'fields' | 'resource' | 'other';
  readonly path: readonly string[];
  readonly inMethod: boolean;
}

/** Splits the parenthesised argument list starting at tokens[open] ('('); returns args and the index after ')'. */
function readArgs(toks: readonly Tok[], open: number): { args: Tok[][]; next: number } {
  const args: Tok[][] = [];
  let cur: Tok[] = [];
  let depth = 0;
  let i = open;
  for (; i < toks.length; i++) {
    const k = toks[i]!;
    if (k.t === 'p' && (k.v === '(' || k.v === '{' || k.v === '[')) {
      depth++;
      if (depth === 1) continue;
    } else if (k.t === 'p' && (k.v === ')' || k.v === '}' || k.v === ']')) {
      depth--;
      if (depth === 0) break;
    } else if (depth === 1 && k.t === 'p' && k.v === ',') {
      args.push(cur);
      cur = [];
      continue;
    }
    cur.push(k);
  }
  if (cur.length > 0 || args.length > 0) args.push(cur);
  return { args, next: i + 1 };
}

function resolve(text: string, scope: readonly string[]): string | undefined {
  const segs = absoluteSegs(nameString(text), scope);
  return segs === undefined ? undefined : pathOf(segs);
}

export function lastSeg(text: string): string {
  const bare = text.replace(/^[\\^]+/, '');
  const segs = bare.split('.');
  return (segs[segs.length - 1] ?? '').toUpperCase().padEnd(4, '_');
}

const NAME_TOKEN = /^(?:\\|\^+)?[A-Z_][A-Z0-9_]{0,3}(?:\.[A-Z_][A-Z0-9_]{0,3})*$/;

export function scanAsl(text: string): AslFacts {
  const toks = tokenize(text);
  const decls = new Map<string, string>();
  const calls = new Map<string, number>();
  const externals = new Set<string>();
  const values = new Map<string, Tok[]>();
  const methods = new Map<string, Tok[]>();
  const stack: Frame[] = [{ kind: 'scope', path: [], inMethod: false }];
  let pending: Frame | undefined;
  const top = () => stack[stack.length - 1]!;
  const declare = (name: Tok[] | undefined, kind: string) => {
    if (top().inMethod || name === undefined || name.length !== 1 || name[0]!.t !== 'id') return;
    const p = resolve(name[0]!.v, top().path);
    if (p !== undefined && !decls.has(p)) decls.set(p, kind);
  };
  for (let i = 0; i < toks.length; i++) {
    const k = toks[i]!;
    if (k.t === 'p' && k.v === '{') {
      const t = top();
      stack.push(pending ?? { kind: t.kind === 'resource' ? 'resource' : 'other', path: t.path, inMethod: t.inMethod });
      pending = undefined;
      continue;
    }
    if (k.t === 'p' && k.v === '}') {
      stack.pop();
      continue;
    }
    const t = top();
    if (t.kind === 'resource' || k.t !== 'id') continue;
    if (t.kind === 'fields') {
      const next = toks[i + 1];
      if (next?.t === 'p' && next.v === ',' && NAME_TOKEN.test(k.v)) declare([k], 'FieldUnit');
      if (next?.t === 'p' && next.v === '(') i = readArgs(toks, i + 1).next - 1;
      continue;
    }
    const open = toks[i + 1];
    if (open?.t !== 'p' || open.v !== '(') continue;
    const kw = k.v;
    if (SCOPE_KW.has(kw)) {
      const { args, next } = readArgs(toks, i + 1);
      const nameTok = args[0]?.[0];
      const path = nameTok === undefined ? undefined : resolve(nameTok.v, t.path);
      if (path === undefined) continue;
      if (kw !== 'Scope') declare(args[0], kw === 'Method' ? `Method/${Number(args[1]?.[0]?.v ?? 0)}` : KIND_OF[kw]!);
      if (kw === 'Method' && !t.inMethod && toks[next]?.v === '{') methods.set(path, readArgs(toks, next).args.flat());
      pending = {
        kind: kw === 'Method' ? 'method' : 'scope',
        path: path === '\\' ? [] : path.slice(1).split('.'),
        inMethod: t.inMethod || kw === 'Method',
      };
      i = next - 1;
    } else if (FIELD_KW.has(kw)) {
      const { next } = readArgs(toks, i + 1);
      pending = { kind: 'fields', path: t.path, inMethod: t.inMethod };
      i = next - 1;
    } else if (kw === 'ResourceTemplate') {
      const { next } = readArgs(toks, i + 1);
      pending = { kind: 'resource', path: t.path, inMethod: t.inMethod };
      i = next - 1;
    } else if (FIRST_ARG_DECL[kw] !== undefined) {
      const { args } = readArgs(toks, i + 1);
      declare(args[0], FIRST_ARG_DECL[kw]);
      const nameTok = args[0]?.[0];
      if (kw === 'Name' && !t.inMethod && nameTok !== undefined) {
        const p = resolve(nameTok.v, t.path);
        if (p !== undefined && !values.has(p)) values.set(p, readArgs(toks, i + 1).args.slice(1).flat());
      }
    } else if (kw === 'Alias') {
      declare(readArgs(toks, i + 1).args[1], 'Alias');
    } else if (CREATE_KW.has(kw)) {
      const { args } = readArgs(toks, i + 1);
      declare(args[args.length - 1], 'BufferField');
    } else if (kw === 'External') {
      const { args, next } = readArgs(toks, i + 1);
      const first = args[0]?.[0];
      if (first !== undefined) externals.add(lastSeg(first.v));
      i = next - 1;
    } else if (NAME_TOKEN.test(kw) && !['IO', 'DMA', 'IRQ'].includes(kw)) {
      const { args } = readArgs(toks, i + 1);
      const key = `${lastSeg(kw)}/${args.length}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
    }
  }
  return { decls, calls, externals, values, methods };
}

/** One _PRT entry as ASL writes it: `Package (0x04) { address, pin, source, index }`. */
export interface AslPrtEntry {
  readonly address: bigint;
  readonly pin: bigint;
  /** `0` for a GSI, else the link's name as written. */
  readonly source: string;
  readonly index: bigint;
}

function aslInt(k: Tok | undefined): bigint | undefined {
  if (k === undefined) return undefined;
  if (k.t === 'num') return BigInt(k.v);
  if (k.v === 'Zero') return 0n;
  if (k.v === 'One') return 1n;
  if (k.v === 'Ones') return 0xffff_ffff_ffff_ffffn;
  return undefined;
}

/** Every 4-element `Package (..) { a, b, c, d }` of simple values in `toks`, in order. */
export function prtEntriesIn(toks: readonly Tok[]): AslPrtEntry[] {
  const out: AslPrtEntry[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (toks[i]!.v !== 'Package' || toks[i + 1]?.v !== '(') continue;
    let j = i + 2;
    while (j < toks.length && toks[j]!.v !== ')') j++;
    if (toks[j + 1]?.v !== '{') continue;
    const body = toks.slice(j + 2, j + 10);
    const vals = [body[0], body[2], body[4], body[6]];
    if (body[1]?.v !== ',' || body[3]?.v !== ',' || body[5]?.v !== ',' || body[7]?.v !== '}') continue;
    const [a, p, s, x] = vals;
    const address = aslInt(a);
    const pin = aslInt(p);
    const index = aslInt(x);
    if (address === undefined || pin === undefined || index === undefined || s === undefined) continue;
    const gsi = aslInt(s);
    out.push({ address, pin, source: gsi !== undefined ? String(gsi) : s.v, index });
  }
  return out;
}

/** One descriptor macro of an ASL ResourceTemplate: its name, numbers, keywords and strings. */
export interface AslDescriptor {
  readonly macro: string;
  readonly numbers: bigint[];
  readonly words: string[];
  readonly strings: string[];
}

/** Every ResourceTemplate () { ... } in the ASL, in order, as lists of descriptors. */
export function scanResourceTemplates(text: string): AslDescriptor[][] {
  const toks = tokenize(text);
  const out: AslDescriptor[][] = [];
  for (let i = 0; i < toks.length; i++) {
    if (toks[i]!.v !== 'ResourceTemplate' || toks[i + 1]?.v !== '(') continue;
    const j = readArgs(toks, i + 1).next;
    if (toks[j]?.v !== '{') continue;
    const descriptors: AslDescriptor[] = [];
    i = descriptorList(toks, j + 1, descriptors);
    out.push(descriptors);
  }
  return out;
}

/** Reads descriptors up to the closing brace; StartDependentFn bodies are flattened in place. */
function descriptorList(toks: readonly Tok[], at: number, into: AslDescriptor[]): number {
  let j = at;
  while (j < toks.length && toks[j]!.v !== '}') {
    const macro = toks[j]!.v;
    const { args, next } = readArgs(toks, j + 1);
    j = next;
    const flat = args.flat();
    const nested = macro.startsWith('StartDependentFn');
    const d: AslDescriptor = { macro, numbers: [], words: [], strings: [] };
    into.push(d);
    if (toks[j]?.v === '{') {
      if (nested) {
        j = descriptorList(toks, j + 1, into) + 1;
      } else {
        const list = readArgs(toks, j);
        flat.push(...list.args.flat());
        j = list.next;
      }
    }
    d.numbers.push(...flat.filter((k) => k.t === 'num').map((k) => BigInt(k.v)));
    d.words.push(...flat.filter((k) => k.t === 'id').map((k) => k.v));
    d.strings.push(...flat.filter((k) => k.t === 'str').map((k) => JSON.parse(k.v) as string));
  }
  return j;
}
