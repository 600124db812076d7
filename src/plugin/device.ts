/**
 * A device plug-in instance: the definition's behaviour over a composed PCI function, with
 * hvmpt's side of the contract — INTx as PCI defines it (Interrupt Disable, Interrupt Status),
 * MSI and MSI-X emulated by the PCI core's models (table, PBA, masking, pending), DMA only
 * through the rules, and every call into plug-in code guarded: an exception fails the device
 * (reported once, then it reads all ones and its interrupts go quiet) and the guest goes on.
 *
 * The instance knows nothing of KVM: a `DeviceHost` delivers what it produces. The monitor is
 * one host (src/vmm/plugins.ts), the vfio-user server another (vfio-user/server.ts).
 */
import type { DmaMemory } from '../hw/chipset/fw-cfg.js';
import { allOnes } from '../hw/io.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import { CAP_MSI, CAP_MSIX, walkCapabilities } from '../hw/pci/capabilities.js';
import type { PciFunction } from '../hw/pci/function.js';
import { deliverable, MsiCapability, MsixTable, type InterruptConfigEvent } from '../hw/pci/msi.js';
import { COMMAND, STATUS } from '../hw/pci/regs.js';
import { HvmptError } from '../errors.js';
import { DMA_REFUSED, type BarHandlers, type DeviceBehaviour, type DeviceContext, type DeviceLayout, type DmaRefusal, type PciDeviceDefinition, type PlainData } from './api.js';
import { readLe, writeLe } from '../util/le-bytes.js';
import { isThenable, runPlugin, withTimeLimit } from './watchdog.js';

/**
 * A DMA refused by the rules; thrown into the plug-in, which sees a bus error. It carries
 * `code` (not its class) for plug-ins to recognise: the bundled CLI and the package entry
 * each have their own copy of this class, so `instanceof` cannot work across them.
 */
export class DmaError extends HvmptError {
  readonly code = DMA_REFUSED;
  constructor(
    message: string,
    where: { input: string },
    readonly refusal: DmaRefusal,
  ) {
    super(message, where);
  }
}

/** A plug-in broke its contract or threw: the device is failed. */
export class PluginFault extends HvmptError {}

const COMMAND_BUS_MASTER = 0x0004;
const COMMAND_INTX_DISABLE = 0x0400;
const STATUS_INTERRUPT = 0x0008;
const PAGE = 0x1000n;

/** Where a plug-in's output goes: the monitor, or a vfio-user server. */
export interface DeviceHost {
  /** The INTx line as the bus sees it (already gated by Interrupt Disable). */
  setIntx(level: boolean): void;
  /** An MSI or MSI-X message. `vector` is the device's vector number (a vfio-user server signals that vector's eventfd). */
  signalMessage(kind: 'msi' | 'msix', vector: number, address: bigint, data: number): void;
  /** Guest memory the device's DMA may reach (its RAM), and for identity layouts the protection map. */
  readonly memory: DmaMemory;
  readonly protection?: ProtectionMap | undefined;
  /** Bytes behind a `memory` BAR (kept for the instance's life). */
  barMemory(bar: number, size: number): Uint8Array;
  note(text: string): void;
  /** The device failed (its plug-in threw, or the watchdog stopped it): report it once. */
  fault(message: string): void;
  /**
   * ms that `create`, `reset` and `restore` may run before they are stopped and the device
   * failed. Register accesses are watched by the vCPU loop itself (vcpu-loop.ts).
   */
  readonly callLimitMs?: number;
}

/** What a plug-in returned, in words, for a contract violation's message. */
function described(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object' || typeof v === 'function') return isThenable(v) ? 'a promise' : `a${typeof v === 'object' ? 'n object' : ' function'}`;
  return `${typeof v} ${String(v)}`;
}


/** The guest's RAM, checked against the protection map when there is one: the only memory a plug-in's DMA reaches. */
class DmaPort {
  readonly refusals: DmaRefusal[] = [];
  constructor(
    private readonly fn: PciFunction,
    private readonly host: DeviceHost,
    private readonly failed: () => string | undefined,
  ) {}

  private check(address: bigint, length: number, write: boolean): void {
    let reason: string | undefined;
    // A failed device's code is never called again, but a closure it kept (a timer in a
    // serve-device process) could still try.
    if (this.failed() !== undefined) reason = 'the device has failed';
    else if ((this.fn.read(COMMAND, 2) & COMMAND_BUS_MASTER) === 0) reason = 'bus mastering is off (Command bit 2)';
    else if (!Number.isSafeInteger(length) || length < 0 || address < 0n) reason = 'a negative or huge length';
    else if (length > 0 && !this.host.memory.covers(address, length)) reason = 'not the guest\'s RAM';
    else if (length > 0 && this.host.protection !== undefined) {
      const start = (address / PAGE) * PAGE;
      const end = ((address + BigInt(length) + PAGE - 1n) / PAGE) * PAGE;
      const d = this.host.protection.mayMap({ start, end }, write ? 'write' : 'read');
      if (!d.allowed) reason = `protection map: ${d.reason}`;
      else if (d.grants.some((g) => g.kind !== 'ram')) reason = 'protection map: not RAM the guest owns';
    }
    if (reason === undefined) return;
    const refusal = { address, length, write, reason };
    if (this.refusals.length < 100) this.refusals.push(refusal);
    throw new DmaError(`DMA ${write ? 'write to' : 'read of'} [0x${address.toString(16)}, +0x${length.toString(16)}) refused: ${reason}`, { input: this.fn.id }, refusal);
  }

  read(address: bigint, length: number): Uint8Array {
    this.check(address, length, false);
    if (length === 0) return new Uint8Array(0);
    const bytes = this.host.memory.read(address, length);
    if (bytes === undefined) throw new DmaError(`DMA read of [0x${address.toString(16)}, +0x${length.toString(16)}) refused: not the guest's RAM`, { input: this.fn.id }, { address, length, write: false, reason: 'not the guest\'s RAM' });
    return bytes;
  }

  write(address: bigint, data: Uint8Array): void {
    this.check(address, data.length, true);
    if (data.length > 0 && !this.host.memory.write(address, data)) throw new DmaError(`DMA write to [0x${address.toString(16)}, +0x${data.length.toString(16)}) refused: not the guest's RAM`, { input: this.fn.id }, { address, length: data.length, write: true, reason: 'not the guest\'s RAM' });
  }
}

/** The state `PluginDevice.save` returns: hvmpt's part and the plug-in's. */
export interface SavedDevice {
  readonly plugin: string;
  /** Config space as stored, hex. */
  readonly config: string;
  /** MSI-X table dwords, when the device has one. */
  readonly msixTable?: number[];
  readonly intx: boolean;
  /** `memory` BARs, base64, by index. */
  readonly memory: Record<string, string>;
  readonly device: PlainData | null;
}

export class PluginDevice {
  readonly name: string;
  private readonly behaviour: DeviceBehaviour;
  private readonly msi: MsiCapability | undefined;
  private readonly msix: MsixTable | undefined;
  private readonly dmaPort: DmaPort;
  private readonly memories = new Map<number, Uint8Array>();
  private intxLevel = false;
  private lineDriven = false;
  private failedWith: string | undefined;
  /**
   * Set by a host that emulates MSI and MSI-X itself (a vfio-user client does, as VFIO's
   * users do): the mode and vector count it enabled through the back-end, overriding the
   * device's own capability state.
   */
  private external: { mode: 'msix' | 'msi' | 'off'; count: number } | undefined;

  constructor(
    readonly definition: PciDeviceDefinition,
    readonly options: unknown,
    readonly fn: PciFunction,
    readonly layout: DeviceLayout,
    private readonly host: DeviceHost,
  ) {
    this.name = fn.id;
    this.dmaPort = new DmaPort(fn, host, () => this.failedWith);
    const caps = walkCapabilities((o, s) => fn.read(o, s), fn.length, fn.read(0x0e, 1) & 0x7f).caps;
    const onConfig = (e: InterruptConfigEvent): void => this.interruptsChanged(e);
    const msi = caps.find((c) => !c.extended && c.id === CAP_MSI);
    const msix = caps.find((c) => !c.extended && c.id === CAP_MSIX);
    this.msi = msi === undefined ? undefined : new MsiCapability(fn, msi.offset, onConfig);
    this.msix = msix === undefined ? undefined : new MsixTable(fn, msix.offset, onConfig);
    for (const b of layout.bars ?? []) if (b.backing === 'memory') this.memories.set(b.index, host.barMemory(b.index, Number(b.size)));
    fn.watch(COMMAND, 2, () => this.updateLine());
    fn.watch(0x40, fn.length - 0x40, (e) => {
      const listener = this.behaviour.configWritten;
      if (listener !== undefined) this.guard(() => listener.call(this.behaviour, e.offset, e.size, e.value), undefined);
    });
    const ctx = this.context();
    const behaviour = this.guard(() => definition.create(ctx, options), undefined, 'create');
    if (behaviour !== undefined && behaviour !== null && typeof behaviour !== 'object') this.fail(`create returned ${described(behaviour)}, not the device's behaviour (an object)`);
    this.behaviour = this.failedWith === undefined ? (behaviour ?? {}) : {};
  }

  get failed(): string | undefined {
    return this.failedWith;
  }

  get dmaRefusals(): readonly DmaRefusal[] {
    return this.dmaPort.refusals;
  }

  /**
   * Runs plug-in code; an exception fails the device and yields `fallback`, and so does a
   * promise (handlers are synchronous: nothing would ever wait for it). `timed` names a rare
   * call run under the host's time limit.
   */
  private guard<T>(f: () => T, fallback: T, timed?: string): T {
    if (this.failedWith !== undefined) return fallback;
    try {
      let result: T;
      const limit = this.host.callLimitMs;
      if (timed !== undefined && limit !== undefined) {
        const r = withTimeLimit(limit, () => runPlugin(this.name, f));
        if (!('value' in r)) {
          this.fail(`watchdog: its ${timed} ran longer than ${limit} ms; stopped`);
          return fallback;
        }
        result = r.value;
      } else result = runPlugin(this.name, f);
      if (isThenable(result)) {
        // A rejection of it must not become an unhandled one that ends the thread.
        Promise.resolve(result).catch(() => {});
        throw new PluginFault('it returned a promise: plug-in calls are synchronous (docs/plugins.md)', { input: this.name });
      }
      return result;
    } catch (err) {
      // The device's name goes with the fault already; an HvmptError's own place would repeat it.
      this.fail(err instanceof HvmptError ? err.detail : err instanceof Error ? err.message : String(err));
      return fallback;
    }
  }

  /** Marks the device failed (its plug-in threw, hung, or its server went away): its line drops and nothing of it runs again. */
  fail(message: string): void {
    if (this.failedWith !== undefined) return;
    this.failedWith = message;
    this.intxLevel = false;
    if (this.lineDriven) this.host.setIntx(false);
    this.lineDriven = false;
    this.host.fault(message);
  }

  private context(): DeviceContext {
    const fn = this.fn;
    return {
      name: this.name,
      config: {
        read: (offset, size) => fn.read(offset, size),
        set: (offset, size, value) => {
          if (offset < 0x40 || offset + size > fn.length) throw new PluginFault(`config.set at 0x${offset.toString(16)}: a device sets its own registers (0x40 and up) only`, { input: this.name });
          fn.setStored(offset, size, value);
        },
      },
      intx: (level) => {
        this.intxLevel = level;
        this.updateLine();
      },
      message: (vector) => this.message(vector),
      messageMode: () => this.mode(),
      dma: { read: (a, n) => this.dmaPort.read(a, n), write: (a, d) => this.dmaPort.write(a, d) },
      memory: (bar) => {
        const m = this.memories.get(bar);
        if (m === undefined) throw new PluginFault(`BAR ${bar} is not a memory BAR of this device`, { input: this.name });
        return m;
      },
      log: (text) => this.host.note(`${this.name}: ${text}`),
    };
  }

  /** A host that emulates MSI/MSI-X itself enabled `count` vectors of `mode` (or turned messages off). */
  setMessageMode(mode: 'msix' | 'msi' | 'off', count: number): void {
    this.external = { mode, count };
    this.updateLine();
  }

  private mode(): 'msix' | 'msi' | 'off' {
    if (this.external !== undefined) return this.external.mode;
    if (this.msix?.state().enabled === true) return 'msix';
    if (this.msi?.state().enabled === true) return 'msi';
    return 'off';
  }

  private message(vector: number): 'msix' | 'msi' | 'off' {
    if (this.failedWith !== undefined) return 'off';
    const x = this.external;
    if (x !== undefined) {
      if (x.mode !== 'off' && vector >= 0 && vector < x.count) this.host.signalMessage(x.mode, vector, 0n, 0);
      return x.mode;
    }
    const t = this.msix;
    if (t !== undefined) {
      const s = t.state();
      if (s.enabled) {
        if (vector < 0 || vector >= t.size) throw new PluginFault(`MSI-X vector ${vector}: the device has ${t.size}`, { input: this.name });
        if (deliverable(s, vector)) {
          const v = s.vectors[vector]!;
          this.host.signalMessage('msix', vector, v.address, v.data);
        } else t.setPending(vector, true);
        return 'msix';
      }
    }
    const m = this.msi?.state();
    if (m !== undefined && m.enabled) {
      const v = m.vectors[vector];
      if (v !== undefined && !v.masked) this.host.signalMessage('msi', vector, v.address, v.data);
      return 'msi';
    }
    return 'off';
  }

  /** The guest changed MSI or MSI-X: pending MSI-X vectors it unmasked go out now, and INTx follows the mode. */
  private interruptsChanged(e: InterruptConfigEvent): void {
    const s = e.state;
    if (s.kind === 'msix' && this.msix !== undefined && this.failedWith === undefined) {
      for (let i = 0; i < s.vectors.length; i++) {
        if (this.msix.isPending(i) && deliverable(s, i)) {
          this.msix.setPending(i, false);
          this.host.signalMessage('msix', i, s.vectors[i]!.address, s.vectors[i]!.data);
        }
      }
    }
    this.updateLine();
  }

  /** INTx as the bus sees it: the device's level, unless Interrupt Disable is set or messages are on. */
  private updateLine(): void {
    const status = this.fn.getStored(STATUS, 2);
    const withStatus = this.intxLevel ? status | STATUS_INTERRUPT : status & ~STATUS_INTERRUPT;
    if (withStatus !== status) this.fn.setStored(STATUS, 2, withStatus);
    const drive = this.failedWith === undefined && this.intxLevel && (this.fn.read(COMMAND, 2) & COMMAND_INTX_DISABLE) === 0 && this.mode() === 'off';
    if (drive === this.lineDriven) return;
    this.lineDriven = drive;
    this.host.setIntx(drive);
  }

  /** Guest access to BAR `index` (offset into the BAR): MSI-X structures, a `memory` BAR, or the plug-in's handlers. */
  barAccess(index: number): BarHandlers {
    const t = this.msix;
    const handlers = (): BarHandlers | undefined => this.behaviour.bars?.[index];
    const memory = this.memories.get(index);
    const inTable = (o: number, size: number): boolean => t !== undefined && t.table.bar === index && o >= t.table.offset && o + size <= t.table.offset + t.table.length;
    const inPba = (o: number, size: number): boolean => t !== undefined && t.pba.bar === index && o >= t.pba.offset && o + size <= t.pba.offset + t.pba.length;
    return {
      read: (offset, size) => {
        if (this.failedWith !== undefined) return allOnes(size);
        if (inTable(offset, size)) return t!.readTable(offset - t!.table.offset, size);
        if (inPba(offset, size)) return t!.readPba(offset - t!.pba.offset, size);
        if (memory !== undefined) return readLe(memory, offset, size);
        const h = handlers();
        if (h === undefined) return allOnes(size);
        const v = this.guard(() => h.read(offset, size), allOnes(size));
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          this.fail(`BAR ${index} read at 0x${offset.toString(16)} returned ${described(v)}, not a number`);
          return allOnes(size);
        }
        return (v & (size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1)) >>> 0;
      },
      write: (offset, size, value) => {
        if (this.failedWith !== undefined) return;
        if (inTable(offset, size)) return t!.writeTable(offset - t!.table.offset, size, value);
        if (inPba(offset, size)) return;
        if (memory !== undefined) return writeLe(memory, offset, size, value);
        const h = handlers();
        if (h !== undefined) this.guard(() => h.write(offset, size, value), undefined);
      },
    };
  }

  /** The pages of BAR `index` that must trap even when the BAR is memory: the MSI-X table and PBA. */
  trappedSpans(index: number): Array<{ offset: number; length: number }> {
    const t = this.msix;
    if (t === undefined) return [];
    return [t.table, t.pba].filter((s) => s.bar === index).map((s) => ({ offset: s.offset, length: s.length }));
  }

  /** Power-on state: interrupts quiet and masked, the plug-in's own reset. Config registers are reset by the bus (or the caller). */
  reset(): void {
    this.msix?.reset();
    this.msi?.refresh();
    this.intxLevel = false;
    this.updateLine();
    const r = this.behaviour.reset;
    if (r !== undefined) this.guard(() => r.call(this.behaviour), undefined, 'reset');
  }

  save(): SavedDevice {
    const t = this.msix;
    const memory: Record<string, string> = {};
    for (const [i, m] of this.memories) memory[String(i)] = Buffer.from(m).toString('base64');
    const s = this.behaviour.save;
    // Through JSON inside the guard: state that is not plain data breaks the contract.
    const device = s === undefined ? null : this.guard(() => JSON.parse(JSON.stringify(s.call(this.behaviour) ?? null)) as PlainData, null);
    return {
      plugin: this.definition.name,
      config: Buffer.from(this.fn.getStoredBytes(0, this.fn.length)).toString('hex'),
      ...(t === undefined ? {} : { msixTable: Array.from({ length: t.size * 4 }, (_, i) => t.readTable(i * 4, 4)) }),
      intx: this.intxLevel,
      memory,
      device,
    };
  }

  restore(state: SavedDevice): void {
    if (state.plugin !== this.definition.name) throw new PluginFault(`saved state of ${state.plugin}, not ${this.definition.name}`, { input: this.name });
    const bytes = Buffer.from(state.config, 'hex');
    for (let o = 0; o + 4 <= Math.min(bytes.length, this.fn.length); o += 4) this.fn.setStored(o, 4, bytes.readUInt32LE(o));
    state.msixTable?.forEach((w, i) => this.msix?.writeTable(i * 4, 4, w));
    for (const [i, b64] of Object.entries(state.memory)) this.memories.get(Number(i))?.set(Buffer.from(b64, 'base64'));
    this.intxLevel = state.intx;
    this.updateLine();
    const r = this.behaviour.restore;
    if (r !== undefined && state.device !== null) this.guard(() => r.call(this.behaviour, state.device!), undefined, 'restore');
  }
}
