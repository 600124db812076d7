import { z } from 'zod';
import { formatBdf, parseBdf, parseDevfn, sameBdf, type Bdf } from '../hw/pci/address.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import { DEFAULT_WINDOWS } from '../hw/pci/allocator.js';
import { CAPABILITY_NAMES } from '../hw/pci/capabilities.js';
import type { ComposeInput, Location, PlacedEmulated, PlacedReal } from '../hw/pci/compose.js';
import { msiCapability, msixCapability, pcieCapability, pmCapability, type CapabilitySpec, type EmulatedFunctionSpec, type RegisterSpec } from '../hw/pci/emulated.js';
import { PciError } from '../hw/pci/errors.js';
import type { BarOverride, CapabilitySelector } from '../hw/pci/real.js';
import { parseSize } from '../util/format.js';
import type { PlanFiles } from './files.js';
import { formatPath, loadStructuredFile, PlanError, type PlanProblem } from './load.js';
import { hostSelector, idOverrides, PASSTHROUGH_BACKENDS, romChoice } from './passthrough.js';
import { uint } from './scalars.js';

/**
 * The plan's `pci` section: what the guest's PCI bus is made of. YAML or JSON; numbers may be
 * written as numbers or as "0x…" strings, sizes as numbers or "4K", "1M", "64G". Other
 * top-level sections are accepted and ignored here (the monitor composes them).
 */

// ---------------------------------------------------------------- scalar helpers


/** A byte count: a number, "0x…", or "4K"/"1M"/"2G"/"1T" (binary units). */
const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? (Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined) : parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a size like 4096, 0x1000, 4K, 1M or 2G, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

/** A 64-bit address. */
const address = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? (Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined) : /^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(v) ? BigInt(v.trim()) : undefined;
  if (n === undefined || n >= 1n << 64n) {
    ctx.addIssue({ code: 'custom', message: `expected an address (a number or "0x…"), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

const bdfText = z.string().transform((v, ctx) => {
  const b = parseBdf(v);
  if (b === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a PCI address like 00:1f.3 or 0000:00:1f.3, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return b;
});

/** `vendor:device` in hex, as lspci -n prints it. */
const vendorDevice = z.string().transform((v, ctx) => {
  const m = /^\s*([0-9a-f]{4}):([0-9a-f]{4})\s*$/i.exec(v);
  if (m === null) {
    ctx.addIssue({ code: 'custom', message: `expected vendor:device in hex like 8086:10d3, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return { vendorId: parseInt(m[1]!, 16), deviceId: parseInt(m[2]!, 16) };
});

/**
 * Where a function goes: `00:05.0` (a slot on root bus 00 of segment 0), `0001:00:05.0`,
 * or `NAME/dd.f` behind a bridge named in the plan (or a captured bridge: `00:1c.0/00.0`).
 */
const location = z.string().transform((v, ctx): Location => {
  const slash = v.lastIndexOf('/');
  if (slash >= 0) {
    const parent = v.slice(0, slash).trim();
    const slot = parseDevfn(v.slice(slash + 1));
    if (parent !== '' && slot !== undefined) return { kind: 'behind', bridge: parent, device: slot.device, fn: slot.fn };
  } else {
    const b = parseBdf(v);
    if (b !== undefined) return { kind: 'root', segment: b.segment, bus: b.bus, device: b.device, fn: b.fn };
  }
  ctx.addIssue({ code: 'custom', message: `expected a slot like 00:05.0 (on a root bus) or BRIDGE/00.0 (behind a bridge), got ${JSON.stringify(v)}` });
  return z.NEVER;
});

const name = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'a name starts with a letter and holds letters, digits, _ . -');

/** A capability: a name (msi, pcie, sriov, …), a standard ID number, or "ext:0x15" for an extended ID. */
const capabilitySelector = z.union([z.string(), z.number()]).transform((v, ctx): CapabilitySelector => {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xff) return { extended: false, id: v };
  } else {
    const named = CAPABILITY_NAMES.get(v.toLowerCase());
    if (named !== undefined) return named;
    const m = /^\s*(ext:)?(0x[0-9a-f]+|\d+)\s*$/i.exec(v);
    if (m !== null) {
      const id = Number(m[2]);
      const extended = m[1] !== undefined;
      if (id <= (extended ? 0xffff : 0xff)) return { extended, id };
    }
  }
  ctx.addIssue({ code: 'custom', message: `expected a capability name (${[...CAPABILITY_NAMES.keys()].join(', ')}), a standard ID, or "ext:ID", got ${JSON.stringify(v)}` });
  return z.NEVER;
});

const capabilityPolicy = z.strictObject({
  hide: z.array(capabilitySelector).optional(),
  allow: z.array(capabilitySelector).optional(),
  unknown: z.enum(['pass', 'hide']).optional(),
  hideDangerous: z.boolean().optional(),
});

const barIndex = z.union([z.number().int().min(0).max(5), z.literal('rom')]).transform((v) => (v === 'rom' ? 6 : v));

const barPolicy = z.strictObject({
  bar: barIndex,
  size: size.optional(),
  hide: z.boolean().optional(),
});

const window = z
  .union([
    z.strictObject({ base: address, limit: address }),
    z.strictObject({ base: address, size }),
  ])
  .transform((w, ctx) => {
    const limit = 'limit' in w ? w.limit : w.base + w.size - 1n;
    if (limit < w.base) {
      ctx.addIssue({ code: 'custom', message: 'the window ends before it starts' });
      return z.NEVER;
    }
    return { base: w.base, limit };
  });

// ---------------------------------------------------------------- the section

/**
 * How a device is held (the device categories of docs/pci.md): `allocation` dedicated (this
 * guest's for the host's lifetime) or dynamic (taken when the guest starts, given back when it
 * stops); `sharing` exclusive (one user at a time) or shared (the host or other guests use it
 * too, as with a VF's parent or a mediated device).
 */
export const deviceUse = z.strictObject({
  allocation: z.enum(['dedicated', 'dynamic']).optional(),
  sharing: z.enum(['exclusive', 'shared']).optional(),
});

const hideRule = z
  .strictObject({ bdf: bdfText.optional(), id: vendorDevice.optional() })
  .refine((r) => r.bdf !== undefined || r.id !== undefined, 'give bdf, id (vendor:device), or both');

const fakeBridge = z.strictObject({
  name,
  at: location,
  vendor: uint(16).optional(),
  device: uint(16).optional(),
});

const emulatedDevice = z.strictObject({
  name,
  at: location,
  use: deviceUse.optional(),
  model: z.string(),
  options: z.record(z.string(), z.unknown()).optional(),
});

const realDevice = z.strictObject({
  name,
  at: location,
  use: deviceUse.optional(),
  /** An lspci -x/-xxx/-xxxx dump, a sysfs config binary or device directory; relative to the plan file. */
  dump: z.string().min(1),
  /** Which function of the dump (default: its only one). */
  bdf: bdfText.optional(),
});

/**
 * A host function passed through (see src/plan/passthrough.ts): `at` is where the guest sees
 * it (default: the first free slot on root bus 00), `name` what the plan calls it (default
 * `pt<i>`).
 */
export const passthroughDevice = z.strictObject({
  name: name.optional(),
  host: hostSelector,
  at: location.optional(),
  backend: z.enum(PASSTHROUGH_BACKENDS).default('vfio'),
  rom: romChoice.default({ kind: 'auto' }),
  use: deviceUse.optional(),
  ids: idOverrides.optional(),
});

/**
 * A device plug-in (docs/plugins.md): a module hvmpt loads by specifier (`./my-device.js`
 * relative to the plan, or a package name) that defines the device, with options its own
 * schema validates; or a device another process serves over vfio-user at `socket`.
 */
const pluginDevice = z.union([
  z.strictObject({
    name: name.optional(),
    module: z.string().min(1, 'a module specifier: ./my-device.js or a package name'),
    /** Which export of the module holds the definition (default: its default export). */
    export: z.string().min(1).optional(),
    at: location,
    use: deviceUse.optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    /** How long one call into the plug-in may run before the watchdog fails the device (ms, default 2000). */
    watchdog: z.number().int().min(10).max(600_000).optional(),
  }),
  z.strictObject({
    name: name.optional(),
    /** A vfio-user server's UNIX socket (`hvmpt serve-device`, or another vendor's server). */
    socket: z.string().min(1, 'the path of a vfio-user server\'s socket'),
    at: location,
    use: deviceUse.optional(),
    /** How long a reply from the server may take before the device is failed (ms, default 5000). */
    timeout: z.number().int().min(10).max(600_000).optional(),
  }),
]);

const functionPolicy = z.strictObject({
  target: z.string().min(1),
  use: deviceUse.optional(),
  bars: z.array(barPolicy).optional(),
  capabilities: capabilityPolicy.optional(),
  unclaimed: z.enum(['pass', 'read-only', 'hide']).optional(),
});

const allocation = z.union([
  z.literal(true),
  z.strictObject({ io: window.optional(), mem32: window.optional(), mem64: window.optional() }),
]);

export const PciSectionSchema = z.strictObject({
  hide: z.array(hideRule).optional(),
  bridges: z.array(fakeBridge).optional(),
  emulated: z.array(emulatedDevice).optional(),
  real: z.array(realDevice).optional(),
  passthrough: z.array(passthroughDevice).optional(),
  plugins: z.array(pluginDevice).optional(),
  functions: z.array(functionPolicy).optional(),
  capabilities: capabilityPolicy.optional(),
  unclaimed: z.enum(['pass', 'read-only', 'hide']).optional(),
  unknownBarSize: z.enum(['fixed', 'alignment']).optional(),
  renumber: z.boolean().optional(),
  allocation: allocation.optional(),
  /**
   * ACPI PCI hot-plug on root bus 00 (docs/hotplug.md): every empty root slot, and the slot of
   * every passthrough device whose use is dynamic, takes a device while the guest runs
   * (`hvmpt ctl SOCKET attach`). On whenever a passthrough device is dynamic.
   */
  hotplug: z.boolean().optional(),
});

export type PciSection = z.output<typeof PciSectionSchema>;
type FunctionEntry = NonNullable<PciSection['functions']>[number];
export type PassthroughEntry = NonNullable<PciSection['passthrough']>[number];

export type PluginEntry = NonNullable<PciSection['plugins']>[number];

/** The name a plug-in entry goes by in the plan: its own, or `plugin<i>`. */
export function pluginName(entry: PluginEntry, index: number): string {
  return entry.name ?? `plugin${index}`;
}

/** The name a passthrough entry goes by in the plan: its own, or `pt<i>`. */
export function passthroughName(entry: PassthroughEntry, index: number): string {
  return entry.name ?? `pt${index}`;
}

/** A whole plan file as far as PCI is concerned: other top-level sections pass untouched. */
export const PlanWithPciSchema = z.looseObject({ pci: PciSectionSchema.optional() });

// ---------------------------------------------------------------- device models

/**
 * An emulated device a plan can name in `pci.emulated[].model`. The model validates its own
 * `options` (errors get the plan path of the bad option) and returns a spec. The monitor and
 * plug-ins add theirs to the registry they pass to `pciComposeInput`.
 */
export interface PciDeviceModel {
  readonly name: string;
  readonly summary: string;
  readonly options: z.ZodType;
  create(options: unknown, id: string): EmulatedFunctionSpec;
}

export function definePciModel<S extends z.ZodType>(m: {
  name: string;
  summary: string;
  options: S;
  create(options: z.output<S>, id: string): EmulatedFunctionSpec;
}): PciDeviceModel {
  // `options` has been parsed by `m.options` before `create` is called.
  return { name: m.name, summary: m.summary, options: m.options, create: (o, id) => m.create(o as z.output<S>, id) };
}

const pin = z.enum(['none', 'A', 'B', 'C', 'D']).transform((p) => (p === 'none' ? 0 : 'ABCD'.indexOf(p) + 1) as 0 | 1 | 2 | 3 | 4);

const genericOptions = z.strictObject({
  vendor: uint(16),
  device: uint(16),
  class: uint(24),
  revision: uint(8).optional(),
  subsystemVendor: uint(16).optional(),
  subsystem: uint(16).optional(),
  interruptPin: pin.optional(),
  bars: z
    .array(z.strictObject({ bar: z.number().int().min(0).max(5), kind: z.enum(['mem32', 'mem64', 'io']), size, prefetchable: z.boolean().optional() }))
    .optional(),
  romSize: size.optional(),
  msi: z.strictObject({ vectors: z.number().int().optional(), address64: z.boolean().optional(), maskable: z.boolean().optional() }).optional(),
  msix: z
    .strictObject({
      tableSize: z.number().int(),
      table: z.strictObject({ bar: z.number().int(), offset: uint(32) }),
      pba: z.strictObject({ bar: z.number().int(), offset: uint(32) }),
    })
    .optional(),
  pm: z.boolean().optional(),
  pcie: z.enum(['endpoint', 'legacy-endpoint', 'root-port', 'upstream', 'downstream', 'pcie-to-pci', 'rc-integrated']).optional(),
  registers: z
    .array(z.strictObject({ offset: uint(12), size: z.union([z.literal(1), z.literal(2), z.literal(4)]), value: uint(32).optional(), writable: uint(32).optional(), rw1c: uint(32).optional() }))
    .optional(),
});

/**
 * `generic`: a device described entirely by its options — IDs, class, BARs, ROM size, MSI,
 * MSI-X, PM, PCI Express, and registers that behave as storage with masks. Enough for a
 * placeholder a guest enumerates and a driver probes; behaviour beyond registers needs a model
 * written in TypeScript.
 */
export const GENERIC_MODEL: PciDeviceModel = definePciModel({
  name: 'generic',
  summary: 'a device described by its options: IDs, class, BARs, ROM, MSI/MSI-X/PM/PCIe, registers with masks',
  options: genericOptions,
  create(o, id): EmulatedFunctionSpec {
    const caps: CapabilitySpec[] = [];
    if (o.pm === true) caps.push(pmCapability());
    if (o.msi !== undefined) caps.push(msiCapability({ ...o.msi }));
    if (o.msix !== undefined) caps.push(msixCapability(o.msix));
    if (o.pcie !== undefined) caps.push(pcieCapability({ type: o.pcie }));
    const registers: RegisterSpec[] = (o.registers ?? []).map((r) => ({ offset: r.offset, size: r.size, ...(r.value === undefined ? {} : { value: r.value }), ...(r.writable === undefined ? {} : { writable: r.writable }), ...(r.rw1c === undefined ? {} : { rw1c: r.rw1c }) }));
    return {
      id,
      // Registers and nothing behind them: a placeholder the guest enumerates, not a device model.
      kind: 'fake',
      vendorId: o.vendor,
      deviceId: o.device,
      classCode: o.class,
      ...(o.revision === undefined ? {} : { revision: o.revision }),
      ...(o.subsystemVendor === undefined ? {} : { subsystemVendorId: o.subsystemVendor }),
      ...(o.subsystem === undefined ? {} : { subsystemId: o.subsystem }),
      ...(o.interruptPin === undefined ? {} : { interruptPin: o.interruptPin }),
      bars: (o.bars ?? []).map((b) => ({ index: b.bar, kind: b.kind, size: b.size, prefetchable: b.prefetchable === true })),
      ...(o.romSize === undefined ? {} : { romSize: o.romSize }),
      capabilities: caps,
      registers,
      extendedConfig: o.pcie !== undefined,
    };
  },
});

export const BUILTIN_PCI_MODELS: ReadonlyMap<string, PciDeviceModel> = new Map([[GENERIC_MODEL.name, GENERIC_MODEL]]);

// ---------------------------------------------------------------- plan -> compose input

function zodProblems(prefix: string, error: z.ZodError): PlanProblem[] {
  return error.issues.map((i) => {
    const suffix = formatPath(i.path);
    return { path: suffix === '' ? prefix : suffix.startsWith('[') ? prefix + suffix : `${prefix}.${suffix}`, message: i.message };
  });
}

export interface ResolveOptions {
  /** The plan file, for error messages. */
  readonly planFile: string;
  /** The files the plan names, read (src/host/plan/files.ts). */
  readonly files: PlanFiles;
  /** Emulated device models by name (default: the built-in ones). */
  readonly models?: ReadonlyMap<string, PciDeviceModel>;
}

/**
 * Turns a validated `pci` section into the model's compose input: picks each real device's
 * function from its dump (read beforehand, with the plan's other files), validates model options, and reports every problem with its plan path in
 * one PlanError.
 */
export function pciComposeInput(section: PciSection, options: ResolveOptions): Omit<ComposeInput, 'base'> {
  const problems: PlanProblem[] = [];
  const models = options.models ?? BUILTIN_PCI_MODELS;

  const emulated: PlacedEmulated[] = [];
  (section.emulated ?? []).forEach((e, i) => {
    const path = `pci.emulated[${i}]`;
    const model = models.get(e.model);
    if (model === undefined) {
      problems.push({ path: `${path}.model`, message: `unknown device model "${e.model}" (known: ${[...models.keys()].join(', ')})` });
      return;
    }
    const parsed = model.options.safeParse(e.options ?? {});
    if (!parsed.success) {
      problems.push(...zodProblems(`${path}.options`, parsed.error));
      return;
    }
    try {
      emulated.push({ name: e.name, at: e.at, spec: model.create(parsed.data, e.name), path });
    } catch (err) {
      if (err instanceof PciError) problems.push({ path: `${path}.options`, message: err.message });
      else throw err;
    }
  });

  const real: PlacedReal[] = [];
  (section.real ?? []).forEach((r, i) => {
    const path = `pci.real[${i}]`;
    const cap = options.files.capture(`${path}.dump`).capture;
    const pick = r.bdf === undefined ? (cap.functions.length === 1 ? cap.functions[0] : undefined) : cap.functions.find((f) => sameBdf(f.bdf, r.bdf as Bdf));
    if (pick === undefined) {
      problems.push({
        path: `${path}.bdf`,
        message: r.bdf === undefined ? `${r.dump} holds ${cap.functions.length} functions (${cap.functions.map((f) => formatBdf(f.bdf)).join(', ')}): say which with bdf` : `${r.dump} has no function ${formatBdf(r.bdf)}`,
      });
      return;
    }
    real.push({ name: r.name, at: r.at, capture: pick, source: r.dump, path });
  });

  let allocationWindows: GuestWindows | undefined;
  if (section.allocation !== undefined) {
    const a = section.allocation === true ? {} : section.allocation;
    allocationWindows = {
      mem32: a.mem32 ?? DEFAULT_WINDOWS.mem32,
      ...(a.io !== undefined ? { io: a.io } : DEFAULT_WINDOWS.io !== undefined ? { io: DEFAULT_WINDOWS.io } : {}),
      ...(a.mem64 !== undefined ? { mem64: a.mem64 } : {}),
    };
  }

  if (problems.length > 0) throw new PlanError(options.planFile, problems);

  const barOverrides = (f: FunctionEntry): BarOverride[] =>
    (f.bars ?? []).map((b) => ({ index: b.bar, ...(b.size === undefined ? {} : { size: b.size }), ...(b.hide === undefined ? {} : { hide: b.hide }) }));

  return {
    hide: (section.hide ?? []).map((h, i) => ({ ...(h.bdf === undefined ? {} : { bdf: h.bdf }), ...(h.id === undefined ? {} : { vendorId: h.id.vendorId, deviceId: h.id.deviceId }), path: `pci.hide[${i}]` })),
    bridges: (section.bridges ?? []).map((b, i) => ({ name: b.name, at: b.at, ...(b.vendor === undefined ? {} : { vendorId: b.vendor }), ...(b.device === undefined ? {} : { deviceId: b.device }), path: `pci.bridges[${i}]` })),
    emulated,
    real,
    functions: (section.functions ?? []).map((f, i) => ({
      target: f.target,
      bars: barOverrides(f),
      ...(f.capabilities === undefined ? {} : { capabilities: f.capabilities }),
      ...(f.unclaimed === undefined ? {} : { unclaimed: f.unclaimed }),
      path: `pci.functions[${i}]`,
    })),
    ...(section.capabilities === undefined ? {} : { capabilities: section.capabilities }),
    ...(section.unclaimed === undefined ? {} : { unclaimed: section.unclaimed }),
    ...(section.unknownBarSize === undefined ? {} : { unknownBarSize: section.unknownBarSize }),
    ...(section.renumber === undefined ? {} : { renumber: section.renumber }),
    ...(allocationWindows === undefined ? {} : { allocation: { windows: allocationWindows, path: 'pci.allocation' } }),
  };
}

/** Reads a plan file and returns its `pci` section, validated (an absent section is an empty one). */
export function loadPciPlan(file: string): PciSection {
  return loadStructuredFile(PlanWithPciSchema, file).pci ?? {};
}
