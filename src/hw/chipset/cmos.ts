import type { AccessSize, PortIoHandler } from '../io.js';

export const CMOS_INDEX_PORT = 0x70;
export const CMOS_DATA_PORT = 0x71;

/** Register numbers (MC146818 and the PC's NVRAM conventions SeaBIOS reads). */
export const CMOS = {
  seconds: 0x00,
  minutes: 0x02,
  hours: 0x04,
  dayOfWeek: 0x06,
  dayOfMonth: 0x07,
  month: 0x08,
  year: 0x09,
  statusA: 0x0a,
  statusB: 0x0b,
  statusC: 0x0c,
  statusD: 0x0d,
  floppyTypes: 0x10,
  diskTypes: 0x12,
  equipment: 0x14,
  baseMemLow: 0x15,
  baseMemHigh: 0x16,
  extMemLow: 0x17,
  extMemHigh: 0x18,
  extMem2Low: 0x30,
  extMem2High: 0x31,
  century: 0x32,
  /** RAM between 16 MiB and 4 GiB, in 64 KiB units (SeaBIOS: CMOS_MEM_EXTMEM2_*). */
  above16MLow: 0x34,
  above16MHigh: 0x35,
  bootFlags1: 0x38,
  bootFlags2: 0x3d,
  /** RAM above 4 GiB in 64 KiB units, three bytes (SeaBIOS: CMOS_MEM_HIGHMEM_*). */
  above4GLow: 0x5b,
  above4GMid: 0x5c,
  above4GHigh: 0x5d,
  /** Number of CPUs minus one (SeaBIOS: CMOS_BIOS_SMP_COUNT). */
  smpCount: 0x5f,
} as const;

const STATUS_B_24H = 0x02;
const STATUS_B_BINARY = 0x04;
const STATUS_D_VALID = 0x80;

export interface CmosConfig {
  /** RAM below 4 GiB in bytes (what the guest's E820 calls RAM up to the PCI hole). */
  readonly ramBelow4G: number;
  /** RAM above 4 GiB in bytes. */
  readonly ramAbove4G: bigint;
  readonly cpus: number;
  /** Wall-clock source in milliseconds since the epoch (injected: the model does no I/O). */
  readonly now: () => number;
}

/**
 * The MC146818 RTC and its NVRAM: index port 0x70 (bit 7 is the NMI mask), data port 0x71.
 * The clock registers are computed from `now()` at each read in the format status B selects
 * (BCD or binary, 12 or 24 hours), and status A never shows an update in progress, so
 * firmware waiting on UIP never waits. The memory-size bytes follow QEMU's layout, which is
 * what SeaBIOS falls back to when fw_cfg has no etc/e820.
 */
export class Cmos implements PortIoHandler {
  private index = 0;
  private nmiDisabled = false;
  private readonly nvram = new Uint8Array(128);

  constructor(private readonly config: CmosConfig) {
    const n = this.nvram;
    n[CMOS.statusA] = 0x26;
    n[CMOS.statusB] = STATUS_B_24H;
    n[CMOS.statusD] = STATUS_D_VALID;
    n[CMOS.baseMemLow] = 640 & 0xff;
    n[CMOS.baseMemHigh] = 640 >> 8;
    const extKb = Math.min(Math.max(config.ramBelow4G - 0x100000, 0) / 1024, 0xffff);
    n[CMOS.extMemLow] = n[CMOS.extMem2Low] = extKb & 0xff;
    n[CMOS.extMemHigh] = n[CMOS.extMem2High] = extKb >> 8;
    const above16M = Math.min(Math.max(config.ramBelow4G - 0x100_0000, 0) / 0x10000, 0xffff);
    n[CMOS.above16MLow] = above16M & 0xff;
    n[CMOS.above16MHigh] = above16M >> 8;
    const above4G = config.ramAbove4G / 0x10000n;
    n[CMOS.above4GLow] = Number(above4G & 0xffn);
    n[CMOS.above4GMid] = Number((above4G >> 8n) & 0xffn);
    n[CMOS.above4GHigh] = Number((above4G >> 16n) & 0xffn);
    n[CMOS.smpCount] = Math.max(config.cpus - 1, 0);
    // Boot from hard disk first (QEMU's default "cad" order encoding is not needed: fw_cfg bootorder rules).
    n[CMOS.bootFlags2] = 0x02;
    n[CMOS.equipment] = 0x06; // math coprocessor present, no floppy drives, no video
  }

  get nmiMasked(): boolean {
    return this.nmiDisabled;
  }

  readPort(port: number, size: AccessSize): number {
    if (port === CMOS_INDEX_PORT) return size === 1 ? this.index : (this.index | (this.read(this.index) << 8)) & 0xffff;
    return this.read(this.index);
  }

  writePort(port: number, size: AccessSize, value: number): void {
    if (port === CMOS_INDEX_PORT) {
      this.index = value & 0x7f;
      this.nmiDisabled = (value & 0x80) !== 0;
      if (size >= 2) this.write(this.index, (value >> 8) & 0xff);
      return;
    }
    this.write(this.index, value & 0xff);
  }

  private read(reg: number): number {
    if (reg <= CMOS.year || reg === CMOS.century) return this.clock(reg);
    if (reg === CMOS.statusC) {
      // Reading C acknowledges (clears) pending RTC interrupt flags.
      const v = this.nvram[reg]!;
      this.nvram[reg] = 0;
      return v;
    }
    return this.nvram[reg]!;
  }

  private write(reg: number, v: number): void {
    if (reg === CMOS.statusC || reg === CMOS.statusD) return; // read-only
    if (reg === CMOS.statusA) v &= 0x7f; // UIP is read-only
    this.nvram[reg] = v;
  }

  private clock(reg: number): number {
    const d = new Date(this.config.now());
    const statusB = this.nvram[CMOS.statusB]!;
    const enc = (n: number): number => (statusB & STATUS_B_BINARY ? n : ((n / 10) | 0) * 16 + (n % 10));
    switch (reg) {
      case CMOS.seconds:
        return enc(d.getUTCSeconds());
      case CMOS.minutes:
        return enc(d.getUTCMinutes());
      case CMOS.hours: {
        const h = d.getUTCHours();
        if (statusB & STATUS_B_24H) return enc(h);
        const h12 = h % 12 === 0 ? 12 : h % 12;
        return enc(h12) | (h >= 12 ? 0x80 : 0);
      }
      case CMOS.dayOfWeek:
        return enc(d.getUTCDay() + 1);
      case CMOS.dayOfMonth:
        return enc(d.getUTCDate());
      case CMOS.month:
        return enc(d.getUTCMonth() + 1);
      case CMOS.year:
        return enc(d.getUTCFullYear() % 100);
      case CMOS.century:
        return enc((d.getUTCFullYear() / 100) | 0);
      default:
        // Alarm registers (1, 3, 5) are plain storage.
        return this.nvram[reg]!;
    }
  }
}
