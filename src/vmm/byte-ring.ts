/**
 * A single-producer single-consumer byte ring in shared memory: the vCPU thread appends guest
 * output (serial, firmware log) without waiting on anyone, the main thread drains it on a
 * timer and does the slow I/O. If the consumer falls a whole ring behind, the producer drops
 * bytes and counts them rather than stall the guest.
 */
const HEAD = 0; // bytes written, ever (mod 2^32)
const TAIL = 1; // bytes read, ever
const DROPPED = 2;
const HEADER_BYTES = 16;

export class ByteRing {
  readonly shared: SharedArrayBuffer;
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly capacity: number;

  constructor(sharedOrCapacity: SharedArrayBuffer | number) {
    this.shared = typeof sharedOrCapacity === 'number' ? new SharedArrayBuffer(HEADER_BYTES + sharedOrCapacity) : sharedOrCapacity;
    this.ctl = new Int32Array(this.shared, 0, 4);
    this.data = new Uint8Array(this.shared, HEADER_BYTES);
    this.capacity = this.data.length;
    // Positions wrap at 2^32, so the capacity must divide it.
    if ((this.capacity & (this.capacity - 1)) !== 0) throw new RangeError(`ring capacity ${this.capacity} is not a power of two`);
  }

  push(byte: number): void {
    const head = Atomics.load(this.ctl, HEAD);
    const tail = Atomics.load(this.ctl, TAIL);
    if (((head - tail) | 0) >= this.capacity) {
      Atomics.add(this.ctl, DROPPED, 1);
      return;
    }
    this.data[(head >>> 0) % this.capacity] = byte;
    Atomics.store(this.ctl, HEAD, (head + 1) | 0);
  }

  /** Everything written since the last drain. */
  drain(): Uint8Array {
    const head = Atomics.load(this.ctl, HEAD);
    const tail = Atomics.load(this.ctl, TAIL);
    const n = (head - tail) | 0;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.data[((tail + i) >>> 0) % this.capacity]!;
    Atomics.store(this.ctl, TAIL, head);
    return out;
  }

  get dropped(): number {
    return Atomics.load(this.ctl, DROPPED);
  }
}
