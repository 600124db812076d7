import { AcpiParseError } from '../errors.js';
import type { TableImage } from './image.js';
import { acpixtractNames } from './names.js';

/**
 * acpidump's text format, as written by `acpidump` and read by `acpixtract`:
 *
 *     DSDT @ 0x00000000dfffd0c0
 *         0000: 44 53 44 54 15 25 00 00 01 B4 42 4F 43 48 53 20  DSDT.%....BOCHS
 *
 * A header line (no leading space, "SIG @ address"; the RSDP's is "RSD PTR @ …"), then hex
 * lines "offset: up to 16 bytes  ascii". Unlike acpixtract, offsets are checked: a line whose
 * offset is not the number of bytes read so far is an error naming the line, so a damaged dump
 * is reported rather than silently extracted short.
 */

const HEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

function hexDigit(code: number): number {
  return code < 128 ? HEX[code]! : -1;
}

/** acpixtract's limit: a header line is shorter than a full hex line. */
const MAX_HEADER_LINE = 48;

interface Block {
  signature: string;
  address: bigint | undefined;
  line: number;
  chunks: Uint8Array[];
  length: number;
}

/**
 * Parses acpidump text into table images, in file order, named as `acpixtract -a` names its
 * output files. `input` names the text in errors.
 */
export function parseAcpidump(text: string, input: string): TableImage[] {
  const blocks: Block[] = [];
  let current: Block | undefined;
  const lineBytes = new Uint8Array(16);
  let lineNo = 0;
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = n;
    lineNo++;
    let end = eol;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    const start = pos;
    pos = eol + 1;
    if (end === start) continue;
    const first = text.charCodeAt(start);
    if (first !== 32 && first !== 9) {
      const at = text.indexOf(' @ ', start);
      if (at < 0 || at >= end || end - start > MAX_HEADER_LINE) continue; // prose around the dump
      let signature = text.slice(start, Math.min(start + 4, at));
      if (signature === 'RSD ' || text.startsWith('RSD PTR', start)) signature = 'RSDP';
      if (signature.length < 4) throw new AcpiParseError(`table header has a signature shorter than 4 characters`, { input, at: `line ${lineNo}` });
      current = { signature, address: parseAddress(text.slice(at + 3, end)), line: lineNo, chunks: [], length: 0 };
      blocks.push(current);
      continue;
    }
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon >= end || text.charCodeAt(colon + 1) !== 32) continue; // not a hex line
    if (current === undefined) continue; // hex before any header: not ours to judge, as acpixtract
    // Offset before the colon.
    let offset = 0;
    let digits = 0;
    for (let i = start; i < colon; i++) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9) {
        if (digits > 0) break;
        continue;
      }
      const d = hexDigit(c);
      if (d < 0 || digits >= 12) throw new AcpiParseError(`bad offset ${JSON.stringify(text.slice(start, colon).trim())}`, { input, at: `line ${lineNo}` });
      offset = offset * 16 + d;
      digits++;
    }
    if (digits === 0) throw new AcpiParseError('hex line without an offset', { input, at: `line ${lineNo}` });
    if (offset !== current.length) {
      throw new AcpiParseError(`offset 0x${offset.toString(16)} where 0x${current.length.toString(16)} was expected (a line missing or repeated?)`, {
        input,
        at: `line ${lineNo}`,
      });
    }
    // Up to 16 "HH" groups, each preceded by one space; the ASCII column after them is ignored.
    let count = 0;
    let i = colon + 1;
    while (count < 16 && i + 2 < end + 1 && text.charCodeAt(i) === 32) {
      const hi = hexDigit(text.charCodeAt(i + 1));
      const lo = i + 2 < end ? hexDigit(text.charCodeAt(i + 2)) : -1;
      if (hi < 0 || lo < 0) break;
      const after = i + 3 < end ? text.charCodeAt(i + 3) : 32;
      if (after !== 32) break;
      lineBytes[count++] = hi * 16 + lo;
      i += 3;
    }
    if (count === 0) throw new AcpiParseError('hex line holds no bytes', { input, at: `line ${lineNo}` });
    current.chunks.push(lineBytes.slice(0, count));
    current.length += count;
  }
  const names = acpixtractNames(blocks.map((b) => b.signature));
  return blocks.map((b, k) => {
    if (b.length === 0) throw new AcpiParseError(`${b.signature} has no hex data`, { input, at: `line ${b.line}` });
    const data = new Uint8Array(b.length);
    let at = 0;
    for (const c of b.chunks) {
      data.set(c, at);
      at += c.length;
    }
    const image: TableImage = { origin: `${input}: line ${b.line}`, name: names[k]!, signature: b.signature, data };
    return b.address === undefined ? image : { ...image, address: b.address };
  });
}

function parseAddress(text: string): bigint | undefined {
  const m = /^\s*0x([0-9a-fA-F]{1,16})\b/.exec(text);
  return m === null ? undefined : BigInt('0x' + m[1]!);
}

/**
 * Writes table images in acpidump's text format (the RSDP under "RSD PTR"), which acpixtract
 * and hvmpt read back.
 */
export function formatAcpidump(tables: ReadonlyArray<{ readonly signature: string; readonly address?: bigint; readonly data: Uint8Array }>): string {
  const out: string[] = [];
  for (const t of tables) {
    const sig = t.signature === 'RSDP' ? 'RSD PTR' : t.signature;
    out.push(`${sig} @ 0x${(t.address ?? 0n).toString(16).padStart(16, '0')}\n`);
    for (let off = 0; off < t.data.length; off += 16) {
      const row = t.data.subarray(off, Math.min(off + 16, t.data.length));
      let hex = '';
      for (const b of row) hex += b.toString(16).toUpperCase().padStart(2, '0') + ' ';
      let ascii = '';
      for (const b of row) ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      out.push(`    ${off.toString(16).toUpperCase().padStart(4, '0')}: ${hex.padEnd(48)} ${ascii}\n`);
    }
    out.push('\n');
  }
  return out.join('');
}
