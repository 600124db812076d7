import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hvmpt } from './helpers/run.js';

test('hvmpt --help lists the command and exits 0', () => {
  const r = hvmpt(['--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: hvmpt/);
});

test('hvmpt --version prints the package version', () => {
  const r = hvmpt(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('an unknown command is a usage error (exit 2) with a hint', () => {
  const r = hvmpt(['no-such-command']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command/);
});

test('hvmpt doctor reports /dev/kvm and the checking tools, as text and JSON', () => {
  const text = hvmpt(['doctor']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /\/dev\/kvm/);
  const json = hvmpt(['doctor', '--json']);
  const parsed = JSON.parse(json.stdout) as { checks: Array<{ name: string; ok: boolean }> };
  assert.ok(parsed.checks.some((c) => c.name === 'lspci'));
  assert.ok(parsed.checks.every((c) => typeof c.ok === 'boolean'));
});
