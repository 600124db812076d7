import type { AccessSize, PortIoHandler } from '../io.js';

export const FW_CFG_PORT_SELECTOR = 0x510;
export const FW_CFG_PORT_DATA = 0x511;
export const FW_CFG_PORT_DMA = 0x514;
/** Selector, data and the 8-byte DMA address register (0x514-0x51B). */
export const FW_CFG_PORT_COUNT = 12;

/** Item keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
export const FW_CFG = {
  SIGNATURE: 0x00,
  ID: 0x01,
  UUID: 0x02,
  RAM_SIZE: 0x03,
  NOGRAPHIC: 0x04,
  NB_CPUS: 0x05,
  MACHINE_ID: 0x06,
  KERNEL_ADDR: 0x07,
  KERNEL_SIZE: 0x08,
  KERNEL_CMDLINE: 0x09,
  INITRD_ADDR: 0x0a,
  INITRD_SIZE: 0x0b,
  BOOT_DEVICE: 0x0c,
  NUMA: 0x0d,
  BOOT_MENU: 0x0e,
  MAX_CPUS: 0x0f,
  KERNEL_ENTRY: 0x10,
  KERNEL_DATA: 0x11,
  INITRD_DATA: 0x12,
  CMDLINE_ADDR: 0x13,
  CMDLINE_SIZE: 0x14,
  CMDLINE_DATA: 0x15,
  SETUP_ADDR: 0x16,
  SETUP_SIZE: 0x17,
  SETUP_DATA: 0x18,
  FILE_DIR: 0x19,
  FILE_FIRST: 0x20,
  ACPI_TABLES: 0x8000,
  SMBIOS_ENTRIES: 0x8001,
  IRQ0_OVERRIDE: 0x8002,
  E820_TABLE: 0x8003,
} as const;

const ID_TRADITIONAL = 0x01;
const ID_DMA = 0x02;
const DMA_CTL_ERROR = 0x01;
const DMA_CTL_READ = 0x02;
const DMA_CTL_SKIP = 0x04;
const DMA_CTL_SELECT = 0x08;
const DMA_CTL_WRITE = 0x10;
/** "QEMU CFG": what the DMA address register reads as, so firmware can probe for it. */
const DMA_SIGNATURE = new TextEncoder().encode('QEMU CFG');
const DMA_ACCESS_SIZE = 16;
const FILE_NAME_LENGTH = 56;
const FILE_ENTRY_SIZE = 64;
/** DMA transfers are carried out in pieces of this size, so no guest length makes us allocate much. */
const DMA_CHUNK = 0x10000;

/**
 * Guest memory as a DMA-capable device sees it. Implementations refuse (undefined / false)
 * anything not wholly inside guest RAM, which is how a guest's DMA request is kept from
 * reaching ROM, MMIO or the host.
 */
export interface DmaMemory {
  /** Whether [address, address+length) lies wholly in guest RAM. */
  covers(address: bigint, length: number): boolean;
  read(address: bigint, length: number): Uint8Array | undefined;
  write(address: bigint, data: Uint8Array): boolean;
}

export interface FwCfgFile {
  readonly name: string;
  readonly data: Uint8Array;
  /** Whether the guest may write it through DMA (QEMU's writable files, e.g. for the table loader's pointers). */
  readonly writable?: boolean;
}

/** What the device refused, for the monitor's report. */
export interface FwCfgRefusal {
  readonly what: string;
  readonly detail: string;
}

interface Item {
  data: Uint8Array;
  readonly writable: boolean;
}

/**
 * QEMU's firmware configuration device on the PC's I/O ports: a 16-bit selector, a byte-wide
 * data port and the DMA interface (a big-endian 64-bit register whose low half, written last,
 * starts a transfer described by a FWCfgDmaAccess in guest memory). Items are numbered; named
 * files get numbers from 0x20 in name order and a directory at key 0x19. Reads past an item's
 * end give zeros; everything the guest asks that cannot be done is refused and recorded.
 */
export class FwCfg implements PortIoHandler {
  private readonly items = new Map<number, Item>();
  private readonly files: FwCfgFile[] = [];
  private selected = 0;
  private offset = 0;
  private dmaHigh = 0;
  private dirty = true;
  readonly refusals: FwCfgRefusal[] = [];

  constructor(
    private readonly memory: DmaMemory,
    items: ReadonlyMap<number, Uint8Array> = new Map(),
  ) {
    this.items.set(FW_CFG.SIGNATURE, { data: new TextEncoder().encode('QEMU'), writable: false });
    this.items.set(FW_CFG.ID, { data: le32(ID_TRADITIONAL | ID_DMA), writable: false });
    for (const [key, data] of items) this.setItem(key, data);
  }

  setItem(key: number, data: Uint8Array): void {
    if (key >= FW_CFG.FILE_FIRST && key < FW_CFG.ACPI_TABLES) throw new Error(`fw_cfg key 0x${key.toString(16)} is in the file range`);
    this.items.set(key, { data, writable: false });
  }

  addFile(file: FwCfgFile): void {
    if (new TextEncoder().encode(file.name).length >= FILE_NAME_LENGTH) throw new Error(`fw_cfg file name too long: ${file.name}`);
    if (this.files.some((f) => f.name === file.name)) throw new Error(`fw_cfg file ${file.name} added twice`);
    this.files.push(file);
    this.dirty = true;
  }

  /** The current content of a file (writable files change under the guest's DMA writes). */
  file(name: string): Uint8Array | undefined {
    this.seal();
    const i = this.sortedFiles().findIndex((f) => f.name === name);
    return i < 0 ? undefined : this.items.get(FW_CFG.FILE_FIRST + i)?.data;
  }

  fileNames(): string[] {
    return this.sortedFiles().map((f) => f.name);
  }

  private sortedFiles(): FwCfgFile[] {
    return [...this.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private seal(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const sorted = this.sortedFiles();
    const dir = new Uint8Array(4 + sorted.length * FILE_ENTRY_SIZE);
    const v = new DataView(dir.buffer);
    v.setUint32(0, sorted.length, false);
    sorted.forEach((f, i) => {
      const o = 4 + i * FILE_ENTRY_SIZE;
      const key = FW_CFG.FILE_FIRST + i;
      v.setUint32(o, f.data.length, false);
      v.setUint16(o + 4, key, false);
      dir.set(new TextEncoder().encode(f.name), o + 8);
      const old = this.items.get(key);
      // A writable file keeps what the guest wrote into it.
      this.items.set(key, { data: old !== undefined && f.writable ? old.data : f.data, writable: f.writable === true });
    });
    this.items.set(FW_CFG.FILE_DIR, { data: dir, writable: false });
  }

  private select(key: number): void {
    this.seal();
    this.selected = key & 0xffff;
    this.offset = 0;
  }

  readPort(port: number, size: AccessSize): number {
    if (port >= FW_CFG_PORT_DMA) {
      let v = 0;
      for (let i = 0; i < size; i++) {
        const o = port - FW_CFG_PORT_DMA + i;
        v |= (o < 8 ? DMA_SIGNATURE[o]! : 0) << (8 * i);
      }
      return v >>> 0;
    }
    if (port === FW_CFG_PORT_DATA) {
      // The data port is one byte wide; wider reads return consecutive bytes, as QEMU splits them.
      let v = 0;
      for (let i = 0; i < size; i++) v |= this.nextByte() << (8 * i);
      return v >>> 0;
    }
    return 0;
  }

  private nextByte(): number {
    this.seal();
    const item = this.items.get(this.selected);
    if (item === undefined || this.offset >= item.data.length) return 0;
    return item.data[this.offset++]!;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    if (port === FW_CFG_PORT_SELECTOR) {
      this.select(size === 1 ? value & 0xff : value & 0xffff);
      return;
    }
    if (port === FW_CFG_PORT_DATA) {
      this.refusals.push({ what: 'data port write', detail: 'the data port is read-only; writes go through DMA' });
      return;
    }
    // The DMA register is big-endian: the byte at the lowest port is the most significant.
    if (port === FW_CFG_PORT_DMA && size === 4) {
      this.dmaHigh = bswap32(value);
    } else if (port === FW_CFG_PORT_DMA + 4 && size === 4) {
      const address = (BigInt(this.dmaHigh) << 32n) | BigInt(bswap32(value));
      this.dmaHigh = 0;
      this.dma(address);
    } else {
      this.refusals.push({ what: 'DMA register write', detail: `${size}-byte write at port 0x${port.toString(16)}; only 4-byte writes at 0x514 and 0x518 are defined` });
    }
  }

  private dma(address: bigint): void {
    const header = this.memory.read(address, DMA_ACCESS_SIZE);
    if (header === undefined) {
      this.refusals.push({ what: 'DMA descriptor', detail: `descriptor at 0x${address.toString(16)} is not in guest RAM` });
      return;
    }
    const hv = new DataView(header.buffer, header.byteOffset, DMA_ACCESS_SIZE);
    const control = hv.getUint32(0, false);
    let length = hv.getUint32(4, false);
    let target = hv.getBigUint64(8, false);
    let error = false;
    if (control & DMA_CTL_SELECT) this.select(control >>> 16);
    const op = control & (DMA_CTL_READ | DMA_CTL_WRITE | DMA_CTL_SKIP);
    const item = this.items.get(this.selected);
    if (op === DMA_CTL_READ) {
      // Check the whole destination first: nothing is half-written when the guest points outside RAM.
      if (length > 0 && !this.memory.covers(target, length)) error = true;
      while (!error && length > 0) {
        const n = Math.min(length, DMA_CHUNK);
        const chunk = new Uint8Array(n);
        if (item !== undefined && this.offset < item.data.length) {
          const avail = item.data.subarray(this.offset, Math.min(item.data.length, this.offset + n));
          chunk.set(avail);
        }
        if (!this.memory.write(target, chunk)) error = true;
        else {
          this.offset += n;
          target += BigInt(n);
          length -= n;
        }
      }
      if (error) this.refusals.push({ what: 'DMA read', detail: `destination 0x${target.toString(16)} (+${length}) is not guest RAM` });
    } else if (op === DMA_CTL_WRITE) {
      if (item === undefined || !item.writable || this.offset + length > item.data.length) {
        error = true;
        this.refusals.push({ what: 'DMA write', detail: `item 0x${this.selected.toString(16)} is not writable there` });
      } else {
        const src = this.memory.read(target, length);
        if (src === undefined) {
          error = true;
          this.refusals.push({ what: 'DMA write', detail: `source 0x${target.toString(16)} (+${length}) is not guest RAM` });
        } else {
          item.data = Uint8Array.from(item.data);
          item.data.set(src, this.offset);
          this.offset += length;
        }
      }
    } else if (op === DMA_CTL_SKIP) {
      this.offset += length;
    } else if (op !== 0) {
      error = true;
      this.refusals.push({ what: 'DMA control', detail: `control 0x${control.toString(16)} asks for more than one operation` });
    }
    const done = new Uint8Array(4);
    new DataView(done.buffer).setUint32(0, error ? DMA_CTL_ERROR : 0, false);
    this.memory.write(address, done);
  }
}

export function le16(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >> 8) & 0xff);
}

export function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}
