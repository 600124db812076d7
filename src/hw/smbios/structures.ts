/**
 * The SMBIOS structures a guest gets from hvmpt (DMTF DSP0134, version 2.8 layouts), as
 * typed data. Type 0 (BIOS information) is left to the firmware: SeaBIOS adds its own when
 * the tables it is given have none, as it does under QEMU.
 */

export interface SystemInfo {
  readonly type: 1;
  readonly handle: number;
  readonly manufacturer: string;
  readonly product: string;
  readonly version: string;
  readonly serial: string;
  /** 16 bytes, in the order the UUID's text form writes them. */
  readonly uuid: Uint8Array;
  readonly sku: string;
  readonly family: string;
}

export interface Chassis {
  readonly type: 3;
  readonly handle: number;
  readonly manufacturer: string;
  /** DSP0134 7.4.1: 0x01 Other, 0x03 Desktop, 0x17 Rack mount chassis... */
  readonly chassisType: number;
  readonly version: string;
  readonly serial: string;
  readonly assetTag: string;
}

export interface Processor {
  readonly type: 4;
  readonly handle: number;
  readonly socket: string;
  readonly manufacturer: string;
  readonly version: string;
  /** MHz; 0 for unknown. */
  readonly maxSpeed: number;
  readonly currentSpeed: number;
  readonly cores: number;
  readonly threads: number;
}

export interface MemoryArray {
  readonly type: 16;
  readonly handle: number;
  /** Bytes. */
  readonly maximumCapacity: bigint;
  readonly devices: number;
}

export interface MemoryDevice {
  readonly type: 17;
  readonly handle: number;
  readonly arrayHandle: number;
  /** Bytes, a whole number of MiB. */
  readonly size: bigint;
  readonly locator: string;
  readonly manufacturer: string;
}

export interface MappedAddress {
  readonly type: 19;
  readonly handle: number;
  readonly arrayHandle: number;
  /** Bytes: [start, end). */
  readonly start: bigint;
  readonly end: bigint;
  readonly partitionWidth: number;
}

export interface BootInfo {
  readonly type: 32;
  readonly handle: number;
  /** 0: no errors detected. */
  readonly status: number;
}

export interface EndOfTable {
  readonly type: 127;
  readonly handle: number;
}

/** Any structure found while decoding, as its parts (the typed views above are built from these). */
export interface RawStructure {
  readonly type: number;
  readonly handle: number;
  /** The formatted area, header included. */
  readonly formatted: Uint8Array;
  /** Its strings, string number 1 first. */
  readonly strings: readonly string[];
  /** Where it starts in the structure table. */
  readonly offset: number;
}

export type SmbiosStructure = SystemInfo | Chassis | Processor | MemoryArray | MemoryDevice | MappedAddress | BootInfo | EndOfTable;

/** Formatted-area lengths of the 2.8 layouts written here. */
export const STRUCTURE_LENGTH: Readonly<Record<SmbiosStructure['type'], number>> = {
  1: 0x1b,
  3: 0x16,
  4: 0x2a,
  16: 0x17,
  17: 0x28,
  19: 0x1f,
  32: 0x0b,
  127: 0x04,
};
