import { signatureName } from '../signatures.js';
import type { TraceEntry, TraceValue } from './binary.js';
import type { AcpiTable } from './table.js';
import { tableSignature } from './table.js';

/**
 * Presenting table models: a JSON form (bigints and byte arrays as hex strings, so nothing is
 * lost and any JSON reader copes) and a text listing built from the encoder's field trace, in
 * the spirit of `iasl -d`: offset, size, model path, value.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function bytesToHex(data: Uint8Array): string {
  let s = '';
  for (const b of data) s += b.toString(16).padStart(2, '0');
  return s;
}

/** A model value as JSON: bigint → "0x…", Uint8Array → hex string, undefined properties dropped. */
export function toJsonValue(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return '0x' + value.toString(16);
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonValue(v);
    return out;
  }
  return String(value);
}

function formatValue(value: TraceValue, size: number): string {
  if (typeof value === 'number') return '0x' + value.toString(16).padStart(size * 2, '0');
  if (typeof value === 'bigint') return '0x' + value.toString(16).padStart(16, '0');
  if (typeof value === 'string') return JSON.stringify(value);
  const head = Array.from(value.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return value.length > 16 ? `${head} … (${value.length} bytes)` : head;
}

/** One line per traced field: `[024h   4] localApicAddress   0xfee00000`. */
export function formatTrace(trace: readonly TraceEntry[], indent = '  '): string {
  const width = Math.min(48, Math.max(0, ...trace.map((e) => e.path.length)));
  return trace
    .map((e) => {
      const place = `[${e.offset.toString(16).toUpperCase().padStart(3, '0')}h ${String(e.size).padStart(4)}]`;
      const note = e.note === undefined ? '' : `  ${e.note}`;
      return `${indent}${place} ${e.path.padEnd(width)}  ${formatValue(e.value, e.size)}${note}`;
    })
    .join('\n');
}

/** A one-line title: signature, what it is, and the kind hvmpt decoded it as. */
export function tableTitle(table: AcpiTable): string {
  const sig = tableSignature(table);
  const name = signatureName(sig);
  const kind = table.kind === 'raw' ? 'kept raw' : table.kind === 'definitionBlock' ? 'AML definition block' : `decoded as ${table.kind}`;
  return `${sig}${name === undefined ? '' : ` — ${name}`} (${kind})`;
}
