/**
 * The GRUB image cache (src/host/firmware/grub.ts): one process builds and keeps the image, the
 * next one reads it without grub-mkimage (a lab host's view of this machine's cache), a cut file
 * is built again, and a cache it cannot write leaves the image built all the same.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware } from '../helpers/require.js';

/** Builds the report image in a fresh process and prints its sha256 and length. */
const BUILD = `
import { createHash } from 'node:crypto';
import { buildGrubImage } from '${join(REPO_ROOT, 'dist/src/host/firmware/grub.js')}';
const image = buildGrubImage();
console.log(createHash('sha256').update(image).digest('hex'), image.length);
`;

function build(cache: string, path = process.env['PATH'] ?? ''): { status: number | null; out: string; err: string } {
  // Bounded: a cache directory that cannot be made must not hang the build (node's recursive mkdir loops under /proc).
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', BUILD], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HVMPT_GRUB_CACHE: cache, PATH: path } });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr + (r.error === undefined ? '' : String(r.error)) };
}

test('a GRUB image is built once and read back by the next process, without grub-mkimage; a cut file is built again; an unwritable cache still builds', (t) => {
  if (!skipUnlessBootFirmware(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-grub-cache-'));
  try {
    const cache = join(dir, 'cache');
    const first = build(cache);
    assert.equal(first.status, 0, first.err);
    const files = readdirSync(cache);
    assert.equal(files.length, 1, `one image kept: ${files.join(', ')}`);
    assert.match(files[0]!, /^[0-9a-f]{64}\.img$/);

    // No grub-mkimage on PATH: only the cache can give the image, and it is the same bytes.
    const nobin = join(dir, 'empty-bin');
    const again = build(cache, nobin);
    assert.equal(again.status, 0, again.err);
    assert.equal(again.out, first.out);

    // A file cut short is not taken: without grub-mkimage that is an error naming it...
    const file = join(cache, files[0]!);
    writeFileSync(file, readFileSync(file).subarray(0, 0x100));
    const cut = build(cache, nobin);
    assert.notEqual(cut.status, 0);
    assert.match(cut.err, /grub-mkimage/);
    // ...and with it, the image is built and kept whole again.
    const rebuilt = build(cache);
    assert.equal(rebuilt.out, first.out, rebuilt.err);
    assert.equal(readFileSync(file).length, Number(first.out.split(' ')[1]));

    // A cache that cannot be written (root ignores modes, so a file stands where the directory would be).
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, 'not a directory');
    chmodSync(blocked, 0o444);
    const noCache = build(join(blocked, 'grub'));
    assert.equal(noCache.status, 0, noCache.err);
    assert.equal(noCache.out, first.out);
    // Where no directory can be made at all (procfs, as a read-only 9p view refuses): built, promptly.
    const proc = build('/proc/hvmpt-grub-cache-test/grub');
    assert.equal(proc.status, 0, proc.err);
    assert.equal(proc.out, first.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
