/**
 * Reading a host-facts collection: the tar archive `hvmpt collect` writes (plain or gzipped),
 * or the same files unpacked in a directory. The tar format is node-tar's (npm `tar`, the
 * npm client's own); everything after the files are in hand is pure (src/hw/facts/).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { IoError } from '../../errors.js';
import { isDirectory } from '../fs.js';
import { INPUT_LIMITS, readInputBytes } from '../../plan/input.js';
import { FACTS_ROOT, FactsError, FactsFiles } from '../../hw/facts/files.js';

/** Limits that keep a hostile archive from exhausting memory: a collection is a few MB. */
const MAX_FILE = 64 << 20;
const MAX_TOTAL = INPUT_LIMITS.facts.bytes;

const BLOCK = 512;

/** Entry types a collection holds; anything else is refused by name. */
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const SKIPPED_TYPES = new Set(['Directory', 'GNUDumpDir', 'ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'NextFileHasLongLinkpath', 'OldGnuLongPath']);

/** The path of an archive member below the collection's folder, or an error naming it. */
function memberPath(source: string, raw: string): string | undefined {
  const path = raw.replace(/^\.\//, '').replace(/\/+$/, '');
  if (path === FACTS_ROOT || path === '' || path === '.') return undefined;
  const parts = path.split('/');
  if (parts[0] !== FACTS_ROOT) throw new FactsError(`not in the ${FACTS_ROOT}/ folder a collection keeps its files in`, { input: source, at: raw });
  if (parts.some((p) => p === '..' || p === '')) throw new FactsError('a member path with "..", or an empty part', { input: source, at: raw });
  return parts.slice(1).join('/');
}

/** Reads a tar (or tar.gz) archive held in memory into the collection's files. */
export function readFactsTar(bytes: Uint8Array, source: string): FactsFiles {
  const files = new Map<string, Uint8Array>();
  let total = 0;
  let current: string | undefined;
  let failure: FactsError | undefined;
  const fail = (message: string, at: string | undefined): void => {
    failure ??= new FactsError(message, { input: source, ...(at === undefined ? {} : { at }) });
  };
  const parser = new Parser({
    strict: false,
    maxDecompressionRatio: 200,
    onwarn: (code: string, message: string) => {
      fail(`${code === 'TAR_BAD_ARCHIVE' ? 'not a complete tar archive' : 'bad tar entry'}: ${message}`, current === undefined ? undefined : `${current}`);
    },
    onReadEntry: (entry: ReadEntry) => {
      current = entry.path;
      let path: string | undefined;
      try {
        path = memberPath(source, entry.path);
      } catch (err) {
        if (err instanceof FactsError) failure ??= err;
        else throw err;
        entry.resume();
        return;
      }
      if (!FILE_TYPES.has(entry.type)) {
        if (!SKIPPED_TYPES.has(entry.type)) fail(`a ${entry.type} entry: a collection holds only files and folders`, entry.path);
        entry.resume();
        return;
      }
      if (path === undefined) {
        entry.resume();
        return;
      }
      if ((entry.size ?? 0) > MAX_FILE) {
        fail(`${entry.size} bytes: larger than any file a collection holds (${MAX_FILE})`, entry.path);
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let got = 0;
      entry.on('data', (c: Buffer) => {
        got += c.length;
        total += c.length;
        if (total <= MAX_TOTAL) chunks.push(c);
      });
      entry.on('end', () => {
        if (total > MAX_TOTAL) return fail(`the archive unpacks to more than ${MAX_TOTAL} bytes`, entry.path);
        if (entry.size !== undefined && got !== entry.size) return fail(`cut short: ${got} of ${entry.size} bytes`, entry.path);
        if (files.has(path!)) return fail('appears twice in the archive', entry.path);
        files.set(path!, new Uint8Array(Buffer.concat(chunks)));
      });
    },
  });
  parser.on('error', (err: Error) => fail(`cannot unpack: ${err.message}`, current));
  // node-tar parses a buffer written to it synchronously, including gzip.
  parser.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (failure !== undefined) throw failure;
  // A plain tar is whole 512-byte blocks and ends with two zero blocks; a cut one is neither.
  const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (!gzip && current !== undefined) {
    const last = current === undefined ? {} : { at: current };
    if (bytes.length % BLOCK !== 0) throw new FactsError(`cut short after this member: ${bytes.length} bytes is not a whole number of ${BLOCK}-byte tar blocks`, { input: source, ...last });
    if (bytes.length < 2 * BLOCK || bytes.subarray(bytes.length - 2 * BLOCK).some((b) => b !== 0)) throw new FactsError('cut short after this member: no end-of-archive blocks', { input: source, ...last });
  }
  if (files.size === 0) throw new FactsError(`no ${FACTS_ROOT}/ files: not an archive \`hvmpt collect\` wrote`, { input: source });
  return new FactsFiles(source, files);
}

/** Reads an unpacked collection: a directory holding `hvmpt-facts/`, or that folder itself. */
export function readFactsDirectory(dir: string): FactsFiles {
  const root = statSync(join(dir, FACTS_ROOT), { throwIfNoEntry: false })?.isDirectory() === true ? join(dir, FACTS_ROOT) : dir;
  const files = new Map<string, Uint8Array>();
  let total = 0;
  const walk = (rel: string): void => {
    const here = rel === '' ? root : join(root, rel);
    for (const e of readdirSync(here, { withFileTypes: true })) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) {
        // The same caps as an archive's: a folder is no way around them.
        const size = statSync(join(root, path)).size;
        total += size;
        if (size > MAX_FILE || total > MAX_TOTAL) throw new FactsError(`${size > MAX_FILE ? `a file of ${size} bytes (a collection's files are under ${MAX_FILE >> 20} MiB)` : `more than ${MAX_TOTAL >> 20} MiB in all`}: not a collection`, { input: dir, at: `${FACTS_ROOT}/${path}` });
        files.set(path, new Uint8Array(readFileSync(join(root, path))));
      }
      else throw new FactsError('not a file or folder: a collection holds only files and folders', { input: dir, at: `${FACTS_ROOT}/${path}` });
    }
  };
  try {
    walk('');
  } catch (err) {
    if (err instanceof FactsError) throw err;
    throw new IoError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: dir }, { cause: err });
  }
  return new FactsFiles(dir, files);
}

/** Reads a collection from a tar archive or a directory, as the CLI names it. */
export function readFacts(path: string): FactsFiles {
  return isDirectory(path) ? readFactsDirectory(path) : readFactsTar(readInputBytes(path, 'facts'), path);
}
