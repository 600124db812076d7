import { ByteReader, ByteWriter, bytes, reserved, struct, text, u32, u64, u8 } from './binary.js';
import { trailingOf } from './subtables.js';

/**
 * FACS: the firmware/OS shared page (waking vector, global lock). It has a signature and a
 * length but no standard header and no checksum; it is 64 bytes in every ACPI revision.
 */
export interface Facs {
  kind: 'facs';
  hardwareSignature: number;
  firmwareWakingVector: number;
  globalLock: number;
  flags: number;
  xFirmwareWakingVector: bigint;
  /** 0 (ACPI 1.0), 1 (2.0-4.0), 2 (5.0+), 3 (6.x). */
  version: number;
  reserved1?: Uint8Array;
  ospmFlags: number;
  reserved2?: Uint8Array;
  /** Bytes a length above 64 covers. */
  trailing?: Uint8Array;
}

export const FACS_SIZE = 64;

const FACS_BODY = struct<Omit<Facs, 'kind' | 'trailing'>>({
  hardwareSignature: u32,
  firmwareWakingVector: u32,
  globalLock: u32,
  flags: u32,
  xFirmwareWakingVector: u64,
  version: u8,
  reserved1: reserved(bytes(3)),
  ospmFlags: u32,
  reserved2: reserved(bytes(24)),
});

export function decodeFacs(r: ByteReader): Facs {
  const length = r.u32(4);
  if (length < FACS_SIZE) r.fail(4, `FACS declares length ${length}, less than ${FACS_SIZE}`);
  const { value, next } = FACS_BODY.decode(r, 8, length, 'FACS');
  const out: Facs = { kind: 'facs', ...value };
  const trailing = trailingOf(r, next, length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function encodeFacs(w: ByteWriter, t: Facs): void {
  w.put(text(4), 'FACS', '', 'signature');
  w.put(u32, 0, '', 'length');
  FACS_BODY.encode(w, t, '');
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
  w.patch(4, u32, w.pos, 'length');
}
