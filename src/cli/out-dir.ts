/**
 * Writing a set of table files to an output directory all or nothing: the set is written into
 * a fresh sibling directory first, and only when every file is there does it take the output
 * directory's place, by renames. A write that fails (a full disk, a name taken by a directory,
 * a filesystem that takes no new directories) leaves the old directory as it was.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, IoError } from '../errors.js';

/** The file-system operations the writer uses; tests replace them to fail one on purpose. */
export interface DirOps {
  mkdir(path: string): void;
  writeFile(path: string, bytes: Uint8Array): void;
  rename(from: string, to: string): void;
  /** Removes a file or a whole directory. */
  remove(path: string): void;
  chmod(path: string, mode: number): void;
}

export const NODE_DIR_OPS: DirOps = {
  mkdir: (p) => mkdirSync(p),
  writeFile: (p, b) => writeFileSync(p, b),
  rename: (a, b) => renameSync(a, b),
  remove: (p) => rmSync(p, { recursive: true, force: true }),
  chmod: (p, m) => chmodSync(p, m),
};

export interface TableFile {
  /** The file name, extension included (`dsdt.dat`). */
  readonly file: string;
  readonly bytes: Uint8Array;
}

const TABLE_FILE = /\.(dat|aml)$/i;

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}

/** What is in the output directory now. */
type Existing = { readonly kind: 'missing' } | { readonly kind: 'directory'; readonly mode: number; readonly tables: string[]; readonly others: string[] };

function inspect(dir: string): Existing {
  let mode: number;
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new InputError('exists and is not a directory', { input: dir });
    mode = st.mode & 0o7777;
  } catch (err) {
    if (err instanceof InputError) throw err;
    if (code(err) === 'ENOENT') return { kind: 'missing' };
    throw new IoError(`cannot open: ${code(err)}`, { input: dir });
  }
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new IoError(`cannot list: ${code(err)}`, { input: dir });
  }
  const tables: string[] = [];
  const others: string[] = [];
  for (const n of names) {
    let regular = false;
    try {
      regular = lstatSync(join(dir, n)).isFile();
    } catch {
      // Gone since the listing: nothing to keep or replace.
      continue;
    }
    (regular && TABLE_FILE.test(n) ? tables : others).push(n);
  }
  return { kind: 'directory', mode, tables, others };
}

function list(names: readonly string[]): string {
  return names.slice(0, 4).join(', ') + (names.length > 4 ? ', …' : '');
}

/**
 * Creates `dir`'s missing parents one level at a time. Node's recursive mkdir spins forever on
 * a filesystem that answers ENOENT to every mkdir (procfs), so the walk is done here, and the
 * first level that cannot be made is the error.
 */
function makeParents(dir: string, ops: DirOps): void {
  const missing: string[] = [];
  let p = dirname(resolve(dir));
  for (;;) {
    try {
      if (!statSync(p).isDirectory()) throw new InputError(`${p} is not a directory`, { input: dir });
      break;
    } catch (err) {
      if (err instanceof InputError) throw err;
      if (code(err) !== 'ENOENT') throw new IoError(`cannot open ${p}: ${code(err)}`, { input: dir });
      missing.unshift(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
    }
  }
  for (const m of missing) {
    try {
      ops.mkdir(m);
    } catch (err) {
      throw new IoError(`cannot create ${m}: ${code(err)}`, { input: dir });
    }
  }
}

/** A fresh directory beside `dir`, named after it, for the new set or the old one. */
function sibling(dir: string, role: 'new' | 'old', ops: DirOps): string {
  const base = join(dirname(resolve(dir)), `.${basename(resolve(dir))}.hvmpt-${role}-${process.pid}`);
  for (let i = 0; ; i++) {
    const p = i === 0 ? base : `${base}-${i}`;
    try {
      ops.mkdir(p);
      return p;
    } catch (err) {
      if (code(err) === 'EEXIST' && i < 100) continue;
      throw new IoError(`cannot write beside it: creating ${p} failed: ${code(err)}`, { input: dir });
    }
  }
}

/**
 * Writes `files` as `dir`'s set of tables. A directory that already holds tables is refused
 * unless `force`, which replaces them; one that holds anything else besides tables is refused
 * with `force` too (hvmpt replaces a set of tables, not someone's other files). Nothing is
 * changed when any step fails.
 */
export function writeTableSet(dir: string, files: readonly TableFile[], options: { force: boolean }, ops: DirOps = NODE_DIR_OPS): void {
  const existing = inspect(dir);
  if (existing.kind === 'directory' && existing.tables.length > 0) {
    if (!options.force) {
      throw new InputError(`already holds tables (${list(existing.tables)}): give a new or empty directory, or --force to replace them`, { input: dir });
    }
    if (existing.others.length > 0) {
      throw new InputError(`holds ${list(existing.others)} besides its tables, which --force does not replace: move ${existing.others.length === 1 ? 'it' : 'them'} away, or give another directory`, { input: dir });
    }
  }
  if (existing.kind === 'missing') makeParents(dir, ops);
  const stage = sibling(dir, 'new', ops);
  try {
    if (existing.kind === 'directory') {
      try {
        ops.chmod(stage, existing.mode);
      } catch (err) {
        throw new IoError(`cannot give the new directory the old one's mode: ${code(err)} (the directory is left as it was)`, { input: dir });
      }
    }
    for (const f of files) {
      try {
        ops.writeFile(join(stage, f.file), f.bytes);
      } catch (err) {
        throw new IoError(`cannot write ${f.file}: ${code(err)} (the directory is left as it was)`, { input: dir });
      }
    }
    if (existing.kind === 'missing' || (existing.tables.length === 0 && existing.others.length === 0)) {
      // rename(2) puts a directory in the place of a missing or empty one in one step.
      commit(() => ops.rename(stage, dir), dir);
    } else if (existing.others.length === 0) {
      swap(dir, stage, ops);
    } else {
      moveIn(dir, stage, files, ops);
    }
  } finally {
    tidy(stage, ops);
  }
}

function commit(step: () => void, dir: string): void {
  try {
    step();
  } catch (err) {
    throw new IoError(`cannot put the new tables in place: ${code(err)} (the directory is left as it was)`, { input: dir });
  }
}

/** The old directory (tables only) moves aside, the new one takes its name, the old one goes. */
function swap(dir: string, stage: string, ops: DirOps): void {
  const old = sibling(dir, 'old', ops);
  try {
    // Onto the empty sibling just made: rename(2) replaces an empty directory.
    ops.rename(dir, old);
  } catch (err) {
    tidy(old, ops);
    throw new IoError(`cannot move the old tables aside: ${code(err)} (the directory is left as it was)`, { input: dir });
  }
  try {
    ops.rename(stage, dir);
  } catch (err) {
    try {
      ops.rename(old, dir);
    } catch (back) {
      throw new IoError(`cannot put the new tables in place (${code(err)}) nor the old ones back (${code(back)}): the old tables are in ${old}`, { input: dir });
    }
    throw new IoError(`cannot put the new tables in place: ${code(err)} (the directory is left as it was)`, { input: dir });
  }
  tidy(old, ops);
}

/** Removes what is left of a sibling; the output is already right, so a failure here is not one. */
function tidy(path: string, ops: DirOps): void {
  try {
    ops.remove(path);
  } catch {
    // A stale sibling directory is harmless: hvmpt never reads it.
  }
}

/** A directory with other files and no tables: each new file moves in; a failure takes back those that did. */
function moveIn(dir: string, stage: string, files: readonly TableFile[], ops: DirOps): void {
  const moved: string[] = [];
  try {
    for (const f of files) {
      commit(() => ops.rename(join(stage, f.file), join(dir, f.file)), dir);
      moved.push(f.file);
    }
  } catch (err) {
    for (const m of moved) tidy(join(dir, m), ops);
    throw err;
  }
}
