import { nameString } from '../aml/names.js';
import type { Term } from '../aml/terms.js';
import { evaluateMethod, interruptModelFlags, NotStatic, type EvalContext, type StaticValue } from './evaluate.js';
import type { AcpiNamespace, NsNode } from './namespace.js';

/**
 * _PRT, the PCI interrupt routing table of a host bridge or PCI-PCI bridge (ACPI 6.5 section
 * 6.2.13): for each device and INTx pin, either a GSI (APIC mode) or a link device whose
 * _CRS/_SRS picks an ISA IRQ (PIC mode).
 */

export type PrtSource =
  /** Source 0: the pin is wired to this global system interrupt. */
  | { readonly kind: 'gsi'; readonly gsi: number }
  /** A link device (`\_SB_.LNKA`); `index` is the resource index within it (usually 0). */
  | { readonly kind: 'link'; readonly path: string; readonly index: number; readonly device: NsNode | undefined };

export interface PrtEntry {
  /** _PRT Address: device number in the high word, 0xFFFF (any function) in the low. */
  readonly address: number;
  readonly device: number;
  /** `any` for 0xFFFF, else a function number. */
  readonly function: number | 'any';
  /** 0 INTA, 1 INTB, 2 INTC, 3 INTD. */
  readonly pin: number;
  readonly source: PrtSource;
}

export interface PrtTable {
  readonly entries: readonly PrtEntry[];
  /** Where the package lives: `\_SB_.AR00`, or the method that returns it inline. */
  readonly from: string;
}

export type PrtRouting =
  /** One table whatever the interrupt model (a Name, or a method with no choice in it). */
  | ({ readonly kind: 'static' } & PrtTable)
  /**
   * A method choosing by the interrupt model: `apic` is what it returns after _PIC(1),
   * `pic` after _PIC(0); `flags` are the objects its conditions tested (`\PICM`).
   */
  | { readonly kind: 'by-model'; readonly flags: readonly string[]; readonly apic: PrtTable; readonly pic: PrtTable }
  /** A method that computes its table (arithmetic, calls with arguments...). */
  | { readonly kind: 'dynamic'; readonly reason: string };

/** Reads `bridge`'s _PRT; undefined when it has none. */
export function readPrt(ns: AcpiNamespace, bridge: NsNode | string): PrtRouting | undefined {
  const dev = typeof bridge === 'string' ? ns.get(bridge) : bridge;
  const prt = dev?.children.get('_PRT');
  if (prt === undefined) return undefined;
  const target = ns.deref(prt);
  try {
    if (target?.term?.kind === 'Name') {
      return { kind: 'static', ...table(ns, { term: target.term.value, scope: target.parent ?? target, from: target.path }) };
    }
    if (target?.term?.kind !== 'Method') return { kind: 'dynamic', reason: `${prt.path} is a ${target?.kind ?? 'missing object'}` };
    const flags = interruptModelFlags(ns);
    const run = (flagValue: bigint): [StaticValue, EvalContext] => {
      const ctx: EvalContext = { ns, flags, flagValue, anyNameIsFlag: true, tested: new Set() };
      return [evaluateMethod(ctx, target), ctx];
    };
    const [apic, apicCtx] = run(1n);
    const [pic, picCtx] = run(0n);
    const tested = new Set([...apicCtx.tested, ...picCtx.tested]);
    if (tested.size === 0 || apic.term === pic.term) return { kind: 'static', ...table(ns, apic) };
    return { kind: 'by-model', flags: [...tested].map((n) => n.path).sort(), apic: table(ns, apic), pic: table(ns, pic) };
  } catch (err) {
    if (err instanceof NotStatic) return { kind: 'dynamic', reason: err.message };
    throw err;
  }
}

function table(ns: AcpiNamespace, v: StaticValue): PrtTable {
  const pkg = v.term;
  if (pkg.kind !== 'Package' && pkg.kind !== 'VarPackage') throw new NotStatic(`${v.from} is a ${pkg.kind}, not a package`);
  return { entries: pkg.elements.map((e, i) => entry(ns, e, v, i)), from: v.from };
}

function int(t: Term | undefined, what: string, v: StaticValue, i: number): number {
  if (t?.kind !== 'Integer' || t.value > 0xffff_ffffn) throw new NotStatic(`${v.from}[${i}]: ${what} is not a 32-bit constant`);
  return Number(t.value);
}

function entry(ns: AcpiNamespace, e: Term, v: StaticValue, i: number): PrtEntry {
  if (e.kind !== 'Package' || e.elements.length < 4) throw new NotStatic(`${v.from}[${i}] is not a 4-element package`);
  const [a, p, s, x] = e.elements;
  const address = int(a, 'address', v, i);
  const pin = int(p, 'pin', v, i);
  const index = int(x, 'source index', v, i);
  let source: PrtSource;
  if (s?.kind === 'Integer') {
    source = { kind: 'gsi', gsi: index };
  } else if (s?.kind === 'NamePath' || s?.kind === 'String') {
    const name = s.kind === 'NamePath' ? s.name : nameString(s.value);
    const device = ns.resolve(name, v.scope);
    const path = device?.path ?? (s.kind === 'String' ? s.value : name.segs.join('.'));
    source = { kind: 'link', path, index, device };
  } else {
    throw new NotStatic(`${v.from}[${i}]: source is a ${s?.kind ?? 'missing element'}`);
  }
  const low = address & 0xffff;
  return { address, device: address >>> 16, function: low === 0xffff ? 'any' : low, pin, source };
}
