import type { AccessSize } from '../io.js';
import { assertLittleEndian, readLE } from './endian.js';

assertLittleEndian();

/**
 * Where a real function's config space lives: a replayed dump, a sysfs `config` file, and
 * later VFIO's config region or sysfs+uio. The composition layer reads and writes through
 * this and nothing else, so a backend is a few lines to add.
 *
 * Offsets are byte offsets in the function's config space, any alignment, with
 * `offset + size <= length`; values are little-endian and zero-extended.
 */
export interface ConfigBackend {
  /** How many bytes of config space the backend serves: 64, 256 or 4096 (or a dump's captured length). */
  readonly length: number;
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * The size of BAR `index` (0-5, 6 = expansion ROM) when the backend knows it (VFIO region
   * info, sysfs `resource`, `[size=…]` in an `lspci -v` dump); undefined when it does not.
   */
  barSize?(index: number): bigint | undefined;
  /** One line for reports: where the function comes from. */
  readonly source: string;
  /** Puts the device in its power-on state (a replay returns to its capture). */
  reset?(): void;
}

/**
 * A function held in memory: the replay of a captured config space. Writes land in the
 * bytes (a captured device has no other behaviour to model) except the bits named in
 * `rw1c`, which a write of 1 clears, as the real device would.
 */
export class MemoryBackend implements ConfigBackend {
  readonly length: number;
  readonly source: string;
  private readonly bytes: Uint8Array;
  private readonly captured: Uint8Array;
  private readonly words: Uint32Array;
  private readonly rw1c: Uint8Array | undefined;
  private readonly sizes: ReadonlyMap<number, bigint>;

  constructor(
    bytes: Uint8Array,
    options: { source: string; rw1c?: Uint8Array; barSizes?: ReadonlyMap<number, bigint> },
  ) {
    if (bytes.length > 0x1000) throw new RangeError(`config space of ${bytes.length} bytes: at most 4096`);
    // Always 4 KiB, ones past the captured length, so an aligned dword read needs no bounds check.
    this.words = new Uint32Array(0x400).fill(0xffff_ffff);
    this.bytes = new Uint8Array(this.words.buffer);
    this.bytes.set(bytes);
    this.captured = new Uint8Array(bytes);
    this.length = bytes.length;
    this.source = options.source;
    this.rw1c = options.rw1c;
    this.sizes = options.barSizes ?? new Map();
  }

  read(offset: number, size: AccessSize): number {
    if (size === 4 && (offset & 3) === 0) return this.words[offset >>> 2]!;
    return readLE(this.bytes, offset, size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      if (o >= this.length) return;
      const b = (value >>> (8 * i)) & 0xff;
      const c = this.rw1c?.[o] ?? 0;
      this.bytes[o] = (this.bytes[o]! & c & ~b) | (b & ~c);
    }
  }

  reset(): void {
    this.bytes.set(this.captured);
  }

  barSize(index: number): bigint | undefined {
    return this.sizes.get(index);
  }

  /** A copy of the current bytes, for tests and snapshots. */
  snapshot(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}
