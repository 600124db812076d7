/**
 * A single-producer single-consumer byte ring in shared memory: the vCPU thread appends guest
 * output (serial, firmware log) without waiting on anyone, the main thread drains it and does
 * the slow I/O. If the consumer falls a whole ring behind, the producer drops bytes and counts
 * them rather than stall the guest. A consumer with nothing to read sleeps until a byte comes
 * (`written`) instead of polling: a quiet guest then costs the main thread no wake-ups, which
 * under nesting is CPU time taken from the vCPU.
 */
const HEAD = 0; // bytes written, ever (mod 2^32)
const TAIL = 1; // bytes read, ever
const DROPPED = 2;
/** 1 while the consumer sleeps on an empty ring; the producer that finds it 1 clears it and wakes it. */
const WAKE = 3;
const HEADER_BYTES = 16;

/** Atomics.waitAsync (ES2024, in Node since 16), typed here: the project's lib is ES2023. */
type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync.bind(Atomics);

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
    // Sequentially consistent with the consumer's arming (store WAKE, then load HEAD): either it
    // sees this byte, or this sees it armed.
    if (Atomics.load(this.ctl, WAKE) !== 0 && Atomics.compareExchange(this.ctl, WAKE, 1, 0) === 1) Atomics.notify(this.ctl, WAKE);
  }

  /**
   * Resolves once the ring holds a byte, or after `maxMs` (a net: nothing should be missed),
   * or when `wake()` is called. For the consumer's thread only, one wait at a time.
   */
  written(maxMs: number): Promise<void> {
    Atomics.store(this.ctl, WAKE, 1);
    if (Atomics.load(this.ctl, HEAD) !== Atomics.load(this.ctl, TAIL)) {
      Atomics.store(this.ctl, WAKE, 0);
      return Promise.resolve();
    }
    const w = waitAsync(this.ctl, WAKE, 1, maxMs);
    return w.async ? w.value.then(() => undefined) : Promise.resolve();
  }

  /** Ends a `written` wait now (the consumer is closing). */
  wake(): void {
    Atomics.store(this.ctl, WAKE, 0);
    Atomics.notify(this.ctl, WAKE);
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
