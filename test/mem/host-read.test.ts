import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { normalizeE820 } from '../../src/hw/mem/e820.js';
import { parseE820Text, selectMap } from '../../src/hw/mem/e820-parse.js';
import { readE820Input, readHostE820, readSysfsMemmap, SYSFS_MEMMAP } from '../../src/host/mem/read.js';
import { hvmpt, run } from '../helpers/run.js';

test('this machine: /sys/firmware/memmap agrees with the kernel\'s own BIOS-e820 lines in dmesg', (t) => {
  if (!existsSync(SYSFS_MEMMAP)) {
    process.stdout.write(`SKIPPED (no ${SYSFS_MEMMAP}): ${t.name}\n`);
    return t.skip('no memmap');
  }
  const sysfs = normalizeE820(readSysfsMemmap().maps[0]!.entries).map;
  assert.equal(readHostE820().source, SYSFS_MEMMAP);
  assert.ok(sysfs.entries.some((e) => e.type === 'usable'));
  const dmesg = run('dmesg', []);
  if (dmesg.status !== 0 || !dmesg.stdout.includes('BIOS-e820:')) {
    process.stdout.write(`SKIPPED (dmesg unreadable or its boot messages are gone): ${t.name}\n`);
    return t.skip('no dmesg');
  }
  const fromLog = normalizeE820(selectMap(parseE820Text(dmesg.stdout, 'dmesg'), 'dmesg', 'BIOS-e820').entries).map;
  assert.deepEqual(sysfs, fromLog);
  // The CLI reads the directory the same way.
  const r = hvmpt(['e820', 'show', SYSFS_MEMMAP, '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { entries: unknown[] }).entries.length, sysfs.entries.length);
});

test('a memmap directory with a missing file is an error naming the entry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-memmap-'));
  for (const [n, start, end, type] of [['0', '0x0', '0x9fbff', 'System RAM'], ['1', '0x100000', '0x3fffffff', 'System RAM']]) {
    mkdirSync(join(dir, n!));
    writeFileSync(join(dir, n!, 'start'), start + '\n');
    writeFileSync(join(dir, n!, 'end'), end + '\n');
    writeFileSync(join(dir, n!, 'type'), type + '\n');
  }
  assert.deepEqual(readE820Input(dir).maps[0]!.entries[1], { start: 0x100000n, end: 0x40000000n, type: 'usable' });
  mkdirSync(join(dir, '2'));
  writeFileSync(join(dir, '2', 'start'), '0x40000000');
  assert.throws(() => readE820Input(dir), /hvmpt-memmap-.*: 2\/: entry 2 has no end/);
});
