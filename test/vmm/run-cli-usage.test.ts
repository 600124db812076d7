import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hvmpt } from '../helpers/run.js';

/**
 * `hvmpt run`'s help and its refusals before anything runs: no /dev/kvm needed, so these stay
 * out of run-cli.test.ts, whose guests send it to a lab host where /dev/kvm cannot run them.
 */
function withPlan(text: string, body: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-plan-'));
  try {
    const file = join(dir, 'plan.yaml');
    writeFileSync(file, text);
    body(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('hvmpt run --help describes the plan, --serial, --timeout and the exit statuses', () => {
  const r = hvmpt(['run', '--help']);
  assert.equal(r.status, 0);
  for (const word of ['<plan>', '--serial', '--timeout', '--firmware-log', '--report', 'powers off or halts']) assert.ok(r.stdout.includes(word), word);
});

test('hvmpt run: a bad plan is refused before anything runs, naming every bad field by its path', () => {
  withPlan('memory: { size: lots }\nmachine:\n  boot: { kind: floppy }\n  timeout: -3\nextra: 1\n', (file) => {
    const r = hvmpt(['run', file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hvmpt: .*plan\.yaml: /);
    for (const path of ['memory.size', 'machine.boot.kind', 'machine.timeout', '(top level)']) assert.ok(r.stderr.includes(path), `${path} in ${r.stderr}`);
    assert.equal(r.stdout, '');
  });
});

test('hvmpt run: a missing kernel names the plan field; a bad --timeout is a usage error', () => {
  withPlan('machine:\n  boot: { kind: linux, kernel: no-such-vmlinuz }\n', (file) => {
    const r = hvmpt(['run', file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /plan\.yaml: machine\.boot\.kernel: .*no-such-vmlinuz: cannot read: ENOENT/);
    const t = hvmpt(['run', file, '--timeout', 'soon']);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /^hvmpt: --timeout: 'soon' is not a positive number of seconds/m);
  });
});
