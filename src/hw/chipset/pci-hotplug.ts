/**
 * ACPI PCI hot-plug of the i440FX/PIIX4 kind, as QEMU's hw/acpi/pcihp.c serves it and Linux's
 * acpiphp drives it through the DSDT (hw/acpi/generate/dsdt.ts, `hotplugTerms`):
 *
 *   PCIHP block (I/O, QEMU's 0xAE00):
 *     +0x00 UP    slots with a device just added (read; cleared by the read, as QEMU's
 *                 non-legacy PIIX4 does, so a later GPE does not report the same add again)
 *     +0x04 DOWN  slots whose device the monitor asks the guest to give up (read)
 *     +0x08 EJ    the guest's _EJ0: a 1 bit ejects that slot's device (write)
 *     +0x0C RMV   slots that may be hot-plugged (read)
 *     +0x10 SEL   the bus the registers above describe (read/write; only root bus 0 here)
 *   GPE0 block (I/O, QEMU's 0xAFE0): 16 status bits (write 1 to clear), then 16 enable bits;
 *     bit 1 is PCI hot-plug, whose _E01 runs the DSDT's PCNT (Notify 1 for UP, 3 for DOWN).
 *
 * The SCI is level-triggered: it is up while any enabled GPE status bit is set. The model
 * does no I/O: it tells its owner what the guest ejected through `onEject`.
 */
import type { AccessSize, PortIoHandler } from '../io.js';
import type { IrqLine } from '../irq/line.js';

export const PCIHP_BASE = 0xae00;
export const PCIHP_LENGTH = 0x14;
export const PCIHP_UP = 0x00;
export const PCIHP_DOWN = 0x04;
export const PCIHP_EJ = 0x08;
export const PCIHP_RMV = 0x0c;
export const PCIHP_SEL = 0x10;
export const GPE0_BASE = 0xafe0;
/** Status half, then enable half (FADT GPE0_BLK_LEN). */
export const GPE0_LENGTH = 4;
/** The GPE the PCI hot-plug event raises: \_GPE._E01, as on QEMU's PIIX4. */
export const GPE_PCI_HOTPLUG = 1;

/** Slot numbers 0-31 as a 32-bit mask. */
const bit = (slot: number): number => (1 << slot) >>> 0;

export interface PciHotplugEvents {
  /** The guest wrote EJ for a slot (its _EJ0): take the device out. */
  onEject(slot: number): void;
}

/**
 * The GPE0 block: status bits set by events and cleared by the guest (write 1 to clear),
 * enable bits the guest sets; the SCI line follows status AND enable.
 */
export class Gpe0Block implements PortIoHandler {
  private sts = 0;
  private en = 0;
  private level = false;

  constructor(
    readonly base: number,
    private readonly sci: IrqLine,
  ) {}

  /** An event: its status bit set, the SCI raised if the guest enabled it. */
  raise(gpe: number): void {
    this.sts |= bit(gpe) & 0xffff;
    this.update();
  }

  get status(): number {
    return this.sts;
  }

  get enable(): number {
    return this.en;
  }

  get sciLevel(): boolean {
    return this.level;
  }

  readPort(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(port - this.base + i) << (8 * i);
    return v >>> 0;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.writeByte(port - this.base + i, (value >>> (8 * i)) & 0xff);
    this.update();
  }

  private readByte(off: number): number {
    if (off === 0 || off === 1) return (this.sts >> (8 * off)) & 0xff;
    if (off === 2 || off === 3) return (this.en >> (8 * (off - 2))) & 0xff;
    return 0xff;
  }

  private writeByte(off: number, b: number): void {
    if (off === 0 || off === 1) this.sts &= ~(b << (8 * off));
    else if (off === 2 || off === 3) {
      const shift = 8 * (off - 2);
      this.en = (this.en & ~(0xff << shift)) | (b << shift);
    }
  }

  private update(): void {
    const level = (this.sts & this.en) !== 0;
    if (level === this.level) return;
    this.level = level;
    this.sci.set(level);
  }
}

/** The PCIHP register block of root bus 0. */
export class PciHotplug implements PortIoHandler {
  private up = 0;
  private down = 0;
  private bsel = 0;
  /** Slots with a hot-plugged (or hot-removable) device in them now. */
  private occupied = 0;

  constructor(
    readonly base: number,
    /** Slots the DSDT declares with _EJ0: the only ones that take a device live. */
    readonly removable: number,
    private readonly gpe: Gpe0Block,
    private readonly events: PciHotplugEvents,
  ) {}

  /** Whether a slot can take a device now (declared removable, and empty). */
  isFree(slot: number): boolean {
    return (this.removable & bit(slot)) !== 0 && (this.occupied & bit(slot)) === 0;
  }

  /** The lowest free hot-plug slot, or undefined when the bus is full. */
  freeSlot(): number | undefined {
    for (let s = 0; s < 32; s++) if (this.isFree(s)) return s;
    return undefined;
  }

  /** A device present at boot in a removable slot (a dynamic device of the plan). */
  markOccupied(slot: number): void {
    this.occupied |= bit(slot);
  }

  /** A device was put in the slot: UP, then the GPE (the guest's PCNT sends Device Check). */
  plug(slot: number): void {
    this.occupied |= bit(slot);
    this.up = (this.up | bit(slot)) >>> 0;
    this.down = (this.down & ~bit(slot)) >>> 0;
    this.gpe.raise(GPE_PCI_HOTPLUG);
  }

  /** Asks the guest to give the slot's device up: DOWN, then the GPE (Eject Request). */
  requestUnplug(slot: number): void {
    this.down = (this.down | bit(slot)) >>> 0;
    this.gpe.raise(GPE_PCI_HOTPLUG);
  }

  /** The slot is empty again, however it got so (the guest's eject, or the monitor's forced removal). */
  cleared(slot: number): void {
    this.occupied = (this.occupied & ~bit(slot)) >>> 0;
    this.up = (this.up & ~bit(slot)) >>> 0;
    this.down = (this.down & ~bit(slot)) >>> 0;
  }

  /** What the registers hold, for status replies and tests. */
  state(): { up: number; down: number; occupied: number; removable: number } {
    return { up: this.up, down: this.down, occupied: this.occupied, removable: this.removable };
  }

  readPort(port: number, size: AccessSize): number {
    const off = port - this.base;
    const reg = off & ~3;
    let v: number;
    if (this.bsel !== 0 && reg !== PCIHP_SEL) v = 0;
    else if (reg === PCIHP_UP) {
      v = this.up;
      this.up = 0;
    } else if (reg === PCIHP_DOWN) v = this.down;
    else if (reg === PCIHP_RMV) v = this.removable;
    else if (reg === PCIHP_SEL) v = this.bsel;
    else v = 0;
    const shifted = v >>> (8 * (off & 3));
    return size === 4 ? shifted >>> 0 : shifted & (size === 2 ? 0xffff : 0xff);
  }

  writePort(port: number, size: AccessSize, value: number): void {
    const off = port - this.base;
    if (off === PCIHP_SEL) {
      this.bsel = value >>> 0;
      return;
    }
    if (off !== PCIHP_EJ || size !== 4 || this.bsel !== 0) return;
    for (let slot = 0; slot < 32; slot++) {
      if ((value & bit(slot)) === 0 || (this.removable & bit(slot)) === 0) continue;
      // A slot already empty (a forced removal the guest ejects after) has nothing to take out.
      const had = (this.occupied & bit(slot)) !== 0;
      this.cleared(slot);
      if (had) this.events.onEject(slot);
    }
  }
}
