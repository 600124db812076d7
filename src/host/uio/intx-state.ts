/**
 * The Command register's Interrupt Disable bit (bit 10) of a uio function, shared by the vCPU
 * thread (the guest's config writes) and the INTx thread (interrupts and the guest's EOI).
 *
 * uio_pci_generic's handler sets the real bit when the device interrupts; the guest has its own
 * bit, which it must never see change under it nor be able to clear the host's mask with (a
 * guest's uio driver toggles it on every interrupt; any driver may rewrite Command). The real
 * bit is cleared only when the guest wants INTx (its bit clear) and has no interrupt in flight
 * (none triggered that its EOI has not resampled): then a device still asserting its line
 * interrupts again, exactly once per EOI.
 */
import type { Sys } from '../../native/sys.js';

/** Offsets in the shared words. */
const LOCK = 0;
const GUEST_DISABLE = 1;
const IN_FLIGHT = 2;
const STOP = 3;
/** 1 once the stop eventfd is closed, by whichever thread got there first. */
const STOP_CLOSED = 4;
/** 1 once the INTx thread has left its loop. */
const EXITED = 5;
export const INTX_STATE_WORDS = 6;

/** Byte 5 of config space holds Command bits 8-15; bit 2 of it is Interrupt Disable. */
export const COMMAND_HIGH = 0x05;
export const INTX_DISABLE_BIT = 0x04;
/** Byte 6 is Status bits 0-7; bit 3 is Interrupt Status. */
const STATUS_INTERRUPT = 0x08;

export class IntxState {
  private readonly words: Int32Array;
  /** KVM's irqfd trigger, once INTx is connected: a pending interrupt found on unmasking is sent through it. */
  trigger: number | undefined;
  constructor(
    private readonly sys: Sys,
    private readonly configFd: number,
    buffer: SharedArrayBuffer,
  ) {
    this.words = new Int32Array(buffer);
  }

  static buffer(): SharedArrayBuffer {
    return new SharedArrayBuffer(INTX_STATE_WORDS * 4);
  }

  /** The guest's own Interrupt Disable bit. */
  get guestDisable(): boolean {
    return Atomics.load(this.words, GUEST_DISABLE) !== 0;
  }

  /** A new INTx thread is about to start: nothing stops it yet (a state outlives one connect). */
  started(): void {
    Atomics.store(this.words, STOP, 0);
    Atomics.store(this.words, STOP_CLOSED, 0);
    Atomics.store(this.words, EXITED, 0);
  }

  /** Asks the INTx thread to end (it also watches an eventfd; this covers a thread between polls). */
  stop(): void {
    Atomics.store(this.words, STOP, 1);
  }

  get stopped(): boolean {
    return Atomics.load(this.words, STOP) !== 0;
  }

  /**
   * Closes the stop eventfd once, from either thread: the INTx thread as it ends, or the vCPU
   * thread when that thread never answered. Closing it twice could close an fd number the
   * process had handed to something else meanwhile.
   */
  closeStop(fd: number): void {
    if (Atomics.compareExchange(this.words, STOP_CLOSED, 0, 1) === 0) this.sys.close(fd);
  }

  /** The INTx thread is leaving its loop (and has closed what it owns). */
  exited(): void {
    Atomics.store(this.words, EXITED, 1);
    Atomics.notify(this.words, EXITED);
  }

  /** Waits up to `ms` for the INTx thread to end; whether it did. */
  waitExited(ms: number): boolean {
    return Atomics.wait(this.words, EXITED, 0, ms) !== 'timed-out' || Atomics.load(this.words, EXITED) === 1;
  }

  /** The state in words, for a debug log. */
  describe(): string {
    return `guest ${Atomics.load(this.words, GUEST_DISABLE) !== 0 ? 'masks' : 'wants'} INTx, ${Atomics.load(this.words, IN_FLIGHT) !== 0 ? 'one in flight' : 'none in flight'}, device ${(this.readHigh() & INTX_DISABLE_BIT) !== 0 ? 'masked' : 'unmasked'}`;
  }

  /** Runs `work` with the other thread kept out (a few system calls: a spin is enough). */
  locked<T>(work: () => T): T {
    while (Atomics.compareExchange(this.words, LOCK, 0, 1) !== 0) Atomics.wait(this.words, LOCK, 1, 1);
    try {
      return work();
    } finally {
      Atomics.store(this.words, LOCK, 0);
      Atomics.notify(this.words, LOCK, 1);
    }
  }

  /** The real bit the device should have now. */
  private wantMasked(): boolean {
    return Atomics.load(this.words, GUEST_DISABLE) !== 0 || Atomics.load(this.words, IN_FLIGHT) !== 0;
  }

  /** Reads byte 5 of the real Command register. */
  private readHigh(): number {
    const b = new Uint8Array(2);
    this.sys.pread(this.configFd, b, COMMAND_HIGH - 1);
    return b[1]!;
  }

  /**
   * What byte 5 of Command must be now (locked by the caller), from one read of Command and
   * Status as the kernel's pci_check_and_unmask_intx does: masked while the guest masks or an
   * interrupt is in flight; otherwise unmasked, unless the device already has an interrupt
   * pending (Status bit 3), which is then sent to the guest as a new interrupt while the device
   * stays masked (what vfio-pci does): unmasking a device that asserts its line would make the
   * host take an interrupt the guest may acknowledge before the host's handler reads Status.
   */
  private decide(high: number): number {
    if (this.wantMasked()) return high | INTX_DISABLE_BIT;
    const b = new Uint8Array(4);
    this.sys.pread(this.configFd, b, COMMAND_HIGH - 1);
    if ((b[2]! & STATUS_INTERRUPT) === 0) return high & ~INTX_DISABLE_BIT;
    Atomics.store(this.words, IN_FLIGHT, 1);
    if (this.trigger !== undefined) this.sys.eventfdWrite(this.trigger, 1n);
    return high | INTX_DISABLE_BIT;
  }

  /** Sets the real bit to what the state says (locked by the caller), with 16-bit accesses as the kernel makes them. */
  private apply(): void {
    const b = new Uint8Array(2);
    this.sys.pread(this.configFd, b, COMMAND_HIGH - 1);
    const high = b[1]!;
    const want = this.decide(high);
    if (want === high) return;
    b[1] = want;
    this.sys.pwrite(this.configFd, b, COMMAND_HIGH - 1);
  }

  /**
   * The guest wrote its Command register: records its Interrupt Disable bit, then `write`s
   * byte 5 as the device must get it (the real mask bit in it), inside the lock, so the INTx
   * thread cannot unmask or mask between the decision and the write.
   */
  guestWrote(high: number, write: (high: number) => void = () => {}): number {
    return this.locked(() => {
      Atomics.store(this.words, GUEST_DISABLE, (high & INTX_DISABLE_BIT) !== 0 ? 1 : 0);
      const put = this.decide(high);
      write(put);
      return put;
    });
  }

  /** The host masked the device and the guest is told: its line stays masked until the EOI. */
  triggered(): void {
    this.locked(() => {
      Atomics.store(this.words, IN_FLIGHT, 1);
      this.apply();
    });
  }

  /** The guest's EOI: unmask, unless the guest itself keeps INTx disabled. */
  resampled(): void {
    this.locked(() => {
      Atomics.store(this.words, IN_FLIGHT, 0);
      this.apply();
    });
  }

  /** Power-on: nothing in flight, the guest's bit clear, the device unmasked. */
  reset(): void {
    this.locked(() => {
      Atomics.store(this.words, IN_FLIGHT, 0);
      Atomics.store(this.words, GUEST_DISABLE, 0);
      this.apply();
    });
  }
}
