/**
 * Just enough ELF64 to prepare a guest: whether an executable needs a dynamic loader (a
 * busybox that does cannot run alone in an initramfs), and a kernel module's .modinfo
 * (its name and the modules it depends on).
 */
import { HvmptError } from '../../errors.js';

export class ElfError extends HvmptError {}

// ELF64 header offsets.
const E_IDENT_CLASS = 4;
const E_IDENT_DATA = 5;
const E_PHOFF = 0x20;
const E_SHOFF = 0x28;
const E_PHENTSIZE = 0x36;
const E_PHNUM = 0x38;
const E_SHENTSIZE = 0x3a;
const E_SHNUM = 0x3c;
const E_SHSTRNDX = 0x3e;
const ELF64_HEADER_SIZE = 0x40;
// Program header: p_type at 0. Section header: sh_name 0, sh_offset 0x18, sh_size 0x20.
const PT_INTERP = 3;
const SH_NAME = 0;
const SH_OFFSET = 0x18;
const SH_SIZE = 0x20;

function view(bytes: Uint8Array, input: string): DataView {
  if (bytes.length < ELF64_HEADER_SIZE || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError('not an ELF file', { input });
  }
  if (bytes[E_IDENT_CLASS] !== 2 || bytes[E_IDENT_DATA] !== 1) throw new ElfError('not a little-endian ELF64 file', { input });
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(dv: DataView, at: number, input: string): number {
  if (at + 8 > dv.byteLength) throw new ElfError('truncated', { input, at: `offset 0x${at.toString(16)}` });
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError('offset out of range', { input, at: `offset 0x${at.toString(16)}` });
  return Number(v);
}

/** True when the executable has a PT_INTERP header, i.e. it is dynamically linked. */
export function needsInterpreter(bytes: Uint8Array, input: string): boolean {
  const dv = view(bytes, input);
  const phoff = u64(dv, E_PHOFF, input);
  const size = dv.getUint16(E_PHENTSIZE, true);
  const count = dv.getUint16(E_PHNUM, true);
  for (let i = 0; i < count; i++) {
    const at = phoff + i * size;
    if (at + 4 > bytes.length) throw new ElfError('program headers run past the end', { input });
    if (dv.getUint32(at, true) === PT_INTERP) return true;
  }
  return false;
}

/** The contents of a named section, or undefined when absent. */
export function elfSection(bytes: Uint8Array, name: string, input: string): Uint8Array | undefined {
  const dv = view(bytes, input);
  const shoff = u64(dv, E_SHOFF, input);
  const size = dv.getUint16(E_SHENTSIZE, true);
  const count = dv.getUint16(E_SHNUM, true);
  const strndx = dv.getUint16(E_SHSTRNDX, true);
  const sectionAt = (i: number): { name: number; offset: number; size: number } => {
    const at = shoff + i * size;
    if (i >= count || at + 0x28 > bytes.length) throw new ElfError(`section header ${i} is out of range`, { input });
    return { name: dv.getUint32(at + SH_NAME, true), offset: u64(dv, at + SH_OFFSET, input), size: u64(dv, at + SH_SIZE, input) };
  };
  const strtab = sectionAt(strndx);
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    const s = sectionAt(i);
    const nameAt = strtab.offset + s.name;
    const nameEnd = bytes.indexOf(0, nameAt);
    if (nameEnd < 0) continue;
    if (decoder.decode(bytes.subarray(nameAt, nameEnd)) === name) {
      if (s.offset + s.size > bytes.length) throw new ElfError(`section ${name} runs past the end`, { input });
      return bytes.subarray(s.offset, s.offset + s.size);
    }
  }
  return undefined;
}

export interface ModInfo {
  readonly name: string | undefined;
  readonly depends: readonly string[];
}

/** A kernel module's name and dependencies from its .modinfo section (`key=value` strings, NUL-separated). */
export function readModInfo(bytes: Uint8Array, input: string): ModInfo {
  const section = elfSection(bytes, '.modinfo', input);
  if (section === undefined) throw new ElfError('no .modinfo section: not a kernel module', { input });
  const pairs = new TextDecoder().decode(section).split('\0');
  const value = (key: string): string | undefined => pairs.find((p) => p.startsWith(key + '='))?.slice(key.length + 1);
  const depends = value('depends');
  return { name: value('name'), depends: depends === undefined || depends === '' ? [] : depends.split(',') };
}
