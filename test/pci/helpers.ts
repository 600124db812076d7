import { readdirSync } from 'node:fs';
import { MemoryBackend, type ConfigBackend } from '../../src/hw/pci/backend.js';
import type { AccessSize } from '../../src/hw/io.js';
import { fixture } from '../helpers/paths.js';

export const PCIUTILS_TESTS = fixture('pci', 'pciutils-tests');

export function pciutilsFixtures(): string[] {
  return readdirSync(PCIUTILS_TESTS).sort();
}

/** A config space of `length` bytes with little-endian values poked in. */
export function configBytes(length: number, values: ReadonlyArray<readonly [offset: number, size: AccessSize, value: number]>): Uint8Array {
  const b = new Uint8Array(length);
  for (const [o, s, v] of values) for (let i = 0; i < s; i++) b[o + i] = (v >>> (8 * i)) & 0xff;
  return b;
}

/** A backend that records every access, to prove what reached the device and what did not. */
export class RecordingBackend implements ConfigBackend {
  readonly source = 'recording';
  readonly reads: Array<[number, AccessSize]> = [];
  readonly writes: Array<[number, AccessSize, number]> = [];
  private readonly inner: MemoryBackend;
  constructor(bytes: Uint8Array, rw1c?: Uint8Array) {
    this.inner = new MemoryBackend(bytes, { source: 'recording', ...(rw1c ? { rw1c } : {}) });
  }
  get length(): number {
    return this.inner.length;
  }
  read(offset: number, size: AccessSize): number {
    this.reads.push([offset, size]);
    return this.inner.read(offset, size);
  }
  write(offset: number, size: AccessSize, value: number): void {
    this.writes.push([offset, size, value]);
    this.inner.write(offset, size, value);
  }
  /** The device's bytes now (without recording a read). */
  peek(offset: number, size: AccessSize): number {
    return this.inner.read(offset, size);
  }
}

/** A minimal type-0 header: IDs, class, header type, optional BARs. */
export function endpointBytes(o: { vendor?: number; device?: number; status?: number; bars?: ReadonlyArray<readonly [number, number]>; length?: number } = {}): Uint8Array {
  const values: Array<[number, AccessSize, number]> = [
    [0x00, 2, o.vendor ?? 0x8086],
    [0x02, 2, o.device ?? 0x1234],
    [0x06, 2, o.status ?? 0],
    [0x08, 4, 0x02000001],
    [0x3d, 1, 1],
  ];
  for (const [i, v] of o.bars ?? []) values.push([0x10 + 4 * i, 4, v]);
  return configBytes(o.length ?? 256, values);
}
