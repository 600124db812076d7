/**
 * Linux `memmap=` parameters: the host carve (`memmap=SIZE$START`) and a guest's exact map
 * (`memmap=exactmap` plus one entry per range), as arch/x86/kernel/e820.c parses them.
 */
import { e820Code, type E820Map } from './e820.js';
import { unionRanges, type AddressRange } from './range.js';

/** A size or address as Linux's memparse() reads it: a K/M/G/T suffix when exact, hex otherwise. */
export function kernelSize(bytes: bigint): string {
  if (bytes === 0n) return '0';
  for (const [suffix, shift] of [['T', 40n], ['G', 30n], ['M', 20n]] as const) {
    const unit = 1n << shift;
    if (bytes >= unit && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  }
  // KiB only below 1 MiB: "2070800K" would hide an address that hex shows plainly.
  if (bytes < 1n << 20n && bytes % 1024n === 0n) return `${bytes / 1024n}K`;
  return '0x' + bytes.toString(16);
}

/**
 * `memmap=SIZE$START` for each carved range (touching ranges joined), unescaped: this is what
 * the kernel must see on its command line.
 */
export function carveParams(regions: readonly AddressRange[]): string[] {
  return unionRanges(regions).map((r) => `memmap=${kernelSize(r.end - r.start)}$${kernelSize(r.start)}`);
}

/**
 * The form a grub.cfg `linux` line needs: GRUB's script parser expands `$NAME`, so a literal
 * dollar is written `\$`.
 */
export function escapeForGrubCfg(param: string): string {
  return param.replace(/\$/g, '\\$');
}

/**
 * The form for GRUB_CMDLINE_LINUX in /etc/default/grub: that file is read by the shell inside
 * double quotes before grub-mkconfig copies the value into grub.cfg, so `\$` must itself be
 * escaped: `\\\$`.
 */
export function escapeForEtcDefaultGrub(param: string): string {
  return param.replace(/\$/g, '\\\\\\$');
}

/**
 * `memmap=exactmap` and one entry per range of `map`: `@` for RAM, `#` for ACPI data, `$` for
 * reserved, and `%START+TYPE` (add a range of that type) for everything else. Booting Linux
 * with these makes its "user-defined physical RAM map" equal `map`.
 */
export function exactmapParams(map: E820Map): string[] {
  const out = ['memmap=exactmap'];
  for (const e of map.entries) {
    const size = kernelSize(e.end - e.start);
    const start = kernelSize(e.start);
    switch (e.type) {
      case 'usable':
        out.push(`memmap=${size}@${start}`);
        break;
      case 'acpi':
        out.push(`memmap=${size}#${start}`);
        break;
      case 'reserved':
      case '1:1':
        out.push(`memmap=${size}$${start}`);
        break;
      default:
        out.push(`memmap=${size}%${start}+${e820Code(e.type) ?? 2}`);
    }
  }
  return out;
}

/** A number as Linux's memparse() reads it: decimal, 0x hex or 0 octal, with an optional K/M/G/T/P/E suffix. */
export function memparse(text: string): bigint | undefined {
  const m = /^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)([kmgtpe]?)$/i.exec(text);
  if (m === null) return undefined;
  const n = m[1]!.toLowerCase().startsWith('0x') ? BigInt(m[1]!) : m[1]!.length > 1 && m[1]!.startsWith('0') ? BigInt('0o' + m[1]!.slice(1)) : BigInt(m[1]!);
  const shift = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n, p: 50n, e: 60n }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't' | 'p' | 'e'];
  return n << shift;
}

/**
 * The ranges a kernel command line reserves with `memmap=SIZE$START` (several may be given,
 * and one parameter may list several, comma-separated, as arch/x86/kernel/e820.c allows).
 */
export function reservedByCmdline(cmdline: string): AddressRange[] {
  const out: AddressRange[] = [];
  for (const word of cmdline.trim().split(/\s+/)) {
    if (!word.startsWith('memmap=')) continue;
    for (const item of word.slice('memmap='.length).split(',')) {
      const m = /^([^$]+)\$(.+)$/.exec(item);
      if (m === null) continue;
      const size = memparse(m[1]!);
      const start = memparse(m[2]!);
      if (size !== undefined && start !== undefined && size > 0n) out.push({ start, end: start + size });
    }
  }
  return unionRanges(out);
}
