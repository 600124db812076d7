import { HvmptError } from '../../errors.js';

/**
 * A host-facts collection as files: what `hvmpt collect` puts in its archive, by path below
 * the archive's top folder (`proc/cmdline`, `sys/bus/pci/devices/0000:00:1f.3/config`).
 * Whoever read the archive (a tar file, a directory) hands the files over; everything that
 * interprets them is pure.
 */

/** The folder every file of a collection sits in, inside the archive. */
export const FACTS_ROOT = 'hvmpt-facts';

/** The collection format this hvmpt reads (the collector's `format=` line). */
export const FACTS_FORMAT = 1;

/**
 * A collection, or one file of it, that cannot be read as hvmpt wrote it: `where.input` is the
 * archive, `where.at` the file inside it (`hvmpt-facts/sys/bus/pci/devices/0000:00:02.0/config`)
 * and, where it matters, the line.
 */
export class FactsError extends HvmptError {}

const LATIN1 = new TextDecoder('latin1');

export class FactsFiles {
  /** The archive (or directory) the files came from, for messages. */
  readonly source: string;
  private readonly files: ReadonlyMap<string, Uint8Array>;
  private readonly dirs: Map<string, Set<string>>;
  private unreadableSet: Set<string> | undefined;

  /** `files` by path relative to the collection's root folder, without a leading slash. */
  constructor(source: string, files: ReadonlyMap<string, Uint8Array>) {
    this.source = source;
    this.files = files;
    this.dirs = new Map();
    for (const path of files.keys()) {
      const parts = path.split('/');
      for (let i = 0; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        let set = this.dirs.get(dir);
        if (set === undefined) this.dirs.set(dir, (set = new Set()));
        set.add(parts[i]!);
      }
    }
  }

  /** How a file is named in messages: its path inside the archive. */
  static label(path: string): string {
    return `${FACTS_ROOT}/${path}`;
  }

  /** An error about one file of the collection. */
  error(path: string, message: string, line?: number): FactsError {
    return new FactsError(message, { input: this.source, at: line === undefined ? FactsFiles.label(path) : `${FactsFiles.label(path)}: line ${line}` });
  }

  /** Whether the collector noted it could not read this file (as the machine names it, under /). */
  unreadable(path: string): boolean {
    this.unreadableSet ??= new Set((this.text('unreadable') ?? '').split('\n').map((l) => l.slice(0, l.lastIndexOf('\t'))));
    return this.unreadableSet.has(`/${path}`);
  }

  has(path: string): boolean {
    return this.files.has(path);
  }

  paths(): string[] {
    return [...this.files.keys()];
  }

  bytes(path: string): Uint8Array | undefined {
    return this.files.get(path);
  }

  /** A text file's contents (latin1: sysfs and procfs text is ASCII, and nothing is lost). */
  text(path: string): string | undefined {
    const b = this.files.get(path);
    return b === undefined ? undefined : LATIN1.decode(b);
  }

  /** A one-line attribute without its newline; undefined when the file is not there. */
  value(path: string): string | undefined {
    const t = this.text(path);
    return t === undefined ? undefined : t.replace(/\n$/, '');
  }

  /** A decimal attribute; an error naming the file when it is not a number. */
  number(path: string): number | undefined {
    const v = this.value(path);
    if (v === undefined || v.trim() === '') return undefined;
    const s = v.trim();
    const n = /^-?\d+$/.test(s) ? Number(s) : /^0x[0-9a-f]+$/i.test(s) ? Number.parseInt(s, 16) : NaN;
    if (!Number.isSafeInteger(n)) throw this.error(path, `expected a number, got ${JSON.stringify(s.slice(0, 40))}`);
    return n;
  }

  /** Names directly inside a folder (files and folders), sorted; empty when there is none. */
  list(dir: string): string[] {
    return [...(this.dirs.get(dir) ?? [])].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }
}
