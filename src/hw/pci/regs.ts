/**
 * Named offsets and bits of the PCI configuration header (PCI Local Bus 3.0, PCI-to-PCI
 * Bridge 1.2, PCI Express Base). Every other module reads the header through these names.
 */

/** Config space sizes: conventional and PCI Express (extended). */
export const CONFIG_SIZE = 0x100;
export const EXT_CONFIG_SIZE = 0x1000;

// Common to header types 0 and 1.
export const VENDOR_ID = 0x00;
export const DEVICE_ID = 0x02;
export const COMMAND = 0x04;
export const STATUS = 0x06;
export const REVISION_ID = 0x08;
export const CLASS_PROG = 0x09;
export const CLASS_DEVICE = 0x0a;
export const CACHE_LINE_SIZE = 0x0c;
export const LATENCY_TIMER = 0x0d;
export const HEADER_TYPE = 0x0e;
export const BIST = 0x0f;
export const BAR0 = 0x10;
export const CAPABILITY_LIST = 0x34;
export const INTERRUPT_LINE = 0x3c;
export const INTERRUPT_PIN = 0x3d;

// Header type 0.
export const CARDBUS_CIS = 0x28;
export const SUBSYSTEM_VENDOR_ID = 0x2c;
export const SUBSYSTEM_ID = 0x2e;
export const ROM_ADDRESS = 0x30;
export const MIN_GNT = 0x3e;
export const MAX_LAT = 0x3f;

// Header type 1 (PCI-to-PCI bridge).
export const PRIMARY_BUS = 0x18;
export const SECONDARY_BUS = 0x19;
export const SUBORDINATE_BUS = 0x1a;
export const SEC_LATENCY_TIMER = 0x1b;
export const IO_BASE = 0x1c;
export const IO_LIMIT = 0x1d;
export const SEC_STATUS = 0x1e;
export const MEMORY_BASE = 0x20;
export const MEMORY_LIMIT = 0x22;
export const PREF_MEMORY_BASE = 0x24;
export const PREF_MEMORY_LIMIT = 0x26;
export const PREF_BASE_UPPER32 = 0x28;
export const PREF_LIMIT_UPPER32 = 0x2c;
export const IO_BASE_UPPER16 = 0x30;
export const IO_LIMIT_UPPER16 = 0x32;
export const ROM_ADDRESS1 = 0x38;
export const BRIDGE_CONTROL = 0x3e;

export const HEADER_TYPE_NORMAL = 0;
export const HEADER_TYPE_BRIDGE = 1;
export const HEADER_TYPE_CARDBUS = 2;
export const HEADER_TYPE_MULTIFUNCTION = 0x80;

// Command register bits.
export const CMD_IO = 1 << 0;
export const CMD_MEMORY = 1 << 1;
export const CMD_MASTER = 1 << 2;
export const CMD_SPECIAL = 1 << 3;
export const CMD_INVALIDATE = 1 << 4;
export const CMD_VGA_PALETTE = 1 << 5;
export const CMD_PARITY = 1 << 6;
export const CMD_WAIT = 1 << 7;
export const CMD_SERR = 1 << 8;
export const CMD_FAST_BACK = 1 << 9;
export const CMD_INTX_DISABLE = 1 << 10;

// Status register bits.
export const STATUS_INTERRUPT = 1 << 3;
export const STATUS_CAP_LIST = 1 << 4;
/** The error bits software clears by writing 1: master data parity, target/master aborts, SERR, parity. */
export const STATUS_RW1C = (1 << 8) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15);

// BAR encoding.
export const BAR_SPACE_IO = 0x1;
export const BAR_MEM_TYPE_MASK = 0x6;
export const BAR_MEM_TYPE_64 = 0x4;
export const BAR_MEM_PREFETCH = 0x8;
export const BAR_IO_MASK = 0xfffffffc;
export const BAR_MEM_MASK = 0xfffffff0;
export const ROM_ENABLE = 0x1;
export const ROM_ADDRESS_MASK = 0xfffff800;

// Bridge window encodings: the low nibble of the base registers says how wide the window is.
export const IO_RANGE_TYPE_MASK = 0x0f;
export const IO_RANGE_TYPE_32 = 0x01;
export const PREF_RANGE_TYPE_MASK = 0x0f;
export const PREF_RANGE_TYPE_64 = 0x01;

// Bridge control bits.
export const BRIDGE_CTL_PARITY = 1 << 0;
export const BRIDGE_CTL_SERR = 1 << 1;
export const BRIDGE_CTL_ISA = 1 << 2;
export const BRIDGE_CTL_VGA = 1 << 3;
export const BRIDGE_CTL_VGA16 = 1 << 4;
export const BRIDGE_CTL_MASTER_ABORT = 1 << 5;
export const BRIDGE_CTL_BUS_RESET = 1 << 6;
export const BRIDGE_CTL_DISCARD_TIMER_STATUS = 1 << 10;

/** Index of the expansion ROM among a function's BARs (0-5 are the BAR registers), as Linux numbers it. */
export const ROM_BAR_INDEX = 6;

/** Offset of BAR `index` (0-5), or of the ROM register for index 6, for a header type. */
export function barOffset(index: number, headerType: number): number {
  if (index === ROM_BAR_INDEX) return headerType === HEADER_TYPE_BRIDGE ? ROM_ADDRESS1 : ROM_ADDRESS;
  return BAR0 + 4 * index;
}

/** Number of BAR registers in a header type: 6 for endpoints, 2 for bridges, 1 for CardBus. */
export function barCount(headerType: number): number {
  return headerType === HEADER_TYPE_BRIDGE ? 2 : headerType === HEADER_TYPE_CARDBUS ? 1 : 6;
}
