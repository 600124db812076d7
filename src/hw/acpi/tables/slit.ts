import { ByteReader, ByteWriter, u64, u8 } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { trailingOf } from './subtables.js';

/** SLIT: relative distances between NUMA localities (10 = local). */
export interface Slit {
  kind: 'slit';
  header: TableHeader;
  /** `distances[i][j]`: from locality i to j; a square matrix. */
  distances: number[][];
  trailing?: Uint8Array;
}

const MATRIX_AT = HEADER_SIZE + 8;

export function decodeSlit(r: ByteReader, header: TableHeader): Slit {
  if (r.length < MATRIX_AT) r.fail(HEADER_SIZE, `SLIT needs ${MATRIX_AT} bytes before its matrix, table has ${r.length}`);
  const count = r.u64(HEADER_SIZE);
  const room = BigInt(r.length - MATRIX_AT);
  // Compare in bigint: a lying 64-bit count squared must not overflow into something that fits.
  if (count * count > room) {
    r.fail(HEADER_SIZE, `SLIT claims ${count} localities (${count * count} matrix bytes), only ${room} bytes follow`);
  }
  const n = Number(count);
  const distances: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = [];
    for (let j = 0; j < n; j++) row.push(r.u8(MATRIX_AT + i * n + j));
    distances.push(row);
  }
  const out: Slit = { kind: 'slit', header, distances };
  const trailing = trailingOf(r, MATRIX_AT + n * n, r.length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function encodeSlitBody(w: ByteWriter, t: Slit): void {
  const n = t.distances.length;
  w.put(u64, BigInt(n), '', 'localityCount');
  t.distances.forEach((row, i) => {
    if (row.length !== n) w.fail(`distances[${i}]`, `has ${row.length} entries; the matrix is ${n}x${n}`);
    row.forEach((d, j) => w.put(u8, d, '', `distances[${i}][${j}]`));
  });
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}
