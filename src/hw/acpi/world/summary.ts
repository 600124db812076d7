import type { AcpiNamespace, NsNode } from '../namespace/namespace.js';
import { readResources, type ResourceSettings } from '../namespace/crs.js';
import { readPrt, type PrtRouting, type PrtTable } from '../namespace/prt.js';
import type { Resource } from '../resources/types.js';
import { toJsonValue, type JsonValue } from '../tables/present.js';
import { rootBridges } from './select.js';
import { isDefinitionBlock, tableLabel, worldNamespace, type World } from './tables.js';

/**
 * What a DSDT or SSDT declares, for `hvmpt acpi decode`: its devices with their ids and
 * addresses, its methods with their argument counts, and for each PCI host bridge its _PRT
 * and _CRS. Read from the namespace all the tables build together, attributed to the table
 * that declares each object.
 */

export interface DeviceSummary {
  readonly path: string;
  readonly hid?: string;
  readonly cids: readonly string[];
  readonly adr?: number;
  readonly uid?: number | string;
}

export interface BridgeSummary {
  readonly path: string;
  readonly segment?: number;
  readonly bus?: number;
  readonly prt?: PrtRouting;
  readonly crs?: ResourceSettings;
}

export interface AmlSummary {
  readonly table: string;
  readonly devices: readonly DeviceSummary[];
  readonly methods: readonly { readonly path: string; readonly args: number }[];
  readonly bridges: readonly BridgeSummary[];
  /** Objects of each other kind the table declares. */
  readonly counts: Readonly<Record<string, number>>;
  readonly error?: string;
}

function device(ns: AcpiNamespace, n: NsNode): DeviceSummary {
  const hid = ns.hid(n);
  const adr = ns.adr(n);
  const uid = ns.uid(n);
  return { path: n.path, ...(hid === undefined ? {} : { hid }), cids: ns.cids(n), ...(adr === undefined ? {} : { adr }), ...(uid === undefined ? {} : { uid }) };
}

/** A summary per definition block of the world, in its table order. */
export function summarizeAml(world: World): AmlSummary[] {
  const ns = worldNamespace(world);
  const bridges = rootBridges(ns);
  const byTable = new Map<string, NsNode[]>();
  for (const n of ns.nodes()) {
    if (n.table === undefined || n.kind === 'External') continue;
    const list = byTable.get(n.table);
    if (list === undefined) byTable.set(n.table, [n]);
    else list.push(n);
  }
  return world.tables.filter(isDefinitionBlock).map((t) => {
    const label = tableLabel(t);
    if (t.amlError !== undefined) return { table: label, devices: [], methods: [], bridges: [], counts: {}, error: t.amlError.message };
    const nodes = byTable.get(label) ?? [];
    const counts: Record<string, number> = {};
    for (const n of nodes) if (n.kind !== 'Device' && n.kind !== 'Method') counts[n.kind] = (counts[n.kind] ?? 0) + 1;
    return {
      table: label,
      devices: nodes.filter((n) => n.kind === 'Device').map((n) => device(ns, n)),
      methods: nodes.filter((n) => n.kind === 'Method').map((n) => ({ path: n.path, args: ns.argCount(n) ?? 0 })),
      bridges: bridges
        .filter((b) => b.node.table === label)
        .map((b) => {
          let prt: PrtRouting | undefined;
          let crs: ResourceSettings | undefined;
          try {
            prt = readPrt(ns, b.node);
          } catch (err) {
            prt = { kind: 'dynamic', reason: (err as Error).message };
          }
          try {
            crs = readResources(ns, b.node, '_CRS');
          } catch (err) {
            crs = { kind: 'dynamic', reason: (err as Error).message };
          }
          return {
            path: b.node.path,
            ...(b.segment === undefined ? {} : { segment: b.segment }),
            ...(b.bus === undefined ? {} : { bus: b.bus }),
            ...(prt === undefined ? {} : { prt }),
            ...(crs === undefined ? {} : { crs }),
          };
        }),
      counts,
    };
  });
}

const hex = (v: number | bigint, digits = 0): string => '0x' + v.toString(16).padStart(digits, '0');

/** One resource descriptor as a short line: `DWordMemory 0xc0000000-0xfebfffff noncacheable`. */
export function formatResource(r: Resource): string {
  switch (r.type) {
    case 'AddressSpace':
    case 'ExtendedAddressSpace': {
      const width = r.type === 'ExtendedAddressSpace' ? 'Extended' : r.width === 16 ? 'Word' : r.width === 32 ? 'DWord' : 'QWord';
      const kind = r.space.kind === 'bus' ? 'BusNumber' : r.space.kind === 'io' ? 'IO' : r.space.kind === 'memory' ? 'Memory' : 'Space';
      const extra = r.space.kind === 'memory' ? ` ${r.space.caching}` : '';
      return `${width}${kind} ${hex(r.min)}-${hex(r.max)}${extra}${r.producer ? '' : ' (consumer)'}${r.translation !== 0n ? ` translation ${hex(r.translation)}` : ''}`;
    }
    case 'Io':
      return `IO ${hex(r.min, 4)}-${hex(r.max, 4)} length ${r.length}`;
    case 'FixedIo':
      return `FixedIO ${hex(r.base, 4)} length ${r.length}`;
    case 'Memory32':
      return `Memory32 ${hex(r.min)}-${hex(r.max)} length ${hex(r.length)}`;
    case 'FixedMemory32':
      return `Memory32Fixed ${hex(r.base)} length ${hex(r.length)}`;
    case 'Memory24':
      return `Memory24 ${hex(r.min << 8)}-${hex(r.max << 8)}`;
    case 'Irq':
      return `IRQ {${r.interrupts.join(',')}}`;
    case 'ExtendedInterrupt':
      return `Interrupt {${r.interrupts.join(',')}}${r.mode.edge ? ' edge' : ' level'}${r.mode.activeLow ? ' low' : ' high'}`;
    case 'Dma':
      return `DMA {${r.channels.join(',')}}`;
    default:
      return r.type;
  }
}

function prtTableLines(t: PrtTable, indent: string): string[] {
  return t.entries.map((e) => {
    const fn = e.function === 'any' ? '*' : String(e.function);
    const src = e.source.kind === 'gsi' ? `GSI ${e.source.gsi}` : `${e.source.path}${e.source.index === 0 ? '' : `[${e.source.index}]`}`;
    return `${indent}${e.device.toString(16).padStart(2, '0')}.${fn} INT${'ABCD'[e.pin] ?? e.pin} -> ${src}`;
  });
}

/** The text `acpi decode` prints for one definition block. */
export function formatAmlSummary(s: AmlSummary, indent = '  '): string {
  if (s.error !== undefined) return `${indent}AML: does not parse: ${s.error}`;
  const out: string[] = [];
  const counts = Object.entries(s.counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  out.push(`${indent}namespace: ${s.devices.length} device(s), ${s.methods.length} method(s)${counts === '' ? '' : `, ${counts}`}`);
  for (const b of s.bridges) {
    out.push(`${indent}host bridge ${b.path} (segment ${b.segment ?? '?'}, bus ${b.bus === undefined ? '?' : hex(b.bus, 2)})`);
    if (b.crs === undefined) out.push(`${indent}  _CRS: none`);
    else if (b.crs.kind === 'template') {
      out.push(`${indent}  _CRS (${b.crs.from}${b.crs.patched ? ', patched at run time' : ''}):`);
      for (const r of b.crs.template.resources) out.push(`${indent}    ${formatResource(r)}`);
    } else if (b.crs.kind === 'one-of') {
      out.push(`${indent}  _CRS: one of ${b.crs.templates.length} templates (${b.crs.templates.map((t) => t.from).join(', ')})`);
    } else out.push(`${indent}  _CRS: computed at run time (${b.crs.reason})`);
    const p = b.prt;
    if (p === undefined) out.push(`${indent}  _PRT: none`);
    else if (p.kind === 'static') out.push(`${indent}  _PRT (${p.from}): ${p.entries.length} entries`, ...prtTableLines(p, `${indent}    `));
    else if (p.kind === 'by-model') {
      out.push(`${indent}  _PRT by interrupt model (${p.flags.join(', ')}):`);
      out.push(`${indent}    APIC (${p.apic.from}): ${p.apic.entries.length} entries`, ...prtTableLines(p.apic, `${indent}      `));
      out.push(`${indent}    PIC (${p.pic.from}): ${p.pic.entries.length} entries`, ...prtTableLines(p.pic, `${indent}      `));
    } else out.push(`${indent}  _PRT: computed at run time (${p.reason})`);
  }
  if (s.devices.length > 0) out.push(`${indent}devices:`);
  for (const d of s.devices) {
    const ids = [d.hid === undefined ? '' : `_HID ${d.hid}`, d.cids.length === 0 ? '' : `_CID ${d.cids.join(',')}`, d.adr === undefined ? '' : `_ADR ${hex(d.adr, 8)}`, d.uid === undefined ? '' : `_UID ${d.uid}`]
      .filter((x) => x !== '')
      .join('  ');
    out.push(`${indent}  ${d.path}${ids === '' ? '' : `  ${ids}`}`);
  }
  if (s.methods.length > 0) out.push(`${indent}methods:`);
  for (const m of s.methods) out.push(`${indent}  ${m.path} (${m.args})`);
  return out.join('\n');
}

/** The summary as JSON-ready data (link devices by path; numbers and bigints as hvmpt writes them). */
export function amlSummaryJson(s: AmlSummary): JsonValue {
  const prtTable = (t: PrtTable): JsonValue =>
    toJsonValue({
      from: t.from,
      entries: t.entries.map((e) => ({
        device: e.device,
        function: e.function,
        pin: e.pin,
        source: e.source.kind === 'gsi' ? { gsi: e.source.gsi } : { link: e.source.path, index: e.source.index },
      })),
    });
  const prt = (p: PrtRouting | undefined): JsonValue => {
    if (p === undefined) return null;
    if (p.kind === 'static') return { kind: 'static', ...(prtTable(p) as { [k: string]: JsonValue }) };
    if (p.kind === 'by-model') return { kind: 'by-model', flags: [...p.flags], apic: prtTable(p.apic), pic: prtTable(p.pic) };
    return { kind: 'dynamic', reason: p.reason };
  };
  return toJsonValue({
    table: s.table,
    ...(s.error === undefined ? {} : { error: s.error }),
    counts: s.counts,
    devices: s.devices,
    methods: s.methods,
    bridges: s.bridges.map((b) => ({ path: b.path, segment: b.segment, bus: b.bus, crs: b.crs === undefined ? null : toJsonValue(b.crs), prt: prt(b.prt) })),
  });
}
