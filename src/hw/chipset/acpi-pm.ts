import type { AccessSize, PortIoHandler } from '../io.js';
import type { SystemControl } from './system.js';

/** QEMU's PIIX4 PM block base once ACPI tables come from fw_cfg; SeaBIOS moves it there too. */
export const ACPI_PM_BASE = 0x600;
/** PM1a event block (status, enable), control block and PM timer, from the block's base. */
export const PM1_STS = 0;
export const PM1_EN = 2;
export const PM1_CNT = 4;
export const PM_TMR = 8;
export const ACPI_PM_LENGTH = 12;
/** The PM timer's frequency, fixed by the ACPI specification. */
export const PM_TIMER_HZ = 3_579_545;

const SCI_EN = 0x0001;
const SLP_TYP_SHIFT = 10;
const SLP_EN = 0x2000;
const WAK_STS = 0x8000;

export interface AcpiPmConfig {
  /** The SLP_TYP value the DSDT's \_S5 package gives for soft-off (QEMU's and ours: 0). */
  readonly s5SleepType: number;
  /** Monotonic time in nanoseconds (injected; the model does no I/O). */
  readonly nowNs: () => bigint;
}

/**
 * The ACPI fixed-hardware registers the FADT points at: PM1a_EVT (status/enable, status bits
 * write-1-to-clear), PM1a_CNT (SCI_EN, SLP_TYP, SLP_EN) and the 24-bit PM timer. Writing
 * SLP_EN with the \_S5 sleep type powers the machine off; other sleep states are refused and
 * recorded in `refusedSleepTypes`, since the monitor cannot resume a sleeping guest.
 */
export class AcpiPm implements PortIoHandler {
  private sts = 0;
  private en = 0;
  private cnt = SCI_EN;
  readonly refusedSleepTypes: number[] = [];

  constructor(
    readonly base: number,
    private readonly system: SystemControl,
    private readonly config: AcpiPmConfig,
  ) {}

  readPort(port: number, size: AccessSize): number {
    const off = port - this.base;
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(off + i) << (8 * i);
    return v >>> 0;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    const off = port - this.base;
    if (off === PM1_STS && size >= 2) this.sts &= ~(value & 0xffff);
    else if (off === PM1_EN && size >= 2) this.en = value & 0xffff;
    else if (off === PM1_CNT && size >= 2) this.writeControl(value & 0xffff);
    else {
      // Byte writes: merge into the 16-bit register they belong to.
      for (let i = 0; i < size; i++) this.writeByte(off + i, (value >>> (8 * i)) & 0xff);
    }
  }

  private readByte(off: number): number {
    const reg16 = (v: number): number => (off & 1 ? v >> 8 : v) & 0xff;
    if (off < PM1_EN) return reg16(this.sts);
    if (off < PM1_CNT) return reg16(this.en);
    if (off < PM1_CNT + 2) return reg16(this.cnt);
    if (off >= PM_TMR && off < PM_TMR + 4) {
      const ticks = Number(((this.config.nowNs() * BigInt(PM_TIMER_HZ)) / 1_000_000_000n) & 0xff_ffffn);
      return off - PM_TMR === 3 ? 0 : (ticks >> (8 * (off - PM_TMR))) & 0xff;
    }
    return 0xff;
  }

  private writeByte(off: number, b: number): void {
    const shift = (off & 1) * 8;
    const merge = (old: number): number => (old & ~(0xff << shift)) | (b << shift);
    if (off < PM1_EN) this.sts &= ~(b << shift);
    else if (off < PM1_CNT) this.en = merge(this.en);
    else if (off < PM1_CNT + 2) this.writeControl(merge(this.cnt));
  }

  private writeControl(v: number): void {
    if (v & SLP_EN) {
      const type = (v >> SLP_TYP_SHIFT) & 7;
      if (type === this.config.s5SleepType) {
        this.system.powerOff(`ACPI PM1a_CNT SLP_EN with SLP_TYP ${type} (S5)`);
      } else {
        this.refusedSleepTypes.push(type);
        this.sts |= WAK_STS;
      }
    }
    this.cnt = v & ~SLP_EN;
  }
}
