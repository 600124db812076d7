import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { lendImport } from '../plugin/dynamic-import.js';

/**
 * The CLI bundle is compiled through V8's code cache: in a lab host under TCG, V8 parsing and
 * compiling the 2 MB bundle took a large share of `hvmpt run`'s start (docs/lab.md), and node 20
 * caches no ES module. The bundle is therefore CommonJS (dist/hvmpt-cli.cjs), run as a vm.Script
 * with the cache `npm run build` writes beside it after a representative command (scripts/bundle.mjs).
 *
 * V8 checks a cache against its own version and flags and the source's length only, so a cache
 * also names the bundle it was made from (size and modification time) in a header of its own:
 * a bundle rebuilt or edited since is compiled afresh, never run with another's bytecode. The
 * header also holds the V8 data's length: a cut file is not handed to V8, which in a release
 * build checks no checksum of its own.
 */
const MAGIC = 0x43435648; // 'HVCC', little-endian
const HEADER = { magic: 0, bundleSize: 4, bundleMtimeMs: 8, dataLength: 16, length: 24 } as const;

/** What became of the cache: used, refused by V8 (another node or flags), or not used at all. */
export type CacheUse = 'accepted' | 'rejected' | 'absent' | 'stale' | 'off';

export interface CompiledCli {
  readonly script: vm.Script;
  readonly cache: CacheUse;
  /** Runs the bundle as a CommonJS module whose `import.meta` is `importMeta`. */
  run(importMeta: { url: string; resolve(specifier: string): string }, importModule: (specifier: string) => Promise<unknown>): void;
  /** Writes a cache of everything compiled so far, stamped with the bundle it belongs to. */
  writeCache(cacheFile: string): void;
}

function stamp(bundleFile: string): { size: number; mtimeMs: number } {
  const st = statSync(bundleFile);
  return { size: st.size, mtimeMs: st.mtimeMs };
}

/** The V8 data of `cacheFile` when its header names `bundleFile` as it is now; why not otherwise. */
function readCache(cacheFile: string, bundleFile: string): Buffer | 'absent' | 'stale' {
  let bytes: Buffer;
  try {
    bytes = readFileSync(cacheFile);
  } catch {
    return 'absent';
  }
  if (bytes.length < HEADER.length) return 'stale';
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER.length);
  const now = stamp(bundleFile);
  const same =
    view.getUint32(HEADER.magic, true) === MAGIC &&
    view.getUint32(HEADER.bundleSize, true) === now.size &&
    view.getFloat64(HEADER.bundleMtimeMs, true) === now.mtimeMs &&
    view.getUint32(HEADER.dataLength, true) === bytes.length - HEADER.length;
  return same ? bytes.subarray(HEADER.length) : 'stale';
}

/**
 * Compiles the CommonJS file `bundleFile` with the cache in `cacheFile` where it belongs to it
 * (`useCache` false: without). The source is wrapped as node wraps a CommonJS module, with
 * `import.meta` as one more parameter (the bundle is built with import.meta defined to it).
 */
export function compileCli(bundleFile: string, cacheFile: string, useCache = true): CompiledCli {
  // A leading #! line becomes an empty line, so line numbers in stack traces stay the file's.
  const source = readFileSync(bundleFile, 'utf8').replace(/^#!.*/, '');
  const cached = useCache ? readCache(cacheFile, bundleFile) : 'off';
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __hvmptImportMeta) {${source}\n})`, {
    filename: bundleFile,
    ...(typeof cached === 'string' ? {} : { cachedData: cached }),
  });
  const cache: CacheUse = typeof cached === 'string' ? cached : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  return {
    script,
    cache,
    run(importMeta, importModule) {
      lendImport(importModule);
      const fn = script.runInThisContext() as (...args: unknown[]) => void;
      const module = { exports: {} };
      fn.call(module.exports, module.exports, createRequire(bundleFile), module, bundleFile, dirname(bundleFile), importMeta);
    },
    writeCache(file) {
      const data = script.createCachedData();
      const header = new DataView(new ArrayBuffer(HEADER.length));
      const now = stamp(bundleFile);
      header.setUint32(HEADER.magic, MAGIC, true);
      header.setUint32(HEADER.bundleSize, now.size, true);
      header.setFloat64(HEADER.bundleMtimeMs, now.mtimeMs, true);
      header.setUint32(HEADER.dataLength, data.length, true);
      writeFileSync(file, Buffer.concat([new Uint8Array(header.buffer), data]));
    },
  };
}

/**
 * Runs the CLI bundle beside `launcherUrl` (dist/hvmpt.mjs). HVMPT_CODE_CACHE=off compiles it
 * without the cache (to measure what the cache saves); =write writes the cache when the process
 * exits, which is how the build makes it.
 */
export function launchCli(launcherUrl: string, resolve: (specifier: string) => string, importModule: (specifier: string) => Promise<unknown>): void {
  const bundleFile = fileURLToPath(new URL('./hvmpt-cli.cjs', launcherUrl));
  const cacheFile = fileURLToPath(new URL('./hvmpt-cli.cache', launcherUrl));
  const mode = process.env['HVMPT_CODE_CACHE'];
  const cli = compileCli(bundleFile, cacheFile, mode !== 'off' && mode !== 'write');
  if (mode === 'write') {
    process.on('exit', () => {
      try {
        cli.writeCache(cacheFile);
      } catch (err) {
        // A read-only install (a lab host's root): hvmpt still ran; the next start compiles afresh.
        process.stderr.write(`hvmpt: code cache ${cacheFile} not written: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    });
  }
  cli.run({ url: pathToFileURL(bundleFile).href, resolve }, importModule);
}
