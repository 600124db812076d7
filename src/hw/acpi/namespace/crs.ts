import type { Term } from '../aml/terms.js';
import { visitTerms } from '../aml/walk.js';
import { decodeResources } from '../resources/codec.js';
import type { ResourceTemplate } from '../resources/types.js';
import { evaluateStatements, NotStatic } from './evaluate.js';
import type { AcpiNamespace, NsNode } from './namespace.js';

/**
 * A device's resource settings (_CRS, or _PRS for the possible ones) as typed resources.
 *
 * Most _CRS objects are either a Name holding a ResourceTemplate, or a method that fills in
 * fields of a template (CreateDWordField + Store) and returns it. The second kind is read as
 * the template it starts from: `patched` says the method changes it at run time.
 */
export type ResourceSettings =
  | {
      readonly kind: 'template';
      readonly template: ResourceTemplate;
      /** Where the template lives: `\_SB_.PCI0._CRS`, `\_SB_.PCI0.BUF0`, a method for inline ones. */
      readonly from: string;
      /** Returned by a method that may change fields of it before returning. */
      readonly patched: boolean;
    }
  /**
   * A method that returns one of several templates depending on run-time state (each possibly
   * patched): all of them, in the order the method's Returns name them.
   */
  | { readonly kind: 'one-of'; readonly templates: readonly { readonly template: ResourceTemplate; readonly from: string }[] }
  | { readonly kind: 'dynamic'; readonly reason: string };

/** Reads a device's `_CRS` (or `_PRS`, `_SRS`'s template...); undefined when it has none. */
export function readResources(ns: AcpiNamespace, device: NsNode | string, object = '_CRS'): ResourceSettings | undefined {
  const dev = typeof device === 'string' ? ns.get(device) : device;
  const node = dev?.children.get(object.padEnd(4, '_'));
  if (node === undefined) return undefined;
  const target = ns.deref(node);
  const t = target?.term;
  if (t?.kind === 'Name') {
    if (t.value.kind !== 'Buffer') return { kind: 'dynamic', reason: `${node.path} holds a ${t.value.kind}` };
    return { kind: 'template', template: decodeResources(t.value.data, { input: node.path }), from: target!.path, patched: false };
  }
  if (t?.kind !== 'Method' || target === undefined) return { kind: 'dynamic', reason: `${node.path} is a ${target?.kind ?? 'missing object'}` };
  const ctx = { ns, flags: new Set<NsNode>(), flagValue: 0n, anyNameIsFlag: false, tested: new Set<NsNode>() };
  // What each Return gives, ignoring the statements that patch it on the way.
  const returned = (ret: Term): { template: ResourceTemplate; from: string } => {
    const v = evaluateStatements(ctx, target, [ret], t.body);
    if (v.term.kind !== 'Buffer') throw new NotStatic(`${node.path} returns a ${v.term.kind}`);
    return { template: decodeResources(v.term.data, { input: v.from }), from: v.from };
  };
  try {
    const top = t.body.filter((s) => s.kind === 'Return');
    const last = top[top.length - 1];
    if (last !== undefined && top.length === 1 && !t.body.some((s) => s.kind === 'If' || s.kind === 'While')) {
      const patched = t.body.some((s) => s.kind !== 'Name' && s.kind !== 'Return');
      return { kind: 'template', ...returned(last), patched };
    }
    const all: Term[] = [];
    visitTerms(t.body, (x) => {
      if (x.kind === 'Return') all.push(x);
      return x.kind !== 'Return';
    });
    if (all.length === 0) return { kind: 'dynamic', reason: `${node.path} returns nothing` };
    const templates = new Map<string, { template: ResourceTemplate; from: string }>();
    for (const r of all) {
      const v = returned(r);
      if (!templates.has(v.from)) templates.set(v.from, v);
    }
    return { kind: 'one-of', templates: [...templates.values()] };
  } catch (err) {
    if (err instanceof NotStatic) return { kind: 'dynamic', reason: err.message };
    throw err;
  }
}
