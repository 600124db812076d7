import { HvmptError } from '../../../errors.js';
import { nameString, pathOf } from '../aml/names.js';
import type { FieldElement, NamedFieldElement, NameString, Term } from '../aml/terms.js';
import { decodeEisaId } from '../aml/eisaid.js';

/**
 * The ACPI namespace a set of tables declares when loaded: every named object with its path,
 * its kind and the term that declared it. Objects that only exist while a method runs (names
 * declared inside method bodies) are not in it; objects declared inside a table-level If are,
 * marked `conditional`.
 */

export type NsKind =
  | 'Root'
  /** Predefined scopes (\_SB, \_GPE, ...), and paths known only as the target of Scope(). */
  | 'Scope'
  | 'Device'
  | 'Method'
  | 'Name'
  | 'Alias'
  | 'Mutex'
  | 'Event'
  | 'OperationRegion'
  | 'DataRegion'
  | 'FieldUnit'
  | 'BufferField'
  | 'Processor'
  | 'PowerResource'
  | 'ThermalZone'
  /** Declared only by External() in the supplied tables. */
  | 'External';

export interface NsNode {
  /** The 4-character segment (`PCI0`, `_HID`); `\` for the root. */
  readonly name: string;
  /** Absolute path, padded segments: `\_SB_.PCI0._PRT`. */
  readonly path: string;
  readonly parent: NsNode | null;
  readonly children: ReadonlyMap<string, NsNode>;
  readonly kind: NsKind;
  /** The declaring term; for a field unit the Field/IndexField/BankField holding it. */
  readonly term: Term | undefined;
  /** For field units: the element that named it. */
  readonly field: NamedFieldElement | undefined;
  /** The table that declared it (the first one, if several did). */
  readonly table: string | undefined;
  /** Declared inside a table-level If/Else/While: present only if the condition held at load. */
  readonly conditional: boolean;
  /** Later declarations of the same path (other tables, other branches of an If). */
  readonly redeclarations: readonly { readonly term: Term; readonly table: string }[];
  /** The Scope() terms that add to this object, in load order (a rewrite hiding it drops them too). */
  readonly scopes: readonly { readonly term: Term; readonly table: string }[];
}

class Node implements NsNode {
  readonly name: string;
  readonly path: string;
  readonly parent: Node | null;
  readonly children = new Map<string, Node>();
  kind: NsKind;
  term: Term | undefined = undefined;
  field: NamedFieldElement | undefined = undefined;
  table: string | undefined = undefined;
  conditional = false;
  readonly redeclarations: { term: Term; table: string }[] = [];
  readonly scopes: { term: Term; table: string }[] = [];

  constructor(name: string, parent: Node | null, kind: NsKind) {
    this.name = name;
    this.parent = parent;
    this.kind = kind;
    this.path = parent === null ? '\\' : parent.parent === null ? '\\' + name : parent.path + '.' + name;
  }
}

/** A path that does not name an object (namespace queries that require one). */
export class NamespaceError extends HvmptError {}

export interface LoadedTable {
  readonly table: string;
  readonly terms: readonly Term[];
}

const PREDEFINED: ReadonlyArray<readonly [string, NsKind]> = [
  ['_GPE', 'Scope'],
  ['_PR_', 'Scope'],
  ['_SB_', 'Scope'],
  ['_SI_', 'Scope'],
  ['_TZ_', 'Scope'],
  ['_GL_', 'Mutex'],
  ['_OS_', 'Name'],
  ['_OSI', 'Method'],
  ['_REV', 'Name'],
];

const DECLARED_KIND: Partial<Record<Term['kind'], NsKind>> = {
  Device: 'Device',
  ThermalZone: 'ThermalZone',
  Processor: 'Processor',
  PowerResource: 'PowerResource',
  Method: 'Method',
  Name: 'Name',
  Alias: 'Alias',
  Mutex: 'Mutex',
  Event: 'Event',
  OperationRegion: 'OperationRegion',
  DataRegion: 'DataRegion',
  CreateBitField: 'BufferField',
  CreateByteField: 'BufferField',
  CreateWordField: 'BufferField',
  CreateDWordField: 'BufferField',
  CreateQWordField: 'BufferField',
  CreateField: 'BufferField',
};

export class AcpiNamespace {
  readonly root: NsNode;
  private readonly rootNode: Node;

  private constructor() {
    this.rootNode = new Node('\\', null, 'Root');
    this.root = this.rootNode;
    for (const [name, kind] of PREDEFINED) this.rootNode.children.set(name, new Node(name, this.rootNode, kind));
  }

  /** Loads tables in order (DSDT first, then SSDTs), as the OS does. */
  static build(tables: readonly LoadedTable[]): AcpiNamespace {
    const ns = new AcpiNamespace();
    for (const t of tables) ns.load(t.terms, ns.rootNode, t.table, false);
    return ns;
  }

  private load(terms: readonly Term[], scope: Node, table: string, conditional: boolean): void {
    for (const t of terms) {
      switch (t.kind) {
        case 'Scope': {
          const node = this.walkTo(scope, t.name, true);
          if (node !== undefined) {
            node.scopes.push({ term: t, table });
            this.load(t.body, node, table, conditional);
          }
          break;
        }
        case 'Device':
        case 'ThermalZone':
        case 'Processor':
        case 'PowerResource': {
          const node = this.declare(scope, t.name, DECLARED_KIND[t.kind]!, t, table, conditional);
          if (node !== undefined) this.load(t.body, node, table, conditional);
          break;
        }
        case 'If':
          this.load(t.body, scope, table, true);
          if (t.else !== undefined) this.load(t.else.body, scope, table, true);
          break;
        case 'While':
          this.load(t.body, scope, table, true);
          break;
        case 'External': {
          const node = this.walkTo(scope, t.name, true);
          if (node !== undefined && (node.kind === 'Scope' || node.kind === 'External') && node.term === undefined) {
            node.kind = 'External';
            node.term = t;
            node.table = table;
          }
          break;
        }
        case 'Field':
        case 'IndexField':
        case 'BankField':
          this.fieldUnits(t.elements, t, scope, table, conditional);
          break;
        default: {
          const kind = DECLARED_KIND[t.kind];
          if (kind !== undefined && 'name' in t && typeof t.name === 'object') this.declare(scope, t.name, kind, t, table, conditional);
        }
      }
    }
  }

  private fieldUnits(elements: readonly FieldElement[], term: Term, scope: Node, table: string, conditional: boolean): void {
    for (const e of elements) {
      if (e.kind !== 'NamedField') continue;
      const node = this.declare(scope, { root: false, parents: 0, segs: [e.name] }, 'FieldUnit', term, table, conditional);
      if (node !== undefined && node.term === term) node.field = e;
    }
  }

  private declare(scope: Node, name: NameString, kind: NsKind, term: Term, table: string, conditional: boolean): Node | undefined {
    const node = this.walkTo(scope, name, true);
    if (node === undefined) return undefined;
    if (node.term === undefined || node.kind === 'External') {
      node.kind = kind;
      node.term = term;
      node.table = table;
      node.conditional = conditional;
    } else {
      node.redeclarations.push({ term, table });
    }
    return node;
  }

  /** Follows `name` from `scope` exactly (no parent search); creates missing nodes if asked. */
  private walkTo(scope: Node, name: NameString, create: boolean): Node | undefined {
    let node: Node | null = name.root ? this.rootNode : scope;
    for (let i = 0; i < name.parents && node !== null; i++) node = node.parent;
    if (node === null) return undefined;
    for (const seg of name.segs) {
      let next: Node | undefined = node.children.get(seg);
      if (next === undefined) {
        if (!create) return undefined;
        next = new Node(seg, node, 'Scope');
        node.children.set(seg, next);
      }
      node = next;
    }
    return node;
  }

  /** The object at an absolute path (`\_SB.PCI0`, `\_SB_.PCI0`, `_SB.PCI0`), or undefined. */
  get(path: string): NsNode | undefined {
    let name: NameString;
    try {
      name = nameString(path.startsWith('\\') ? path : '\\' + path);
    } catch {
      return undefined;
    }
    return this.walkTo(this.rootNode, name, false);
  }

  /** Like get(), but a missing path is an error naming it. */
  require(path: string): NsNode {
    const n = this.get(path);
    if (n === undefined) throw new NamespaceError(`no object ${path} in the namespace`, { input: 'ACPI namespace', at: path });
    return n;
  }

  /**
   * Resolves a name used in `from`'s scope by ACPI's rules: a single relative segment is
   * searched in the scope and then each parent up to the root; anything else is exact.
   */
  resolve(name: NameString | string, from: NsNode | string = this.root): NsNode | undefined {
    const ns = typeof name === 'string' ? safeName(name) : name;
    const start = typeof from === 'string' ? this.get(from) : from;
    if (ns === undefined || start === undefined) return undefined;
    const scope = start as Node;
    if (!ns.root && ns.parents === 0 && ns.segs.length === 1) {
      for (let n: Node | null = scope; n !== null; n = n.parent) {
        const c = n.children.get(ns.segs[0]!);
        if (c !== undefined) return c;
      }
      return undefined;
    }
    return this.walkTo(scope, ns, false);
  }

  /** Follows Alias objects to what they name. */
  deref(node: NsNode): NsNode | undefined {
    let n: NsNode | undefined = node;
    for (let hops = 0; n !== undefined && n.kind === 'Alias' && hops < 16; hops++) {
      const t: Term | undefined = n.term;
      n = t?.kind === 'Alias' && n.parent !== null ? this.resolve(t.source, n.parent) : undefined;
    }
    return n;
  }

  /** Every node, depth-first in declaration order. */
  *nodes(from: NsNode = this.root): Generator<NsNode> {
    const stack: NsNode[] = [from];
    while (stack.length > 0) {
      const n = stack.pop()!;
      yield n;
      const kids = [...n.children.values()];
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
    }
  }

  devices(from: NsNode = this.root): NsNode[] {
    return [...this.nodes(from)].filter((n) => n.kind === 'Device');
  }

  /**
   * The value an object has without running code: a Name's value, or what a Method returns
   * when its whole body is one Return of a constant (the usual `Method (_HID) { Return (..) }`).
   * Aliases are followed.
   */
  valueOf(node: NsNode | undefined): Term | undefined {
    const n = node === undefined ? undefined : this.deref(node);
    const t = n?.term;
    if (t === undefined) return undefined;
    if (t.kind === 'Name') return t.value;
    if (t.kind === 'Method' && t.body.length === 1 && t.body[0]!.kind === 'Return') {
      const v = t.body[0]!.operand;
      if (v.kind === 'Integer' || v.kind === 'String' || v.kind === 'Buffer' || v.kind === 'Package') return v;
    }
    return undefined;
  }

  /** The value of a child object such as `_HID` of `device`. */
  childValue(device: NsNode, child: string): Term | undefined {
    return this.valueOf(device.children.get(child.padEnd(4, '_')));
  }

  /** _HID as text: EISA ids decoded (`PNP0A08`), strings as they are. */
  hid(device: NsNode): string | undefined {
    return idText(this.childValue(device, '_HID'));
  }

  /** _CID entries as text (a single id or a package of them). */
  cids(device: NsNode): string[] {
    const v = this.childValue(device, '_CID');
    if (v === undefined) return [];
    if (v.kind === 'Package') return v.elements.map(idText).filter((s): s is string => s !== undefined);
    const one = idText(v);
    return one === undefined ? [] : [one];
  }

  /** _ADR as a number (PCI: device << 16 | function). */
  adr(device: NsNode): number | undefined {
    const v = this.childValue(device, '_ADR');
    return v?.kind === 'Integer' && v.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.value) : undefined;
  }

  /** _UID as a number or string. */
  uid(device: NsNode): number | string | undefined {
    const v = this.childValue(device, '_UID');
    if (v?.kind === 'Integer') return Number(v.value);
    if (v?.kind === 'String') return v.value;
    return undefined;
  }

  /** Devices whose _HID or one of whose _CIDs is `id` (EISA or string id, any case). */
  findByHid(id: string, from: NsNode = this.root): NsNode[] {
    const want = id.toUpperCase();
    return this.devices(from).filter((d) => this.hid(d)?.toUpperCase() === want || this.cids(d).some((c) => c.toUpperCase() === want));
  }

  /** Devices with this _ADR; with `parent`, only its direct children (PCI functions under a bridge). */
  findByAdr(adr: number, parent?: NsNode): NsNode[] {
    const pool = parent === undefined ? this.devices() : [...parent.children.values()].filter((n) => n.kind === 'Device');
    return pool.filter((d) => this.adr(d) === adr);
  }

  /** Method argument count (undefined when the node is not a method). */
  argCount(node: NsNode): number | undefined {
    const n = this.deref(node);
    if (n?.term?.kind === 'Method') return n.term.argCount;
    if (n?.term?.kind === 'External' && n.term.objectType === 8) return n.term.argCount & 7;
    if (n?.kind === 'Method' && n.path === '\\_OSI') return 1;
    return undefined;
  }

  /** Absolute path for segments, for callers that hold segment lists. */
  static pathOf(segs: readonly string[]): string {
    return pathOf(segs);
  }
}

function safeName(text: string): NameString | undefined {
  try {
    return nameString(text);
  } catch {
    return undefined;
  }
}

function idText(v: Term | undefined): string | undefined {
  if (v?.kind === 'Integer') return decodeEisaId(v.value) ?? `0x${v.value.toString(16)}`;
  if (v?.kind === 'String') return v.value;
  return undefined;
}
