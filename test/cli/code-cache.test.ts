import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileCli } from '../../src/cli/code-cache.js';
import { REPO_ROOT } from '../helpers/paths.js';

const META = { url: 'file:///nowhere/bundle.cjs', resolve: (s: string): string => s };

test('the built CLI bundle starts from its code cache, and says the same as without it', () => {
  const cli = compileCli(join(REPO_ROOT, 'dist/hvmpt-cli.cjs'), join(REPO_ROOT, 'dist/hvmpt-cli.cache'));
  assert.equal(cli.cache, 'accepted', 'npm run build wrote a cache this node accepts for this bundle');
  const run = (env: Record<string, string>): string => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist/hvmpt.mjs'), 'pci', '--help'], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    return r.stdout;
  };
  assert.equal(run({}), run({ HVMPT_CODE_CACHE: 'off' }));
});

/**
 * Compiles and runs `bundle` with `cache` in a fresh node, and writes the cache after when
 * `write`: V8's own per-process compilation cache would answer a second compile of the same
 * source here without looking at the cache at all.
 */
function inFreshNode(bundle: string, cache: string, write = false): { cache: string; said: unknown } {
  const code = `import { compileCli } from ${JSON.stringify(join(REPO_ROOT, 'dist/src/cli/code-cache.js'))};
const cli = compileCli(${JSON.stringify(bundle)}, ${JSON.stringify(cache)});
cli.run(${JSON.stringify(META)}, (s) => import(s));
${write ? `cli.writeCache(${JSON.stringify(cache)});` : ''}
process.stdout.write(JSON.stringify({ cache: cli.cache, said: globalThis.hvmptCacheTest }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { cache: string; said: unknown };
}

test('a cache is used only with the bundle it was made from: a rebuilt bundle of the same length runs its own code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-code-cache-'));
  try {
    const bundle = join(dir, 'bundle.cjs');
    const cache = join(dir, 'bundle.cache');
    // Enough code that V8 has functions to cache, and a result that says which source ran.
    const body = Array.from({ length: 50 }, (_, i) => `function f${i}(x) { return x * ${i} + 1; }`).join('\n');
    writeFileSync(bundle, `#!/usr/bin/env node\n${body}\nglobalThis.hvmptCacheTest = [typeof require, typeof module, __hvmptImportMeta.url, f7(1)];\n`);
    assert.deepEqual(inFreshNode(bundle, cache, true), { cache: 'absent', said: ['function', 'object', META.url, 8] }, 'run as a CommonJS module with import.meta given');
    assert.deepEqual(inFreshNode(bundle, cache), { cache: 'accepted', said: ['function', 'object', META.url, 8] });
    assert.equal(compileCli(bundle, cache, false).cache, 'off');

    // Same length, other code, a later time: V8 alone would take the old bytecode for it.
    writeFileSync(bundle, readFileSync(bundle, 'utf8').replace('x * 7 + 1', 'x * 7 + 2'));
    utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(inFreshNode(bundle, cache, true), { cache: 'stale', said: ['function', 'object', META.url, 9] });

    // A cache with the right header whose V8 data is not this node's (its magic and version
    // hash differ) is refused by V8; the bundle still runs.
    const bytes = readFileSync(cache);
    for (let i = 24; i < 32; i++) bytes[i] = (bytes[i] ?? 0) ^ 0x5a;
    writeFileSync(cache, bytes);
    assert.deepEqual(inFreshNode(bundle, cache), { cache: 'rejected', said: ['function', 'object', META.url, 9] });

    // A cut cache, a header alone, or a file that is not a cache, is stale.
    writeFileSync(cache, bytes.subarray(0, bytes.length - 1));
    assert.equal(compileCli(bundle, cache).cache, 'stale');
    writeFileSync(cache, bytes.subarray(0, 10));
    assert.equal(compileCli(bundle, cache).cache, 'stale');
    copyFileSync(bundle, cache);
    assert.equal(compileCli(bundle, cache).cache, 'stale');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
