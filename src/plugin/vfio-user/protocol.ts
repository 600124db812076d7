/**
 * vfio-user's wire format (QEMU's docs/interop/vfio-user.rst): a 16-byte header, then each
 * command's payload, host-endian (little-endian here), with file descriptors as SCM_RIGHTS.
 * Offsets are named as the specification's tables give them, from the end of the header.
 */

export const VFIO_USER_MAJOR = 0;
export const VFIO_USER_MINOR = 1;

export const CMD = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;

export const CMD_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(CMD).map(([k, v]) => [v, k]));

/** The header: message ID, command, message size (header included), flags, error. */
export const HEADER = { id: 0, command: 2, size: 4, flags: 8, error: 12, length: 16 } as const;
export const FLAG = { TYPE_MASK: 0xf, COMMAND: 0x0, REPLY: 0x1, NO_REPLY: 0x10, ERROR: 0x20 } as const;

/** VERSION: major, minor, then optional NUL-terminated JSON. */
export const VERSION = { major: 0, minor: 2, json: 4 } as const;

/** DMA_MAP: argsz, flags (1 readable, 2 writeable), file offset, DMA address, size. */
export const DMA_MAP = { argsz: 0, flags: 4, offset: 8, address: 16, size: 24, length: 32 } as const;
export const DMA_FLAG = { READ: 1, WRITE: 2 } as const;
/** DMA_UNMAP: argsz, flags, address, size. */
export const DMA_UNMAP = { argsz: 0, flags: 4, address: 8, size: 16, length: 24 } as const;

/** DEVICE_GET_INFO: argsz, flags (1 reset, 2 PCI), regions, IRQ types. */
export const DEVICE_INFO = { argsz: 0, flags: 4, numRegions: 8, numIrqs: 12, length: 16 } as const;
export const DEVICE_FLAG = { RESET: 1, PCI: 2 } as const;

/** DEVICE_GET_REGION_INFO: struct vfio_region_info. */
export const REGION_INFO = { argsz: 0, flags: 4, index: 8, capOffset: 12, size: 16, offset: 24, length: 32 } as const;
export const REGION_FLAG = { READ: 1, WRITE: 2, MMAP: 4, CAPS: 8 } as const;
/** vfio_info_cap_header then vfio_region_info_cap_sparse_mmap. */
export const CAP = { id: 0, version: 2, next: 4, length: 8 } as const;
export const CAP_SPARSE_MMAP = 1;
export const SPARSE = { nrAreas: 8, areas: 16, areaLength: 16 } as const;

/** DEVICE_GET_IRQ_INFO: struct vfio_irq_info. */
export const IRQ_INFO = { argsz: 0, flags: 4, index: 8, count: 12, length: 16 } as const;
export const IRQ_INFO_FLAG = { EVENTFD: 1, MASKABLE: 2, AUTOMASKED: 4, NORESIZE: 8 } as const;

/** DEVICE_SET_IRQS: struct vfio_irq_set, data after it. */
export const IRQ_SET = { argsz: 0, flags: 4, index: 8, start: 12, count: 16, data: 20 } as const;
export const IRQ_SET_FLAG = { DATA_NONE: 1, DATA_BOOL: 2, DATA_EVENTFD: 4, ACTION_MASK: 8, ACTION_UNMASK: 16, ACTION_TRIGGER: 32 } as const;
export const IRQ_SET_DATA_MASK = 0x7;
export const IRQ_SET_ACTION_MASK = 0x38;

/** REGION_READ / REGION_WRITE: offset, region, count, data. */
export const REGION_ACCESS = { offset: 0, region: 8, count: 12, data: 16 } as const;
/** DMA_READ / DMA_WRITE: address, count, data. */
export const DMA_ACCESS = { address: 0, count: 8, data: 16 } as const;

/** PCI region and interrupt indexes, as VFIO numbers them. */
export const PCI_REGIONS = 9;
export const PCI_CONFIG_REGION = 7;
export const PCI_IRQ = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const PCI_IRQS = 5;

/** Largest REGION/DMA transfer either side accepts (the specification's default). */
export const MAX_DATA_XFER = 1 << 20;
/** Largest message hvmpt accepts: a full transfer plus its header and fields. */
export const MAX_MESSAGE = MAX_DATA_XFER + 64;
/** File descriptors hvmpt accepts in one message. */
export const MAX_MSG_FDS = 32;

/** errno values the specification's replies carry. */
export const ERRNO = { EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOSPC: 28, ENOSYS: 38, ENOTSUP: 95 } as const;

/** A message as it crossed the socket. */
export interface Message {
  readonly id: number;
  readonly command: number;
  readonly flags: number;
  readonly error: number;
  readonly payload: Uint8Array;
  readonly fds: readonly number[];
}

export function encodeMessage(m: { id: number; command: number; flags: number; error?: number; payload?: Uint8Array }): Uint8Array {
  const payload = m.payload ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER.length + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(HEADER.id, m.id, true);
  v.setUint16(HEADER.command, m.command, true);
  v.setUint32(HEADER.size, out.length, true);
  v.setUint32(HEADER.flags, m.flags, true);
  v.setUint32(HEADER.error, m.error ?? 0, true);
  out.set(payload, HEADER.length);
  return out;
}

/** A payload buffer with a DataView over it. */
export function payload(length: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(length);
  return { bytes, view: new DataView(bytes.buffer) };
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
