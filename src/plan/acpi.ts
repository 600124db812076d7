/**
 * The plan's `acpi` section: world-view rules applied to a machine's tables
 * (`hvmpt acpi rewrite`), and what the guest's own tables say beyond what the monitor and the
 * PCI section decide (`hvmpt acpi generate`). YAML or JSON; every error names the path of the
 * bad field (`acpi.rules[2].pci`). Other top-level sections are accepted; `pci` is read for
 * the functions it hides (they are hidden from the tables too) and the bus it composes.
 *
 * ```yaml
 * acpi:
 *   rules:
 *     - { action: hide-table, signature: DMAR }
 *     - { action: hide-device, pci: "00:1f.3", references: neutralize }
 *     - { action: hide-device, hid: PNP0C09 }
 *     - { action: replace-method, method: \_SB.PCI0.GFX0._DSM, body: [{ return: 0 }] }
 *     - { action: replace-method, method: \_SB.PCI0._OSC, aml: osc.aml }
 *     - { action: patch-method, method: \_SB.PCI0._INI, prepend: [{ store: 1, to: { ref: \GUES } }] }
 *     - { action: add-ssdt, aml: extra.aml }
 *     - action: add-ssdt
 *       oemTableId: HVMDEV
 *       body: [{ scope: \_SB, body: [{ device: HVM0, hid: HVM0001, uid: 0, sta: 0x0F }] }]
 *     - { action: rewrite-prt, routes: [{ device: 3, pin: A, gsi: 16 }] }
 *     - { action: rewrite-prt, fromPci: {} }
 *   pciHidden: { references: neutralize }
 *   generate:
 *     cpus: 2
 *     oem: { oemId: BOCHS, dsdtTableId: BXPC }
 *     ssdts: [{ aml: extra.aml }]
 * ```
 */
import { z } from 'zod';
import { GuestFactsError, piixPirq, type GuestAcpiFacts, type SsdtFact } from '../hw/acpi/generate/facts.js';
import { generateGuestTables, type GeneratedTables } from '../hw/acpi/generate/generate.js';
import { pciFactsFromTopology } from '../hw/acpi/generate/pci.js';
import { BINARY_OPS, EXTERNAL_TYPES, type ResourceSpec, type StatementSpec, type ValueSpec } from '../hw/acpi/world/spec.js';
import { formatPciPath } from '../hw/acpi/world/select.js';
import type { PrtRouteSpec, WorldRule } from '../hw/acpi/world/rules.js';
import { formatBdf } from '../hw/pci/address.js';
import { DEFAULT_WINDOWS, type GuestWindows } from '../hw/pci/allocator.js';
import type { Capture } from '../hw/pci/capture.js';
import { composePci, type ComposedPci, type PlacedEmulated } from '../hw/pci/compose.js';
import { intxRoutes } from '../hw/pci/intx.js';
import type { PlanFiles } from './files.js';
import { PlanError, type PlanProblem } from './load.js';
import { sizeSchema } from './memory.js';
import { PciSectionSchema, pciComposeInput } from './pci.js';
import { uint } from './scalars.js';

// ---------------------------------------------------------------- scalars


/** A 64-bit address: a number, "0x…", or a size such as "4G" (the memory section's parser). */
const address = sizeSchema;

/** An ACPI path as ASL writes it: `\_SB.PCI0.LPCB`, `_SB.PCI0`, `^LNKA`. */
const aclPath = z.string().regex(/^(\\|\^*)?([A-Za-z_][A-Za-z0-9_]{0,3})(\.[A-Za-z_][A-Za-z0-9_]{0,3})*$/, 'expected an ACPI path like \\_SB.PCI0.LPCB (segments of 1-4 letters, digits or _)');
const absolutePath = z
  .string()
  .regex(/^\\?([A-Za-z_][A-Za-z0-9_]{0,3})(\.[A-Za-z_][A-Za-z0-9_]{0,3})*$/, 'expected an absolute ACPI path like \\_SB.PCI0.LPCB')
  .transform((p) => (p.startsWith('\\') ? p : `\\${p}`));
const pinSchema = z
  .union([z.enum(['A', 'B', 'C', 'D']), z.number().int().min(0).max(3)], { error: 'expected a pin: A, B, C, D (or 0-3)' })
  .transform((p) => (typeof p === 'number' ? p : 'ABCD'.indexOf(p)));

// ---------------------------------------------------------------- AML as data

/**
 * A value that is one of several objects told apart by a key (`{device: …}`, `{return: …}`):
 * the variant is picked by the key it has, so an error inside it is reported at its own path
 * (`body[0].crs[1].io.min`) instead of "matches none of the shapes".
 */
function byKey<T>(variants: ReadonlyArray<readonly [string, z.ZodType<T, unknown>]>, what: string, primitive?: z.ZodType<T, unknown>): z.ZodType<T, unknown> {
  return z.unknown().transform((v, ctx): T => {
    const forward = (r: { success: true; data: T } | { success: false; error: z.ZodError }): T => {
      if (r.success) return r.data;
      for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return z.NEVER;
    };
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const hit = variants.find(([k]) => Object.hasOwn(v, k));
      if (hit !== undefined) return forward(hit[1].safeParse(v));
    } else if (primitive !== undefined) {
      const r = primitive.safeParse(v);
      if (r.success) return r.data;
    }
    ctx.addIssue({ code: 'custom', message: `expected ${what}` });
    return z.NEVER;
  });
}

const intValue = z.union([z.number().int().nonnegative(), z.bigint().nonnegative()]);
const flags = { edge: z.boolean().optional(), activeLow: z.boolean().optional(), shared: z.boolean().optional() };

const resourceSpec: z.ZodType<ResourceSpec, unknown> = byKey<ResourceSpec>(
  [
    ['io', z.strictObject({ io: z.strictObject({ min: uint(16), max: uint(16).optional(), alignment: uint(8).optional(), length: uint(8), decode10: z.boolean().optional() }) })],
    ['fixedIo', z.strictObject({ fixedIo: z.strictObject({ base: uint(10), length: uint(8) }) })],
    ['irq', z.strictObject({ irq: z.array(z.number().int().min(0).max(15)), ...flags })],
    ['interrupt', z.strictObject({ interrupt: z.array(uint(32)).min(1), ...flags })],
    ['memory32Fixed', z.strictObject({ memory32Fixed: z.strictObject({ base: uint(32), length: uint(32), writable: z.boolean().optional() }) })],
  ],
  'a resource: {io: {min, length}}, {fixedIo: {base, length}}, {irq: [n]}, {interrupt: [gsi]} or {memory32Fixed: {base, length}}',
);

const valueSpec: z.ZodType<ValueSpec, unknown> = z.lazy(() =>
  byKey<ValueSpec>(
    [
      ['eisaId', z.strictObject({ eisaId: z.string().regex(/^[A-Z]{3}[0-9A-F]{4}$/, 'expected an EISA id like PNP0A03') })],
      ['ref', z.strictObject({ ref: aclPath })],
      ['call', z.strictObject({ call: aclPath, args: z.array(valueSpec).max(7).optional() })],
      ['package', z.strictObject({ package: z.array(valueSpec) })],
      ['buffer', z.strictObject({ buffer: z.array(z.number().int().min(0).max(255)) })],
      ['resources', z.strictObject({ resources: z.array(resourceSpec) })],
      ['arg', z.strictObject({ arg: z.number().int().min(0).max(6) })],
      ['local', z.strictObject({ local: z.number().int().min(0).max(7) })],
      ['op', z.strictObject({ op: z.enum(BINARY_OPS), args: z.tuple([valueSpec, valueSpec]) })],
      ['lNot', z.strictObject({ lNot: valueSpec })],
    ],
    'a value: a number, a string, or {eisaId}, {ref}, {call, args}, {package}, {buffer}, {resources}, {arg}, {local}, {op, args}, {lNot}',
    z.union([intValue, z.string()]),
  ),
);

const statementSpec: z.ZodType<StatementSpec, unknown> = z.lazy(() =>
  byKey<StatementSpec>(
    [
      [
        'device',
        z.strictObject({
          device: aclPath,
          hid: z.string().min(1).optional(),
          cid: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
          uid: z.union([z.number().int().nonnegative(), z.string()]).optional(),
          adr: uint(32).optional(),
          sta: uint(8).optional(),
          crs: z.array(resourceSpec).optional(),
          body: z.array(statementSpec).optional(),
        }),
      ],
      ['method', z.strictObject({ method: aclPath, args: z.number().int().min(0).max(7).optional(), serialized: z.boolean().optional(), body: z.array(statementSpec) })],
      ['scope', z.strictObject({ scope: aclPath, body: z.array(statementSpec) })],
      ['external', z.strictObject({ external: aclPath, type: z.enum(Object.keys(EXTERNAL_TYPES) as [keyof typeof EXTERNAL_TYPES]), args: z.number().int().min(0).max(7).optional() })],
      ['if', z.strictObject({ if: valueSpec, then: z.array(statementSpec), else: z.array(statementSpec).optional() })],
      ['return', z.strictObject({ return: valueSpec })],
      ['store', z.strictObject({ store: valueSpec, to: valueSpec })],
      ['notify', z.strictObject({ notify: aclPath, value: uint(8) })],
      ['call', z.strictObject({ call: aclPath, args: z.array(valueSpec).max(7).optional() })],
      ['sleep', z.strictObject({ sleep: uint(16) })],
      ['name', z.strictObject({ name: aclPath, value: valueSpec })],
    ],
    'a statement: {return}, {store, to}, {notify, value}, {if, then, else}, {call, args}, {sleep}, {name, value}, {method, args, body}, {device, hid, cid, uid, adr, sta, crs, body}, {scope, body} or {external, type}',
  ),
);

// ---------------------------------------------------------------- rules

const references = z.enum(['refuse', 'neutralize', 'keep']);

const hideTable = z.strictObject({
  action: z.literal('hide-table'),
  signature: z.string().min(1).max(4).optional(),
  oemId: z.string().max(6).optional(),
  oemTableId: z.string().max(8).optional(),
  optional: z.boolean().optional(),
  references: references.optional(),
});

const hideDevice = z.strictObject({
  action: z.literal('hide-device'),
  path: absolutePath.optional(),
  hid: z.string().min(1).optional(),
  adr: uint(32).optional(),
  under: absolutePath.optional(),
  pci: z.string().min(1).optional(),
  optional: z.boolean().optional(),
  references: z.enum(['refuse', 'neutralize']).optional(),
});

const replaceMethod = z.strictObject({
  action: z.literal('replace-method'),
  method: absolutePath,
  body: z.array(statementSpec).optional(),
  /** A compiled .aml table holding the new method (relative to the plan file). */
  aml: z.string().min(1).optional(),
  /** Which method of that table, when it holds several. */
  from: absolutePath.optional(),
});

const patchMethod = z.strictObject({
  action: z.literal('patch-method'),
  method: absolutePath,
  prepend: z.array(statementSpec).optional(),
  append: z.array(statementSpec).optional(),
});

const addSsdt = z.strictObject({
  action: z.literal('add-ssdt'),
  aml: z.string().min(1).optional(),
  oemId: z.string().max(6).optional(),
  oemTableId: z.string().max(8).optional(),
  oemRevision: uint(32).optional(),
  body: z.array(statementSpec).optional(),
});

const route = z.strictObject({ device: z.number().int().min(0).max(31), pin: pinSchema, gsi: uint(32).optional(), link: aclPath.optional() });

const rewritePrt = z.strictObject({
  action: z.literal('rewrite-prt'),
  bridge: absolutePath.optional(),
  routes: z.array(route).optional(),
  /** Routes from the plan's `pci` section: each root slot pin in use, its GSI as the monitor's PIIX3 routes it. */
  fromPci: z.strictObject({ pirqIrqs: z.tuple([uint(4), uint(4), uint(4), uint(4)]).optional() }).optional(),
  flag: absolutePath.optional(),
});

const ruleSchema = z.discriminatedUnion('action', [hideTable, hideDevice, replaceMethod, patchMethod, addSsdt, rewritePrt], {
  error: 'expected a rule with action: hide-table, hide-device, replace-method, patch-method, add-ssdt or rewrite-prt',
});

// ---------------------------------------------------------------- generate

const ssdtEntry = z.union([
  z.strictObject({ aml: z.string().min(1) }),
  z.strictObject({ oemTableId: z.string().max(8).optional(), body: z.array(statementSpec) }),
]);

const generateSchema = z.strictObject({
  /** Default: machine.cpus for the monitor's tables, 1 for `hvmpt acpi generate`. */
  cpus: z.number().int().min(1).max(255).optional(),
  oem: z
    .strictObject({
      oemId: z.string().max(6).optional(),
      oemTableId: z.string().max(8).optional(),
      dsdtTableId: z.string().max(8).optional(),
      oemRevision: uint(32).optional(),
      creatorId: z.string().max(4).optional(),
      creatorRevision: uint(32).optional(),
    })
    .optional(),
  /** The ECAM (MMCONFIG) window; false for none. Default the monitor's 0xB0000000. */
  ecam: z.union([z.literal(false), z.strictObject({ base: address, startBus: uint(8).optional(), endBus: uint(8).optional() })]).optional(),
  pm: z.strictObject({ base: uint(16).optional(), sciIrq: uint(4).optional(), s5SleepType: uint(3).optional() }).optional(),
  reset: z.union([z.literal(false), z.strictObject({ port: uint(16).optional(), value: uint(8).optional() })]).optional(),
  rtc: z.union([z.literal(false), z.strictObject({ century: uint(7).optional() })]).optional(),
  i8042: z.boolean().optional(),
  vga: z.boolean().optional(),
  com1: z.union([z.literal(false), z.strictObject({ port: uint(16).optional(), irq: uint(4).optional() })]).optional(),
  hpet: z.strictObject({ address }).optional(),
  ioApic: z.strictObject({ id: uint(8).optional(), address: uint(32).optional() }).optional(),
  interrupts: z.strictObject({ pirqIrqs: z.tuple([uint(4), uint(4), uint(4), uint(4)]).optional(), linkIrqs: z.array(uint(4)).optional() }).optional(),
  ssdts: z.array(ssdtEntry).optional(),
  layout: z.strictObject({ tablesAddress: address.optional(), rsdpAddress: address.optional() }).optional(),
});

/** A host table, picked by its header (all fields given must match). */
const tableSelector = z.strictObject({
  signature: z.string().min(1).max(4),
  oemId: z.string().max(6).optional(),
  oemTableId: z.string().max(8).optional(),
});

export const AcpiSectionSchema = z.strictObject({
  /**
   * The tables a guest gets on hvmpt's monitor (`hvmpt run`): `generated` (default) is hvmpt's
   * own, made from the machine the monitor emulates; `host` is `machine.acpiTables` rewritten by
   * `rules` (and `pci.hide`), as they are otherwise.
   */
  tables: z.enum(['generated', 'host']).optional(),
  /**
   * With generated tables: host tables (`machine.acpiTables`, after `rules` and `pci.hide`) the
   * guest gets besides hvmpt's own, such as an SSDT with device objects a native driver needs.
   */
  expose: z.array(tableSelector).optional(),
  rules: z.array(ruleSchema).optional(),
  /** How references to the functions `pci.hide` hides are treated when they are hidden from the tables too. */
  pciHidden: z.strictObject({ references: z.enum(['refuse', 'neutralize']).optional() }).optional(),
  generate: generateSchema.optional(),
});

export type AcpiSection = z.output<typeof AcpiSectionSchema>;

export const PlanWithAcpiSchema = z.looseObject({ acpi: AcpiSectionSchema.optional(), pci: PciSectionSchema.optional() });

/** The monitor's ECAM base (QEMU q35's), the default when the plan says nothing. */
export const DEFAULT_ECAM_BASE = 0xb000_0000n;

// ---------------------------------------------------------------- the guest's chipset

/**
 * What sits at 00:00.0 and 00:01.0 on the monitor's bus (the i440FX host bridge and the PIIX3
 * ISA bridge), for composing a plan's bus outside the monitor: the slots are taken and the
 * classes say what the DSDT describes there. The monitor composes with its own chipset models.
 */
export function guestChipsetPlaceholders(): PlacedEmulated[] {
  return [
    { name: 'host-bridge', at: { kind: 'root', segment: 0, bus: 0, device: 0, fn: 0 }, spec: { id: 'host-bridge', vendorId: 0x8086, deviceId: 0x1237, classCode: 0x060000 }, path: 'chipset (00:00.0 host bridge)' },
    { name: 'isa-bridge', at: { kind: 'root', segment: 0, bus: 0, device: 1, fn: 0 }, spec: { id: 'isa-bridge', vendorId: 0x8086, deviceId: 0x7000, classCode: 0x060100, multifunction: true }, path: 'chipset (00:01.0 ISA bridge)' },
  ];
}

export interface LoadedAcpiPlan {
  readonly section: AcpiSection;
  readonly file: string;
  /** The files the plan names, read. */
  readonly files: PlanFiles;
  /** The plan's pci section, composed (on the monitor's chipset, or on `capture`), when it has one. */
  readonly pci?: ComposedPci;
  /** The windows `pci.allocation` places BARs in (the host bridge's windows in a generated DSDT). */
  readonly windows?: GuestWindows;
}

export interface AcpiPlanOptions {
  /** The host capture the PCI section's addresses refer to (for hiding functions behind bridges). */
  readonly capture?: Capture;
}

/** A plan's `acpi` section with its `pci` section composed, if any (src/host/plan/acpi.ts reads one from a file). */
export function acpiPlan(plan: z.output<typeof PlanWithAcpiSchema>, file: string, files: PlanFiles, options: AcpiPlanOptions = {}): LoadedAcpiPlan {
  const section = plan.acpi ?? {};
  if (plan.pci === undefined) return { section, file, files };
  const input = pciComposeInput(plan.pci, { planFile: file, files });
  const pci =
    options.capture === undefined ? composePci({ chipset: guestChipsetPlaceholders(), ...input }, file) : composePci({ base: options.capture, ...input }, file);
  return { section, file, files, pci, ...(input.allocation === undefined ? {} : { windows: input.allocation.windows }) };
}

// ---------------------------------------------------------------- rules

/**
 * The PCI path of each function `pci.hide` hid, through the bridges above it as the capture
 * has them (`00:1c.4/00.0`).
 */
export function hiddenPciPaths(pci: ComposedPci): { path: string; what: string }[] {
  const byFn = new Map(pci.entries.map((e) => [e.fn, e]));
  const out: { path: string; what: string }[] = [];
  for (const e of pci.hidden) {
    if (!pci.topology.isAttached(e.fn)) {
      // A plan device (the monitor's chipset, say) took its slot: name it by its captured address.
      const b = e.capturedBdf;
      if (b !== undefined) out.push({ path: formatPciPath({ segment: b.segment, bus: b.bus, hops: [{ device: b.device, fn: b.fn }] }), what: formatBdf(b) });
      continue;
    }
    const hops: { device: number; fn: number }[] = [];
    let fn = e.fn;
    let bus = pci.topology.busOf(fn);
    hops.unshift({ device: fn.device, fn: fn.fn });
    while (bus.bridge !== null) {
      fn = bus.bridge;
      hops.unshift({ device: fn.device, fn: fn.fn });
      bus = pci.topology.busOf(fn);
    }
    const root = byFn.get(fn)?.capturedBdf?.bus ?? bus.number;
    out.push({ path: formatPciPath({ segment: bus.segment, bus: root, hops }), what: e.capturedBdf === undefined ? e.fn.id : formatBdf(e.capturedBdf) });
  }
  return out;
}

/** The routes `fromPci` stands for: each root slot pin in use, its GSI as the PIIX3 routes its PIRQ. */
export function routesFromPci(pci: ComposedPci, pirqIrqs: readonly number[] = [10, 10, 11, 11]): PrtRouteSpec[] {
  const seen = new Set<string>();
  const out: PrtRouteSpec[] = [];
  for (const r of intxRoutes(pci.topology)) {
    const key = `${r.rootDevice}/${r.rootPin}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ device: r.rootDevice, pin: r.rootPin - 1, gsi: pirqIrqs[piixPirq(r.rootDevice, r.rootPin)]! });
  }
  return out.sort((a, b) => a.device - b.device || a.pin - b.pin);
}

/**
 * The rules as the engine takes them: files read (relative to the plan), `fromPci` routes
 * computed, and a hide-device rule for every function `pci.hide` hides (first, so later rules
 * see the namespace without them). Problems are reported together, each with its path.
 */
export function acpiRules(plan: LoadedAcpiPlan): WorldRule[] {
  const problems: PlanProblem[] = [];
  const rules: WorldRule[] = [];
  if (plan.pci !== undefined) {
    const references = plan.section.pciHidden?.references;
    hiddenPciPaths(plan.pci).forEach((h, i) => {
      rules.push({ action: 'hide-device', pci: h.path, optional: true, ...(references === undefined ? {} : { references }), path: `pci.hide (${h.what}, #${i + 1})` });
    });
  }
  (plan.section.rules ?? []).forEach((r, i) => {
    const path = `acpi.rules[${i}]`;
    switch (r.action) {
      case 'hide-table':
        rules.push({ ...r, path });
        return;
      case 'hide-device': {
        const { path: devicePath, ...rest } = r;
        rules.push({ ...rest, ...(devicePath === undefined ? {} : { devicePath }), path });
        return;
      }
      case 'replace-method': {
        if ((r.body === undefined) === (r.aml === undefined)) {
          problems.push({ path, message: 'give exactly one of body (statements) and aml (a compiled table holding the method)' });
          return;
        }
        if (r.body !== undefined) {
          rules.push({ action: 'replace-method', method: r.method, source: { kind: 'spec', body: r.body }, path });
          return;
        }
        const { bytes } = plan.files.bytes(`${path}.aml`);
        rules.push({ action: 'replace-method', method: r.method, source: { kind: 'aml', file: r.aml!, bytes, ...(r.from === undefined ? {} : { method: r.from }) }, path });
        return;
      }
      case 'patch-method':
        rules.push({ ...r, path });
        return;
      case 'add-ssdt': {
        if ((r.body === undefined) === (r.aml === undefined)) {
          problems.push({ path, message: 'give exactly one of aml (a compiled SSDT) and body (statements)' });
          return;
        }
        if (r.aml !== undefined) {
          if (r.oemId !== undefined || r.oemTableId !== undefined || r.oemRevision !== undefined) problems.push({ path, message: 'an .aml table brings its own header: oemId, oemTableId and oemRevision go with body' });
          const { bytes } = plan.files.bytes(`${path}.aml`);
          rules.push({ action: 'add-ssdt', source: { kind: 'aml', file: r.aml, bytes }, path });
          return;
        }
        const { action: _a, aml: _m, body, ...header } = r;
        rules.push({ action: 'add-ssdt', source: { kind: 'spec', ...header, body: body! }, path });
        return;
      }
      case 'rewrite-prt': {
        if ((r.routes === undefined) === (r.fromPci === undefined)) {
          problems.push({ path, message: 'give exactly one of routes and fromPci' });
          return;
        }
        let routes: PrtRouteSpec[];
        if (r.fromPci !== undefined) {
          if (plan.pci === undefined) {
            problems.push({ path: `${path}.fromPci`, message: 'the plan has no pci section to take routes from' });
            return;
          }
          routes = routesFromPci(plan.pci, r.fromPci.pirqIrqs);
        } else {
          routes = r.routes!.map((x) => ({ device: x.device, pin: x.pin, ...(x.gsi === undefined ? {} : { gsi: x.gsi }), ...(x.link === undefined ? {} : { link: x.link }) }));
        }
        rules.push({ action: 'rewrite-prt', routes, ...(r.bridge === undefined ? {} : { bridge: r.bridge }), ...(r.flag === undefined ? {} : { flag: r.flag }), path });
        return;
      }
    }
  });
  if (problems.length > 0) throw new PlanError(plan.file, problems);
  return rules;
}

// ---------------------------------------------------------------- generate

/**
 * The facts `hvmpt acpi generate` gives the generator: the plan's `acpi.generate` section, and
 * the bus its `pci` section composes on the monitor's chipset (windows from `pci.allocation`).
 */
export function generateFacts(plan: LoadedAcpiPlan): GuestAcpiFacts {
  const g = plan.section.generate ?? generateSchema.parse({});
  const problems: PlanProblem[] = [];
  const ssdts: SsdtFact[] = [];
  (g.ssdts ?? []).forEach((s, i) => {
    const at = `acpi.generate.ssdts[${i}]`;
    if ('aml' in s) {
      ssdts.push(plan.files.bytes(`${at}.aml`).bytes);
    } else {
      ssdts.push({ kind: 'spec', body: s.body, path: at, ...(s.oemTableId === undefined ? {} : { oemTableId: s.oemTableId }) });
    }
  });
  if (problems.length > 0) throw new PlanError(plan.file, problems);
  const pci = plan.pci ?? composePci({ chipset: guestChipsetPlaceholders() }, plan.file);
  const names = new Map(pci.entries.map((e) => [e.fn, e.fn.id]));
  const ecam = g.ecam === false ? undefined : { base: g.ecam?.base ?? DEFAULT_ECAM_BASE, ...(g.ecam?.startBus === undefined ? {} : { startBus: g.ecam.startBus }), ...(g.ecam?.endBus === undefined ? {} : { endBus: g.ecam.endBus }) };
  return {
    cpus: g.cpus ?? 1,
    ...(g.oem === undefined ? {} : { oem: g.oem }),
    ...(ecam === undefined ? {} : { ecam }),
    ...(g.pm === undefined ? {} : { pm: g.pm }),
    ...(g.reset === undefined ? {} : { reset: g.reset }),
    ...(g.rtc === undefined ? {} : { rtc: g.rtc }),
    ...(g.i8042 === undefined ? {} : { i8042: g.i8042 }),
    ...(g.vga === undefined ? {} : { vga: g.vga }),
    ...(g.com1 === undefined ? {} : { com1: g.com1 }),
    ...(g.hpet === undefined ? {} : { hpet: g.hpet }),
    ...(g.ioApic === undefined ? {} : { ioApic: g.ioApic }),
    ...(g.interrupts === undefined ? {} : { interrupts: g.interrupts }),
    ...(g.layout === undefined ? {} : { layout: g.layout }),
    ssdts,
    pci: pciFactsFromTopology(pci.topology, { names, windows: plan.windows ?? DEFAULT_WINDOWS }),
  };
}

/**
 * The guest's tables `hvmpt acpi generate` writes: the generator's own checks (an ECAM bus
 * range, an SSDT body, a layout) are reported as the plan's, at the plan path they come from.
 */
export function generatePlanTables(plan: LoadedAcpiPlan): GeneratedTables {
  try {
    return generateGuestTables(generateFacts(plan));
  } catch (err) {
    if (!(err instanceof GuestFactsError)) throw err;
    const at = err.where.at ?? '';
    // Facts under pci. describe the composed bus, which the plan's pci section made.
    const path = at.startsWith('acpi.') ? at : at.startsWith('pci.') ? 'pci' : `acpi.generate.${at}`;
    throw new PlanError(plan.file, [{ path, message: at.startsWith('pci.') ? `${at}: ${err.detail}` : err.detail }]);
  }
}
