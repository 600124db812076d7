import type { PciFunction, RegisterDescriptor } from './function.js';
import {
  BIST,
  BRIDGE_CONTROL,
  CACHE_LINE_SIZE,
  CAPABILITY_LIST,
  CARDBUS_CIS,
  COMMAND,
  HEADER_TYPE,
  HEADER_TYPE_BRIDGE,
  HEADER_TYPE_CARDBUS,
  HEADER_TYPE_MULTIFUNCTION,
  INTERRUPT_LINE,
  INTERRUPT_PIN,
  IO_BASE,
  IO_BASE_UPPER16,
  IO_LIMIT,
  IO_LIMIT_UPPER16,
  IO_RANGE_TYPE_32,
  IO_RANGE_TYPE_MASK,
  LATENCY_TIMER,
  MEMORY_BASE,
  MEMORY_LIMIT,
  MIN_GNT,
  PREF_BASE_UPPER32,
  PREF_LIMIT_UPPER32,
  PREF_MEMORY_BASE,
  PREF_MEMORY_LIMIT,
  PREF_RANGE_TYPE_64,
  PREF_RANGE_TYPE_MASK,
  PRIMARY_BUS,
  REVISION_ID,
  SEC_STATUS,
  STATUS,
  STATUS_RW1C,
  SUBSYSTEM_VENDOR_ID,
  VENDOR_ID,
} from './regs.js';

/**
 * Command bits a guest may set: I/O and memory decode, bus master, MWI, VGA snoop, parity,
 * SERR, fast back-to-back, INTx disable. Special cycles (3) and stepping (7) are read-only.
 */
export const COMMAND_WRITABLE = 0x0777;

/** Bridge control bits a guest may set; discard timer status (bit 10) is RW1C. */
const BRIDGE_CONTROL_WRITABLE = 0x0fff;

/**
 * The standard header's register table, after QEMU's Xen pass-through table: which bits of
 * each register are hvmpt's (emulated) and which the guest may write. Applied to real and
 * emulated functions alike (a function with no backend keeps every bit in storage).
 *
 * Emulated on a real function: IDs, class, revision and subsystem (so a plan can show others),
 * Command's I/O and memory decode (they drive the update-mapping events; the device's own
 * decode stays as the host set it), cache line and latency, header type (its multi-function
 * bit follows the composed slot), Interrupt Line, and on a bridge everything that routes:
 * bus numbers, windows, bridge control. Status passes through with its error bits RW1C.
 * BARs and the ROM are declared by BarSet.
 */
export function headerDescriptors(headerType: number): RegisterDescriptor[] {
  const type = headerType & 0x7f;
  const d: RegisterDescriptor[] = [
    { offset: VENDOR_ID, size: 4, emulated: 0xffff_ffff, writable: 0 },
    { offset: COMMAND, size: 2, emulated: 0x0003, writable: COMMAND_WRITABLE, reset: 0 },
    { offset: STATUS, size: 2, emulated: 0, writable: STATUS_RW1C, rw1c: STATUS_RW1C },
    { offset: REVISION_ID, size: 4, emulated: 0xffff_ffff, writable: 0 },
    { offset: CACHE_LINE_SIZE, size: 1, emulated: 0xff, writable: 0xff, reset: 0 },
    { offset: LATENCY_TIMER, size: 1, emulated: 0xff, writable: 0xff, reset: 0 },
    { offset: HEADER_TYPE, size: 1, emulated: 0xff, writable: 0 },
    { offset: BIST, size: 1, emulated: 0, writable: 0 },
    { offset: CAPABILITY_LIST, size: 4, emulated: 0, writable: 0 },
    { offset: CAPABILITY_LIST + 4, size: 4, emulated: 0, writable: 0 },
    { offset: INTERRUPT_LINE, size: 1, emulated: 0xff, writable: 0xff, reset: 0 },
    { offset: INTERRUPT_PIN, size: 1, emulated: 0xff, writable: 0 },
  ];
  if (type === HEADER_TYPE_BRIDGE) {
    d.push(
      // Primary, secondary, subordinate bus and secondary latency.
      { offset: PRIMARY_BUS, size: 4, emulated: 0xffff_ffff, writable: 0xffff_ffff, reset: 0 },
      // The low nibble of each window base/limit says how wide it is: read-only.
      { offset: IO_BASE, size: 2, emulated: 0xffff, writable: 0xf0f0 },
      { offset: SEC_STATUS, size: 2, emulated: 0, writable: STATUS_RW1C, rw1c: STATUS_RW1C },
      { offset: MEMORY_BASE, size: 4, emulated: 0xffff_ffff, writable: 0xfff0_fff0 },
      { offset: PREF_MEMORY_BASE, size: 4, emulated: 0xffff_ffff, writable: 0xfff0_fff0 },
      { offset: PREF_BASE_UPPER32, size: 4, emulated: 0xffff_ffff, writable: 0 },
      { offset: PREF_LIMIT_UPPER32, size: 4, emulated: 0xffff_ffff, writable: 0 },
      { offset: IO_BASE_UPPER16, size: 4, emulated: 0xffff_ffff, writable: 0 },
      {
        offset: BRIDGE_CONTROL,
        size: 2,
        emulated: 0xffff,
        writable: BRIDGE_CONTROL_WRITABLE,
        rw1c: 0x0400,
        reset: 0,
      },
    );
  } else if (type === 0) {
    d.push(
      { offset: CARDBUS_CIS, size: 4, emulated: 0, writable: 0 },
      { offset: SUBSYSTEM_VENDOR_ID, size: 4, emulated: 0xffff_ffff, writable: 0 },
      { offset: MIN_GNT, size: 2, emulated: 0, writable: 0 },
    );
  } else {
    // CardBus and unknown header types: past the common part, read-only pass-through...
    for (let o = 0x10; o < 0x40; o += 4) {
      if (o !== CAPABILITY_LIST && o !== INTERRUPT_LINE) d.push({ offset: o, size: 4, emulated: 0, writable: 0 });
    }
    // ...except a CardBus bridge's bus numbers, which route config cycles as a bridge's do.
    if (type === HEADER_TYPE_CARDBUS) d.push({ offset: PRIMARY_BUS, size: 4, emulated: 0xffff_ffff, writable: 0xffff_ffff, reset: 0 });
  }
  return d;
}

/**
 * Declares the standard header on `fn`. On a bridge the upper halves of the windows are
 * writable only when the base registers say the window is 32-bit (I/O) or 64-bit (prefetchable),
 * and the window bases and limits reset to "closed".
 */
export function declareHeader(fn: PciFunction, headerType: number): void {
  for (const d of headerDescriptors(headerType)) fn.declare(d);
  if ((headerType & 0x7f) === HEADER_TYPE_BRIDGE) {
    const io = fn.getStored(IO_BASE, 2);
    const ioType = io & IO_RANGE_TYPE_MASK;
    const pref = fn.getStored(PREF_MEMORY_BASE, 2);
    const prefType = pref & PREF_RANGE_TYPE_MASK;
    // Closed after reset: base above limit, keeping the read-only width nibbles.
    fn.declare({ offset: IO_BASE, size: 2, emulated: 0xffff, writable: 0xf0f0, reset: 0x00f0 | ioType | (ioType << 8) });
    fn.declare({ offset: MEMORY_BASE, size: 4, emulated: 0xffff_ffff, writable: 0xfff0_fff0, reset: 0x0000_fff0 });
    fn.declare({
      offset: PREF_MEMORY_BASE,
      size: 4,
      emulated: 0xffff_ffff,
      writable: 0xfff0_fff0,
      reset: (0x0000_fff0 | prefType | (prefType << 16)) >>> 0,
    });
    if (ioType === IO_RANGE_TYPE_32) {
      fn.declare({ offset: IO_BASE_UPPER16, size: 4, emulated: 0xffff_ffff, writable: 0xffff_ffff, reset: 0 });
    }
    if (prefType === PREF_RANGE_TYPE_64) {
      fn.declare({ offset: PREF_BASE_UPPER32, size: 4, emulated: 0xffff_ffff, writable: 0xffff_ffff, reset: 0 });
      fn.declare({ offset: PREF_LIMIT_UPPER32, size: 4, emulated: 0xffff_ffff, writable: 0xffff_ffff, reset: 0 });
    }
  }
}

/** Sets or clears the multi-function bit of a function 0 whose slot gained or lost functions. */
export function setMultifunction(fn: PciFunction, on: boolean): void {
  const ht = fn.getStored(HEADER_TYPE, 1);
  const v = on ? ht | HEADER_TYPE_MULTIFUNCTION : ht & ~HEADER_TYPE_MULTIFUNCTION;
  fn.declare({ offset: HEADER_TYPE, size: 1, emulated: 0xff, writable: 0, value: v });
}
