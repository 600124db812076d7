/**
 * EISA ids: the 7-character PNP ids (`PNP0A08`) that ASL's EisaId() compresses into a 32-bit
 * integer, three 5-bit letters and four hex digits, stored byte-swapped (ACPI 6.5 section 19.6.35).
 */

const EISA_RE = /^[A-Z@]{3}[0-9A-F]{4}$/;

export function isEisaIdText(text: string): boolean {
  return EISA_RE.test(text);
}

/** `PNP0A08` -> 0x080AD041. */
export function encodeEisaId(text: string): number {
  const id = text.toUpperCase();
  if (!EISA_RE.test(id)) throw new RangeError(`not an EISA id: "${text}" (three letters and four hex digits)`);
  const c = (i: number) => (id.charCodeAt(i) - 0x40) & 0x1f;
  const big = ((c(0) << 26) | (c(1) << 21) | (c(2) << 16) | parseInt(id.slice(3), 16)) >>> 0;
  return swap32(big);
}

/** 0x080AD041 -> `PNP0A08`; undefined when the value is not a plausible EISA id. */
export function decodeEisaId(value: number | bigint): string | undefined {
  const v = typeof value === 'bigint' ? (value <= 0xffff_ffffn ? Number(value) : -1) : value;
  if (v < 0 || v > 0xffff_ffff || !Number.isInteger(v)) return undefined;
  const big = swap32(v);
  if ((big & 0x8000_0000) !== 0) return undefined;
  const ch = (shift: number) => String.fromCharCode(((big >>> shift) & 0x1f) + 0x40);
  const text = ch(26) + ch(21) + ch(16) + (big & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  return /^[A-Z]{3}/.test(text) ? text : undefined;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}
