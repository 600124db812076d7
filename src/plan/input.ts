/**
 * Reading an input file (or standard input), bounded. Every file hvmpt reads on a user's word
 * goes through here: a plan, a boot log, an acpidump, a table, a PCI capture, a kernel. Each
 * kind has a cap that no real input comes near, so a wrong path (`/dev/zero`, a 1 GB sparse
 * file, a directory on standard input) ends in an error naming the input instead of a hang,
 * a heap exhaustion or a stack trace. Regular files are checked by size before a byte is read;
 * anything else (a pipe, a character device, standard input) is read up to the cap and no
 * further.
 *
 * This is plan/'s second I/O module beside load.ts: the plan loader needs it, and the host
 * readers (src/host/) use the same one, so the caps live in one place.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { IoError } from '../errors.js';

const MiB = 1024 * 1024;

/** What an input is, for its cap and for the message that names the cap. */
export const INPUT_LIMITS = {
  /** A plan or rules file (YAML or JSON): real ones are a few KiB. */
  plan: { bytes: 16 * MiB, what: 'a plan' },
  /** A boot log, memmap listing, /proc/iomem copy or E820 JSON: a whole boot's journal is a few MiB. */
  e820: { bytes: 64 * MiB, what: 'a boot log or memory map listing' },
  /** acpidump text or one binary table: the largest real dumps are a few MiB, tables under one. */
  acpi: { bytes: 64 * MiB, what: 'an acpidump or ACPI table' },
  /** An lspci dump or config-space file: 4 KiB of config per function, a few MiB for the largest machines. */
  pci: { bytes: 64 * MiB, what: 'a PCI capture' },
  /** Firmware, option ROMs and AML files a plan names. */
  firmware: { bytes: 64 * MiB, what: 'a firmware, ROM or AML file' },
  /** A kernel image a plan boots. */
  kernel: { bytes: 256 * MiB, what: 'a kernel image' },
  /** A tool or data file a plan puts into the probe guest's initrd. */
  guestFile: { bytes: 256 * MiB, what: "a file for the guest's initrd" },
  /** A host-facts collection (`hvmpt collect`): a few MiB, a tar archive of sysfs, procfs and the ACPI tables. */
  facts: { bytes: 512 * MiB, what: 'a host-facts collection' },
  /** An initrd a plan boots. */
  initrd: { bytes: 1024 * MiB, what: 'an initrd' },
} as const;

export type InputKind = keyof typeof INPUT_LIMITS;

/** `-` names standard input. */
export const STDIN = '-';

function sizeText(bytes: number): string {
  return bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`;
}

function tooBig(input: string, kind: InputKind): IoError {
  const limit = INPUT_LIMITS[kind];
  return new IoError(`larger than ${sizeText(limit.bytes)}, the most hvmpt reads for ${limit.what} (no real one comes near it)`, { input });
}

function failed(input: string, err: unknown): IoError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  const hint = code === 'EISDIR' ? ' (a directory)' : '';
  return new IoError(`cannot read: ${code}${hint}`, { input }, { cause: err });
}

/** readSync, waiting out a non-blocking descriptor's EAGAIN (standard input can be one). */
function readSome(fd: number, buf: Uint8Array, offset: number, length: number): number {
  for (let tries = 0; ; tries++) {
    try {
      return readSync(fd, buf, offset, length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || tries > 60_000) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/** Reads all of `fd`, refusing more than `cap` bytes. */
function readBounded(fd: number, input: string, kind: InputKind): Uint8Array {
  const cap = INPUT_LIMITS[kind].bytes;
  const stat = fstatSync(fd);
  if (stat.isDirectory()) throw new IoError('cannot read: EISDIR (a directory)', { input });
  if (stat.isFile() && stat.size > cap) throw tooBig(input, kind);
  const chunks: Uint8Array[] = [];
  let total = 0;
  // A regular file is read in one buffer of its size (plus one byte to see it did not grow).
  let chunkSize = stat.isFile() ? Math.min(stat.size + 1, cap + 1) : 64 * 1024;
  for (;;) {
    const buf = new Uint8Array(chunkSize);
    let filled = 0;
    while (filled < buf.length) {
      const n = readSome(fd, buf, filled, buf.length - filled);
      if (n === 0) break;
      filled += n;
    }
    total += filled;
    if (total > cap) throw tooBig(input, kind);
    chunks.push(filled === buf.length ? buf : buf.subarray(0, filled));
    if (filled < buf.length) break;
    chunkSize = Math.min(chunkSize * 2, 16 * MiB);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The bytes of `path` (`-`: standard input), at most the cap of `kind`. Every failure is an
 * IoError naming the input: missing, unreadable, a directory, too large.
 */
export function readInputBytes(path: string, kind: InputKind): Uint8Array {
  if (path === STDIN) {
    try {
      return readBounded(0, '<stdin>', kind);
    } catch (err) {
      if (err instanceof IoError) throw err;
      throw failed('<stdin>', err);
    }
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw failed(path, err);
  }
  try {
    return readBounded(fd, path, kind);
  } catch (err) {
    if (err instanceof IoError) throw err;
    throw failed(path, err);
  } finally {
    closeSync(fd);
  }
}

/** The text of an input as UTF-8 (a BOM is kept; the parsers strip it). */
export function readInputText(path: string, kind: InputKind): string {
  const bytes = readInputBytes(path, kind);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
