/**
 * Prints maps the way Linux and Xen print them, so hvmpt's output reads like the logs users
 * already know and parses back with e820-parse.ts.
 */
import { e820Code, type E820Map, type E820Type } from './e820.js';

/** Linux's words for a type (arch/x86/kernel/e820.c). A `1:1` carve is `reserved` to the host kernel. */
export function linuxTypeWords(type: E820Type): string {
  switch (type) {
    case 'usable':
      return 'usable';
    case 'reserved':
    case '1:1':
      return 'reserved';
    case 'acpi':
      return 'ACPI data';
    case 'nvs':
      return 'ACPI NVS';
    case 'unusable':
      return 'unusable';
    case 'soft-reserved':
      return 'soft reserved';
    case 'pmem':
    case 'pram':
      return `persistent (type ${e820Code(type)})`;
    default:
      return `type ${e820Code(type)}`;
  }
}

/** Xen's words, in parentheses as Xen prints them; `(1:1)` marks an identity carve. */
export function xenTypeWords(type: E820Type): string {
  switch (type) {
    case 'usable':
      return '(usable)';
    case 'reserved':
      return '(reserved)';
    case 'acpi':
      return '(ACPI data)';
    case 'nvs':
      return '(ACPI NVS)';
    case 'unusable':
      return '(unusable)';
    case '1:1':
      return '(1:1)';
    default:
      return `type ${e820Code(type)}`;
  }
}

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

/**
 * `BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable` per entry — inclusive ends,
 * as Linux prints them. `who` is the label (`BIOS-e820`, `user`, …).
 */
export function formatLinux(map: E820Map, who = 'BIOS-e820'): string {
  return map.entries.map((e) => `${who}: [mem 0x${hex16(e.start)}-0x${hex16(e.end - 1n)}] ${linuxTypeWords(e.type)}\n`).join('');
}

export interface XenFormatOptions {
  /** Lines printed (with the `(XEN) ` prefix) before the entries, e.g. `Xen-e820 RAM map:`. */
  readonly header?: readonly string[];
}

/** `(XEN) 0000000000000000 - 000000000009f000 (usable)` per entry — Xen's classic layout with exclusive ends. */
export function formatXen(map: E820Map, options: XenFormatOptions = {}): string {
  const head = (options.header ?? []).map((h) => `(XEN) ${h}\n`).join('');
  return head + map.entries.map((e) => `(XEN) ${hex16(e.start)} - ${hex16(e.end)} ${xenTypeWords(e.type)}\n`).join('');
}

/** The JSON form of the issue: hex strings, exclusive ends. */
export interface E820Json {
  readonly entries: ReadonlyArray<{ readonly start: string; readonly end: string; readonly type: E820Type }>;
}

export function e820ToJson(map: E820Map): E820Json {
  return { entries: map.entries.map((e) => ({ start: hexString(e.start), end: hexString(e.end), type: e.type })) };
}

export function hexString(v: bigint): string {
  return '0x' + v.toString(16);
}
