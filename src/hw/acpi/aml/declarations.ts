import { ObjectType, type NameString } from './terms.js';

/**
 * What the parser must know before it can parse a method invocation: which names are
 * methods and how many arguments each takes. AML does not encode a call's argument count,
 * so `FOO` followed by bytes could be a reference, or a call consuming the next N terms.
 *
 * A DeclarationIndex is a skeletal namespace filled by a first pass over every table
 * (method bodies skipped), plus External(..., MethodObj, N) declarations; the second pass
 * resolves each name by ACPI's search rules against it.
 */

/** Where a node's knowledge comes from; a real declaration outranks an External one. */
export type DeclSource = 'predefined' | 'declared' | 'external' | 'guessed' | 'implied';

export class DeclNode {
  readonly name: string;
  readonly parent: DeclNode | null;
  children: Map<string, DeclNode> | null = null;
  /** The method's argument count, or -1 for an object that is not a method. */
  arity = -1;
  source: DeclSource = 'implied';
  /** For Alias objects: the target, resolved on lookup. */
  alias: { readonly scope: DeclNode; readonly target: NameString } | null = null;

  constructor(name: string, parent: DeclNode | null) {
    this.name = name;
    this.parent = parent;
  }

  child(seg: string): DeclNode | undefined {
    return this.children?.get(seg);
  }

  /** `\_SB_.PCI0.FOO_`; the root is `\`. */
  get path(): string {
    const segs: string[] = [];
    for (let n: DeclNode | null = this; n !== null && n.parent !== null; n = n.parent) segs.push(n.name);
    return '\\' + segs.reverse().join('.');
  }
}

/** What a declaration says about its name. */
export type DeclKind =
  | { readonly kind: 'method'; readonly argCount: number }
  | { readonly kind: 'object' }
  | { readonly kind: 'external'; readonly objectType: number; readonly argCount: number }
  | { readonly kind: 'alias'; readonly target: NameString }
  /** An unknown name called as a statement, its argument count guessed (see parse.ts). */
  | { readonly kind: 'guess'; readonly argCount: number }
  | { readonly kind: 'scope' };

const OBJECT: DeclKind = { kind: 'object' };
const SCOPE: DeclKind = { kind: 'scope' };

/** Objects the interpreter creates before any table loads (ACPI 6.5 section 5.3.1). */
const PREDEFINED: ReadonlyArray<readonly [string, number]> = [
  ['_GPE', -1],
  ['_PR_', -1],
  ['_SB_', -1],
  ['_SI_', -1],
  ['_TZ_', -1],
  ['_GL_', -1],
  ['_OS_', -1],
  ['_REV', -1],
  ['_OSI', 1],
];

export class DeclarationIndex {
  readonly root: DeclNode = new DeclNode('\\', null);
  /** Bodies already collected, so parsing a table again does not redo its first pass. */
  readonly collected = new WeakSet<Uint8Array>();
  private readonly scopeNodes = new WeakMap<Uint8Array, Map<number, DeclNode>>();

  /** The scope-opening nodes the parser met in `body`, by offset (see Parser.scopeNode). */
  nodesAt(body: Uint8Array): Map<number, DeclNode> {
    let m = this.scopeNodes.get(body);
    if (m === undefined) {
      m = new Map();
      this.scopeNodes.set(body, m);
    }
    return m;
  }

  constructor() {
    this.root.source = 'predefined';
    for (const [name, arity] of PREDEFINED) {
      const n = this.childOf(this.root, name);
      n.arity = arity;
      n.source = 'predefined';
    }
  }

  static readonly OBJECT = OBJECT;
  static readonly SCOPE = SCOPE;

  private childOf(node: DeclNode, seg: string): DeclNode {
    let children = node.children;
    if (children === null) node.children = children = new Map();
    let c = children.get(seg);
    if (c === undefined) {
      c = new DeclNode(seg, node);
      children.set(seg, c);
    }
    return c;
  }

  /**
   * Records a declaration of `name` made in `scope` and returns its node (the new scope for
   * Device, Method and the like). A name that climbs above the root gets a detached node,
   * so the parse goes on; such a name is an error only when the interpreter runs it.
   */
  declare(scope: DeclNode, name: NameString, what: DeclKind): DeclNode {
    let node: DeclNode | null = name.root ? this.root : scope;
    for (let i = 0; i < name.parents && node !== null; i++) node = node.parent;
    if (node === null) return new DeclNode(name.segs[name.segs.length - 1] ?? '____', null);
    for (const seg of name.segs) node = this.childOf(node, seg);
    switch (what.kind) {
      case 'scope':
        break;
      case 'method':
        node.arity = what.argCount;
        node.source = 'declared';
        node.alias = null;
        break;
      case 'object':
        // A Method declared under the same name elsewhere (If/Else variants) keeps its arity:
        // guessing "reference" there would make the parser drop the call's arguments.
        if (node.source !== 'declared' || node.arity < 0) {
          node.arity = -1;
          node.source = 'declared';
        }
        break;
      case 'alias':
        if (node.source !== 'declared') {
          node.alias = { scope, target: what.target };
          node.source = 'declared';
        }
        break;
      case 'guess':
        if (node.source === 'implied') {
          node.arity = what.argCount;
          node.source = 'guessed';
        }
        break;
      case 'external':
        if (node.source === 'implied' || node.source === 'external' || node.source === 'guessed') {
          node.arity = what.objectType === ObjectType.Method ? what.argCount & 7 : -1;
          node.source = 'external';
        }
        break;
    }
    return node;
  }

  /** A field unit (or any object) named by one segment directly in `scope`. */
  declareSeg(scope: DeclNode, seg: string): void {
    const node = this.childOf(scope, seg);
    if (node.source !== 'declared' || node.arity < 0) {
      node.arity = -1;
      node.source = 'declared';
    }
  }

  /**
   * Like declare(), for a guess that must not outlive one table's parse: returns a function
   * that restores the index as it was (removing nodes the declaration created).
   */
  declareTentatively(scope: DeclNode, name: NameString, what: DeclKind): () => void {
    // Find the deepest node of the path that exists already; everything below it is new.
    let start: DeclNode | null = name.root ? this.root : scope;
    for (let i = 0; i < name.parents && start !== null; i++) start = start.parent;
    if (start === null) return () => undefined;
    let existing: DeclNode = start;
    let depth = 0;
    for (const seg of name.segs) {
      const c: DeclNode | undefined = existing.child(seg);
      if (c === undefined) break;
      existing = c;
      depth++;
    }
    const complete = depth === name.segs.length;
    const saved = { arity: existing.arity, source: existing.source };
    const firstNew = complete ? undefined : name.segs[depth]!;
    const anchor = existing;
    this.declare(scope, name, what);
    return () => {
      if (firstNew !== undefined) anchor.children?.delete(firstNew);
      else {
        anchor.arity = saved.arity;
        anchor.source = saved.source;
      }
    };
  }

  /**
   * ACPI name resolution (ACPI 6.5 section 5.3): a single-segment relative name is looked up in
   * `scope` and then in each parent up to the root; any other name is resolved exactly.
   */
  lookup(scope: DeclNode, name: NameString): DeclNode | undefined {
    const segs = name.segs;
    if (!name.root && name.parents === 0 && segs.length === 1) {
      const seg = segs[0]!;
      for (let n: DeclNode | null = scope; n !== null; n = n.parent) {
        const c = n.children?.get(seg);
        if (c !== undefined) return c;
      }
      return undefined;
    }
    let node: DeclNode | null = name.root ? this.root : scope;
    for (let i = 0; i < name.parents && node !== null; i++) node = node.parent;
    for (let i = 0; i < segs.length && node !== null; i++) node = node.children?.get(segs[i]!) ?? null;
    return node ?? undefined;
  }

  /** Argument count if `node` is (or aliases) a method, else -1. */
  arityOf(node: DeclNode): number {
    let n: DeclNode | undefined = node;
    for (let hops = 0; n !== undefined && n.alias !== null && hops < 8; hops++) n = this.lookup(n.alias.scope, n.alias.target);
    return n === undefined || n.alias !== null ? -1 : n.arity;
  }

  /** The argument count of the method at an absolute path (`\_SB.PCI0._PRT`), or undefined. */
  methodArity(path: string): number | undefined {
    const segs = path.replace(/^\\/, '').split('.').filter((s) => s !== '');
    let node: DeclNode | undefined = this.root;
    for (const s of segs) node = node?.child(s.toUpperCase().padEnd(4, '_'));
    if (node === undefined) return undefined;
    const a = this.arityOf(node);
    return a >= 0 ? a : undefined;
  }
}
