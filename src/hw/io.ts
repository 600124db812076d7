/**
 * The narrow interfaces between device models (hw/) and whatever runs them (the monitor's
 * PIO/MMIO dispatch, a test harness, a vfio-user server). A model implements these and
 * knows nothing of KVM.
 */

/** Access widths handlers see. The dispatcher splits an 8-byte MMIO access into two 4-byte ones, low half first. */
export type AccessSize = 1 | 2 | 4;

export interface PortIoHandler {
  /** `port` is the absolute I/O port number. Returns the value zero-extended to `size` bytes. */
  readPort(port: number, size: AccessSize): number;
  writePort(port: number, size: AccessSize, value: number): void;
}

export interface MmioHandler {
  /** `offset` is relative to the base of the region the handler was registered for. */
  readMmio(offset: number, size: AccessSize): number;
  writeMmio(offset: number, size: AccessSize, value: number): void;
}

/** All ones of an access width: what a read of nothing returns on PC buses. */
export function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}
