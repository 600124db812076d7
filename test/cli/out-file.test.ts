import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OutputFile, openLogFile } from '../../src/cli/out-file.js';
import { IoError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'hvmpt-out-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a report file: claimed up front, put in place whole by commit, the old one kept when given up', () => {
  const path = join(dir, 'report.json');
  writeFileSync(path, 'old');
  const given = OutputFile.claim(path, 'the run report');
  given.abandon();
  given.abandon();
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['report.json']);
  const kept = OutputFile.claim(path, 'the run report');
  // Until the commit, the old file is what a reader sees.
  assert.equal(readFileSync(path, 'utf8'), 'old');
  kept.commit(new TextEncoder().encode('new'));
  assert.equal(readFileSync(path, 'utf8'), 'new');
  assert.deepEqual(readdirSync(dir), ['report.json']);
  assert.throws(() => kept.commit(new Uint8Array(1)), IoError);
});

test('a report file that cannot be put in place (a directory took its name) fails naming it, leaving no temporary file', () => {
  const sub = join(dir, 'taken');
  mkdirSync(join(sub, 'report.json'), { recursive: true });
  writeFileSync(join(sub, 'report.json', 'keep'), 'x');
  const f = OutputFile.claim(join(sub, 'report.json'), 'the run report');
  assert.throws(
    () => f.commit(new TextEncoder().encode('{}')),
    (err: unknown) => err instanceof IoError && err.where.input === join(sub, 'report.json') && /^cannot write the run report: E[A-Z]+ \(the file was left as it was\)$/.test(err.detail),
  );
  assert.deepEqual(readdirSync(sub), ['report.json']);
  assert.deepEqual(readdirSync(join(sub, 'report.json')), ['keep']);
});

test('claiming where nothing can be written fails at once, naming the file', () => {
  const path = join(dir, 'missing', 'report.json');
  assert.throws(() => OutputFile.claim(path, 'the run report'), (err: unknown) => err instanceof IoError && err.message === `${path}: cannot write the run report: ENOENT`);
});

test('a log file: a write that fails (/dev/full) is reported by close as an IoError, not thrown as a stream error', async () => {
  const log = openLogFile('/dev/full', 'the firmware log');
  log.write(new Uint8Array(100_000));
  log.write(new Uint8Array(10));
  await assert.rejects(log.close(), (err: unknown) => err instanceof IoError && err.message === '/dev/full: cannot write the firmware log: ENOSPC');
  const ok = openLogFile(join(dir, 'serial.log'), 'the serial output');
  ok.write(new TextEncoder().encode('hello'));
  await ok.close();
  assert.equal(readFileSync(join(dir, 'serial.log'), 'utf8'), 'hello');
  assert.throws(() => openLogFile(join(dir, 'missing', 'x.log'), 'the serial output'), IoError);
});
