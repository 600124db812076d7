/**
 * The public plug-in API: what a vendor writes against (`import { definePciDevice,
 * definePolicy } from 'hvmpt'`). A plug-in is a module whose default export (or a named
 * export) is a definition made by one of the two functions here. Definitions are plain
 * objects with functions in them: hvmpt loads the module in each place it needs it (the main
 * thread to validate options and compose the platform, the vCPU thread to run the device, a
 * `hvmpt serve-device` process to serve it over vfio-user) and never copies a definition
 * between threads.
 *
 * docs/plugins.md is the guide; this file is the reference.
 */
import type { CapabilitySpec, RegisterSpec } from '../hw/pci/emulated.js';

/** The version of this API a definition was written against. */
export const PLUGIN_API_VERSION = 1;

// ---------------------------------------------------------------- option schemas

/**
 * A schema for a plug-in's options, in any Standard Schema library (https://standardschema.dev) — zod 4
 * (re-exported as `z`), valibot, arktype. hvmpt validates the plan's `options` with it before
 * anything runs and reports each issue by its plan path (`pci.plugins[0].options.image`).
 */
export interface OptionsSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }> };

/** The options type a schema produces. */
export type OptionsOf<S> = S extends OptionsSchema<infer O> ? O : never;

// ---------------------------------------------------------------- device plug-ins

/** Access widths a handler sees: an 8-byte guest access arrives as two 4-byte ones, low half first. */
export type AccessSize = 1 | 2 | 4;

/** Plain data: what `save` returns and `restore` takes (it must survive JSON). */
export type PlainData = null | boolean | number | string | PlainData[] | { [key: string]: PlainData };

/** A BAR the device declares. */
export interface BarDeclaration {
  /** 0-5; a 64-bit BAR also takes index + 1. */
  readonly index: number;
  readonly kind: 'mem32' | 'mem64' | 'io';
  /** Bytes, a power of two (memory BARs at least 16, I/O BARs at least 4). */
  readonly size: number | bigint;
  readonly prefetchable?: boolean;
  /**
   * `handlers` (default): every guest access calls the device's handler for this BAR.
   * `memory`: plain memory the guest reads and writes without exits (when page-sized and
   * aligned) and the device reaches through `ctx.memory(index)`.
   */
  readonly backing?: 'handlers' | 'memory';
}

/**
 * The device's config space, declared as data: IDs and class, BARs, interrupts, and registers
 * with per-bit masks (the PCI core's `RegisterSpec`: `value`, `writable`, `rw1c`, `reset`).
 * The header (0x00-0x3f) comes from the fields; registers start at 0x40.
 */
export interface DeviceLayout {
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24 bits: class << 16 | subclass << 8 | programming interface. */
  readonly classCode: number;
  readonly revision?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** INTx pin; default 'A' (the device can raise INTx), 'none' for none. */
  readonly interruptPin?: 'A' | 'B' | 'C' | 'D' | 'none';
  readonly bars?: readonly BarDeclaration[];
  /** MSI with 1-32 vectors (a power of two). */
  readonly msi?: { readonly vectors?: number; readonly address64?: boolean; readonly maskable?: boolean };
  /** MSI-X: the table and Pending Bit Array live in one of the device's memory BARs; hvmpt emulates both. */
  readonly msix?: { readonly vectors: number; readonly bar: number; readonly tableOffset: number; readonly pbaOffset: number };
  /** Power management capability (D0/D3hot). */
  readonly pm?: boolean;
  /** A PCI Express capability of this device type (and a 4 KiB config space). */
  readonly pcie?: 'endpoint' | 'legacy-endpoint' | 'rc-integrated';
  /** Further capabilities (vendor-specific ones, say), placed after hvmpt's own. */
  readonly capabilities?: readonly CapabilitySpec[];
  /** Device registers in config space (offset 0x40 and up), with their masks. */
  readonly registers?: readonly RegisterSpec[];
}

/** One BAR's guest accesses. `offset` is into the BAR. Reads return the value zero-extended. */
export interface BarHandlers {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

/** What a device does: handlers and life-cycle hooks. Every member is optional. */
export interface DeviceBehaviour {
  /** Handlers for the device's `handlers` BARs, by BAR index. */
  readonly bars?: Readonly<Record<number, BarHandlers>>;
  /** A guest write to one of the device's own registers (0x40 and up) landed; read the register for its new value. */
  configWritten?(offset: number, size: AccessSize, value: number): void;
  /** Back to power-on state. Config space and interrupt state are reset by hvmpt before this runs. */
  reset?(): void;
  /** The device's internal state as plain data (registers, buffers, counters). */
  save?(): PlainData;
  /** Takes back what `save` returned (on a fresh instance with the same options). */
  restore?(state: PlainData): void;
}

/** Guest memory as the device's DMA reaches it. */
export interface DmaAccess {
  /** Reads guest-physical memory; throws an error `isDmaRefused` recognises when the range is not the guest's RAM, the protection map refuses it, or bus mastering is off. */
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

/** A DMA the device asked for and hvmpt refused. The device sees it as a bus error; hvmpt counts it. */
export interface DmaRefusal {
  readonly address: bigint;
  readonly length: number;
  readonly write: boolean;
  readonly reason: string;
}

/** The `code` of the error `ctx.dma` throws when it refuses a transfer. */
export const DMA_REFUSED = 'HVMPT_DMA_REFUSED';

/**
 * Whether `err` is a refused DMA: catch it to answer the guest as the device would a bus
 * error (an error status, a failed request) and go on; left uncaught it fails the device.
 */
export function isDmaRefused(err: unknown): err is Error & { readonly code: typeof DMA_REFUSED; readonly refusal: DmaRefusal } {
  return err instanceof Error && (err as { code?: unknown }).code === DMA_REFUSED;
}

/** What hvmpt gives a device instance. Valid for the instance's whole life. */
export interface DeviceContext {
  /** The name the plan gives the device. */
  readonly name: string;
  /** Its config space, as the guest sees it; `set` changes a register's value from the device side (status bits, say). */
  readonly config: {
    read(offset: number, size: AccessSize): number;
    set(offset: number, size: AccessSize, value: number): void;
  };
  /** Drives the device's INTx line (level-triggered; hvmpt honours Command's Interrupt Disable and sets Status's Interrupt Status). */
  intx(level: boolean): void;
  /**
   * Signals message vector `vector` through whichever of MSI-X and MSI the guest enabled.
   * Returns 'msix' or 'msi' when it was sent (or left pending while masked), 'off' when
   * neither is enabled (the device then uses INTx).
   */
  message(vector: number): 'msix' | 'msi' | 'off';
  /** Which message mode the guest enabled. */
  messageMode(): 'msix' | 'msi' | 'off';
  /** Guest memory, only through the DMA rules (bus mastering on, the guest's RAM, the protection map). */
  readonly dma: DmaAccess;
  /** A `memory` BAR's bytes. */
  memory(bar: number): Uint8Array;
  /** A line for the run's notes (stderr and --report). */
  log(text: string): void;
}

/** A device plug-in, as `definePciDevice` returns it. */
export interface PciDeviceDefinition<O = unknown> {
  readonly kind: 'hvmpt.pci-device';
  readonly apiVersion: typeof PLUGIN_API_VERSION;
  /** A name for messages and `hvmpt pci models`. */
  readonly name: string;
  readonly summary: string;
  readonly options: OptionsSchema<O>;
  /** The config space layout for these options. Pure: hvmpt may call it more than once, in several threads. */
  layout(options: O): DeviceLayout;
  /** A new instance of the device. Runs in the thread that serves it; its closures are its state. */
  create(ctx: DeviceContext, options: O): DeviceBehaviour;
}

/** Declares a device plug-in. `options` is validated before `layout` and `create` see it. */
export function definePciDevice<S extends OptionsSchema>(d: {
  readonly name: string;
  readonly summary: string;
  readonly options: S;
  layout(options: OptionsOf<S>): DeviceLayout;
  create(ctx: DeviceContext, options: OptionsOf<S>): DeviceBehaviour;
}): PciDeviceDefinition<OptionsOf<S>> {
  return { kind: 'hvmpt.pci-device', apiVersion: PLUGIN_API_VERSION, name: d.name, summary: d.summary, options: d.options as OptionsSchema<OptionsOf<S>>, layout: d.layout, create: d.create };
}

// ---------------------------------------------------------------- policy plug-ins

/** A PCI function the policy can see: on the captured host bus the plan starts from, or one the plan adds. */
export interface PolicyPciFunction {
  /** `00:1f.3` on the captured bus, or the plan's name for a device it adds. */
  readonly at: string;
  readonly origin: 'host' | 'plan';
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  /** Already hidden by the plan (or by an earlier policy). */
  readonly hidden: boolean;
}

/** What a policy reads and changes. The plan is the document as written (YAML/JSON data), before validation. */
export interface PolicyContext {
  /** The plan document as it stands (read-only: change it through the methods below). */
  readonly plan: Readonly<Record<string, unknown>>;
  readonly host: {
    /** The functions the guest's bus would have: the host capture's and the plan's own devices. */
    readonly pci: readonly PolicyPciFunction[];
    /** Signatures of the host's ACPI tables (machine.acpiTables), when the plan names them. */
    readonly acpiTables: readonly string[];
  };
  /** Hides a function from the guest's PCI bus and ACPI namespace (`pci.hide`). */
  hidePci(at: string, why: string): void;
  /** Takes back a plan's `pci.hide` rule for this function. */
  exposePci(at: string, why: string): void;
  /** Adds an `acpi.rules` entry (world-view rule, as the plan writes them). */
  acpiRule(rule: Readonly<Record<string, unknown>>, why: string): void;
  /** Adds an SSDT to the generated tables (`acpi.generate.ssdts`: `{ oemTableId?, body }`). */
  addSsdt(ssdt: Readonly<Record<string, unknown>>, why: string): void;
}

/** One change a policy made, as `hvmpt run` prints it and `--report` records it. */
export interface PolicyChange {
  readonly policy: string;
  readonly action: 'hide-pci' | 'expose-pci' | 'acpi-rule' | 'add-ssdt';
  /** What it applies to: a PCI address, a rule's action and target, an SSDT's table ID. */
  readonly target: string;
  readonly why: string;
}

export interface PolicyDefinition<O = unknown> {
  readonly kind: 'hvmpt.policy';
  readonly apiVersion: typeof PLUGIN_API_VERSION;
  readonly name: string;
  readonly summary: string;
  readonly options: OptionsSchema<O>;
  apply(ctx: PolicyContext, options: O): void;
}

/** Declares a policy plug-in: rules over the plan and host facts, applied before composition. */
export function definePolicy<S extends OptionsSchema>(d: {
  readonly name: string;
  readonly summary: string;
  readonly options: S;
  apply(ctx: PolicyContext, options: OptionsOf<S>): void;
}): PolicyDefinition<OptionsOf<S>> {
  return { kind: 'hvmpt.policy', apiVersion: PLUGIN_API_VERSION, name: d.name, summary: d.summary, options: d.options as OptionsSchema<OptionsOf<S>>, apply: d.apply };
}

export function isPciDeviceDefinition(v: unknown): v is PciDeviceDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'hvmpt.pci-device';
}

export function isPolicyDefinition(v: unknown): v is PolicyDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'hvmpt.policy';
}
