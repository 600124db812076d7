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
