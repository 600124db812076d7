import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { IoError } from '../../src/errors.js';
import { INPUT_LIMITS, readInputBytes, readInputText } from '../../src/plan/input.js';

/** The bounded reader every input goes through (issue 9, items 2 and 4). */

function refusal(fn: () => unknown): IoError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IoError, String(err));
    return err;
  }
  assert.fail('read');
}

test('files are read whole up to the cap of their kind; a regular file above it is refused before a byte is read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-input-'));
  try {
    const small = join(dir, 'small.yaml');
    writeFileSync(small, 'memory: { size: 64M }\n');
    assert.equal(readInputText(small, 'plan'), 'memory: { size: 64M }\n');
    const cap = INPUT_LIMITS.plan.bytes;
    const atCap = join(dir, 'at-cap');
    writeFileSync(atCap, '');
    truncateSync(atCap, cap);
    assert.equal(readInputBytes(atCap, 'plan').length, cap);
    // One byte more, and then a 1 GB sparse file: refused by their size alone.
    truncateSync(atCap, cap + 1);
    assert.equal(refusal(() => readInputBytes(atCap, 'plan')).message, `${atCap}: larger than 16 MiB, the most hvmpt reads for a plan (no real one comes near it)`);
    truncateSync(atCap, 1 << 30);
    assert.match(refusal(() => readInputBytes(atCap, 'e820')).message, /larger than 64 MiB, the most hvmpt reads for a boot log/);
    assert.match(refusal(() => readInputBytes(dir, 'pci')).message, /: cannot read: EISDIR \(a directory\)$/);
    assert.match(refusal(() => readInputBytes(join(dir, 'none'), 'acpi')).message, /none: cannot read: ENOENT$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('endless and size-less inputs: /dev/zero is read to the cap and refused; a /proc file (size 0) is read whole', () => {
  assert.equal(refusal(() => readInputBytes('/dev/zero', 'plan')).message, '/dev/zero: larger than 16 MiB, the most hvmpt reads for a plan (no real one comes near it)');
  assert.match(readInputText('/proc/self/status', 'e820'), /^Name:/);
  assert.equal(readInputBytes('/dev/null', 'acpi').length, 0);
});
