/**
 * The "newc" cpio format (SVR4 with no CRC), the one the Linux kernel unpacks as an initramfs
 * and scans for early microcode and ACPI tables. Pure: bytes in, bytes out.
 *
 * Each member is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the name
 * with its NUL, padding to 4 bytes, the data, padding to 4 bytes; a `TRAILER!!!` member ends the
 * archive.
 */
import { HvmptError } from '../../errors.js';

export class CpioError extends HvmptError {}

export type CpioEntry =
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'char' | 'block'; readonly path: string; readonly major: number; readonly minor: number; readonly mode?: number };

const MAGIC = '070701';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
// Field order in the header; each is 8 hex digits after the 6-byte magic.
const FIELDS = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'filesize', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'] as const;
type Field = (typeof FIELDS)[number];

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

const utf8 = new TextEncoder();

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(fields: Readonly<Record<Field, number>>): string {
  return MAGIC + FIELDS.map((f) => fields[f].toString(16).padStart(8, '0')).join('');
}

function checkPath(path: string): string {
  const p = path.replace(/^\/+/, '');
  if (p === '' || p.split('/').some((part) => part === '..' || part === '')) throw new CpioError(`bad member path '${path}'`);
  return p;
}

/** Writes a newc archive. Timestamps and owners are zero, so the same input gives the same bytes. */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]): void => {
    const nameBytes = utf8.encode(name + '\0');
    const head = header({
      ino: name === TRAILER ? 0 : ino++,
      mode,
      uid: 0,
      gid: 0,
      nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1,
      mtime: 0,
      filesize: data.length,
      devmajor: 0,
      devminor: 0,
      rdevmajor: rdev[0],
      rdevminor: rdev[1],
      namesize: nameBytes.length,
      check: 0,
    });
    chunks.push(utf8.encode(head), nameBytes, new Uint8Array(pad4(HEADER_SIZE + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const path = checkPath(e.path);
    switch (e.kind) {
      case 'file':
        push(path, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case 'dir':
        push(path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0));
        break;
      case 'symlink':
        push(path, S_IFLNK | 0o777, utf8.encode(e.target));
        break;
      case 'char':
      case 'block':
        push(path, (e.kind === 'char' ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600), new Uint8Array(0), [e.major, e.minor]);
        break;
    }
  }
  push(TRAILER, 0, new Uint8Array(0));
  return concat(chunks);
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Reads the members of one or more concatenated newc archives (as an initrd may hold), skipping
 * the zero padding between them. Errors name the byte offset.
 */
export function readCpio(bytes: Uint8Array, input = 'cpio'): CpioEntry[] {
  const text = new TextDecoder('latin1');
  const out: CpioEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] === 0) {
      at++;
      continue;
    }
    if (at + HEADER_SIZE > bytes.length) throw new CpioError('truncated header', { input, at: `offset ${at}` });
    const head = text.decode(bytes.subarray(at, at + HEADER_SIZE));
    if (!head.startsWith(MAGIC)) throw new CpioError(`bad magic '${head.slice(0, 6)}' (only newc, 070701, is read)`, { input, at: `offset ${at}` });
    const f = {} as Record<Field, number>;
    FIELDS.forEach((name, i) => {
      const digits = head.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(digits)) throw new CpioError(`field ${name} is not hex`, { input, at: `offset ${at + 6 + i * 8}` });
      f[name] = parseInt(digits, 16);
    });
    const nameStart = at + HEADER_SIZE;
    const dataStart = nameStart + f.namesize + pad4(HEADER_SIZE + f.namesize);
    const dataEnd = dataStart + f.filesize;
    if (f.namesize < 1 || dataEnd > bytes.length) throw new CpioError('member runs past the end of the archive', { input, at: `offset ${at}` });
    const name = text.decode(bytes.subarray(nameStart, nameStart + f.namesize - 1));
    at = dataEnd + pad4(f.filesize);
    if (name === TRAILER) continue;
    const data = bytes.slice(dataStart, dataEnd);
    const perm = f.mode & 0o7777;
    switch (f.mode & S_IFMT) {
      case S_IFREG:
        out.push({ kind: 'file', path: name, data, mode: perm });
        break;
      case S_IFDIR:
        out.push({ kind: 'dir', path: name, mode: perm });
        break;
      case S_IFLNK:
        out.push({ kind: 'symlink', path: name, target: new TextDecoder().decode(data) });
        break;
      case S_IFCHR:
      case S_IFBLK:
        out.push({ kind: (f.mode & S_IFMT) === S_IFCHR ? 'char' : 'block', path: name, major: f.rdevmajor, minor: f.rdevminor, mode: perm });
        break;
      default:
        throw new CpioError(`member '${name}' has an unsupported file type (mode 0${f.mode.toString(8)})`, { input, at: `offset ${at}` });
    }
  }
  return out;
}
