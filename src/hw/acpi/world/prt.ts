import * as b from '../aml/builder.js';
import { nameString } from '../aml/names.js';
import type { Term } from '../aml/terms.js';
import { interruptModelFlags } from '../namespace/evaluate.js';
import type { AcpiNamespace, NsNode } from '../namespace/namespace.js';
import { readPrt } from '../namespace/prt.js';
import type { PrtRouteSpec, RewritePrtRule, RuleProblem } from './rules.js';
import { rootBridges } from './select.js';

/**
 * rewrite-prt: a host bridge's _PRT replaced by one made for the guest's PCI topology. Routes
 * that give only GSIs make a static `Name (_PRT, Package …)`; routes that give link devices
 * only, a static table through the links (used in both interrupt models, as on QEMU's pc);
 * routes that give both, a method returning the GSI table when the OS chose the APIC model
 * (the flag \_PIC stores its argument in) and the link table otherwise. The old _PRT is
 * replaced where it was declared; a bridge without one gets it appended to its body.
 */

export interface PrtEdit {
  readonly bridge: NsNode;
  /** Old _PRT declarations and what replaces them (empty when the bridge had none). */
  readonly replace: ReadonlyMap<Term, Term>;
  /** When the bridge had no _PRT: its Device term and the same term with _PRT appended. */
  readonly append?: { readonly device: Term; readonly with: Term };
  readonly summary: string;
}

/** `(device << 16) | 0xFFFF`: every function of the slot. */
export function prtAddress(device: number): number {
  return ((device << 16) | 0xffff) >>> 0;
}

export function prtPackage(routes: readonly PrtRouteSpec[], use: 'gsi' | 'link', links: ReadonlyMap<string, string>): Term {
  return b.pkg(
    ...routes.map((r) =>
      use === 'gsi' ? b.pkg(b.int(prtAddress(r.device)), r.pin, 0, r.gsi!) : b.pkg(b.int(prtAddress(r.device)), r.pin, b.ref(links.get(r.link!)!), 0),
    ),
  );
}

function pickBridge(ns: AcpiNamespace, rule: RewritePrtRule, problems: RuleProblem[]): NsNode | undefined {
  if (rule.bridge !== undefined) {
    const n = ns.get(rule.bridge);
    if (n?.kind !== 'Device') {
      problems.push({ path: `${rule.path}.bridge`, message: n === undefined ? `no object ${rule.bridge} in the tables` : `${n.path} is a ${n.kind}, not a Device` });
      return undefined;
    }
    return n;
  }
  const roots = rootBridges(ns);
  const bus0 = roots.filter((r) => (r.segment ?? 0) === 0 && (r.bus ?? 0) === 0);
  if (roots.length === 1) return roots[0]!.node;
  if (bus0.length === 1) return bus0[0]!.node;
  problems.push({
    path: rule.path,
    message: roots.length === 0 ? 'the tables have no PCI host bridge (PNP0A03/PNP0A08)' : `several host bridges (${roots.map((r) => r.node.path).join(', ')}): say which with bridge`,
  });
  return undefined;
}

export function rewritePrt(ns: AcpiNamespace, rule: RewritePrtRule, problems: RuleProblem[]): PrtEdit | undefined {
  const start = problems.length;
  const bridge = pickBridge(ns, rule, problems);
  if (bridge === undefined) return undefined;
  if (rule.routes.length === 0) problems.push({ path: `${rule.path}.routes`, message: 'no routes: a _PRT needs at least one entry' });
  const seen = new Map<string, number>();
  const links = new Map<string, string>();
  rule.routes.forEach((r, i) => {
    const at = `${rule.path}.routes[${i}]`;
    if (!Number.isInteger(r.device) || r.device < 0 || r.device > 31) problems.push({ path: `${at}.device`, message: `device ${r.device} is not 0-31` });
    if (!Number.isInteger(r.pin) || r.pin < 0 || r.pin > 3) problems.push({ path: `${at}.pin`, message: `pin ${r.pin} is not 0-3 (INTA-INTD)` });
    const key = `${r.device}/${r.pin}`;
    if (seen.has(key)) problems.push({ path: at, message: `slot ${r.device} pin ${'ABCD'[r.pin] ?? r.pin} is already routed by routes[${seen.get(key)}]` });
    seen.set(key, i);
    if (r.gsi === undefined && r.link === undefined) problems.push({ path: at, message: 'give a gsi, a link, or both' });
    if (r.gsi !== undefined && (!Number.isInteger(r.gsi) || r.gsi < 0 || r.gsi > 0xffffffff)) problems.push({ path: `${at}.gsi`, message: `${r.gsi} is not a GSI` });
    if (r.link !== undefined && !links.has(r.link)) {
      let node: NsNode | undefined;
      try {
        node = ns.resolve(nameString(r.link), bridge);
      } catch {
        node = undefined;
      }
      if (node?.kind !== 'Device') problems.push({ path: `${at}.link`, message: node === undefined ? `no link device ${r.link} in the tables` : `${node.path} is a ${node.kind}, not a link Device` });
      else links.set(r.link, node.path);
    }
  });
  const withGsi = rule.routes.filter((r) => r.gsi !== undefined).length;
  const withLink = rule.routes.filter((r) => r.link !== undefined).length;
  const both = withGsi === rule.routes.length && withLink === rule.routes.length;
  if (!both && withGsi > 0 && withLink > 0) {
    problems.push({ path: `${rule.path}.routes`, message: 'mixed routes: give every route a gsi and a link (APIC and PIC tables), or every route the same one of them' });
  }
  if (problems.length > start) return undefined;

  let prt: Term;
  let shape: string;
  if (both) {
    let flag = rule.flag;
    if (flag === undefined) {
      const old = readPrt(ns, bridge);
      flag = old?.kind === 'by-model' ? old.flags[0] : [...interruptModelFlags(ns)][0]?.path;
    }
    if (flag === undefined) {
      problems.push({ path: rule.path, message: 'routes give both GSIs and links, but no flag tells the interrupt model (\\_PIC stores its argument nowhere): name it with flag' });
      return undefined;
    }
    const flagNode = ns.get(flag);
    if (flagNode === undefined) {
      problems.push({ path: `${rule.path}.flag`, message: `no object ${flag} in the tables` });
      return undefined;
    }
    prt = b.method('_PRT', 0, [b.ifElse(b.ref(flagNode.path), [b.ret(prtPackage(rule.routes, 'gsi', links))], [b.ret(prtPackage(rule.routes, 'link', links))])]);
    shape = `a method choosing by ${flagNode.path}: GSIs in APIC mode, links in PIC mode`;
  } else {
    prt = b.name('_PRT', prtPackage(rule.routes, withGsi > 0 ? 'gsi' : 'link', links));
    shape = withGsi > 0 ? 'static GSIs' : 'static, through link devices';
  }

  const node = bridge.children.get('_PRT');
  const replace = new Map<Term, Term>();
  if (node !== undefined) {
    for (const t of [node.term, ...node.redeclarations.map((r) => r.term)]) if (t !== undefined && t.kind !== 'External') replace.set(t, prt);
  }
  const summary = `${bridge.path}._PRT: ${rule.routes.length} entr${rule.routes.length === 1 ? 'y' : 'ies'}, ${shape}`;
  if (replace.size > 0) return { bridge, replace, summary };
  const device = bridge.term;
  if (device?.kind !== 'Device') {
    problems.push({ path: rule.path, message: `${bridge.path} has no _PRT and no Device declaration to add one to` });
    return undefined;
  }
  return { bridge, replace, append: { device, with: { ...device, body: [...device.body, prt] } }, summary: `${summary} (added)` };
}
