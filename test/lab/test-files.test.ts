import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { labEnv } from './lab-env.js';

/** A test file that logs when it starts and ends; `linux` files carry a probe-guest plan in their text. */
function fakeTestFile(dir: string, name: string, linux: boolean, log: string): string {
  const file = join(dir, `${name}.test.mjs`);
  const plan = linux ? "const plan = 'machine: { boot: { kind: probe } }';" : '';
  writeFileSync(
    file,
    `import { test } from 'node:test';\nimport { appendFileSync } from 'node:fs';\n${plan}\n` +
      `test('${name}', async () => {\n  appendFileSync(${JSON.stringify(log)}, 'start ${name} ' + Date.now() + '\\n');\n` +
      `  await new Promise((r) => setTimeout(r, 1500));\n  appendFileSync(${JSON.stringify(log)}, 'end ${name} ' + Date.now() + '\\n');\n});\n`,
  );
  return file;
}

/** Runs test-files.mjs over two Linux-booting files and two others; the [start, end] of each by name. */
function runFour(extra: string[]): { status: number | null; stdout: string; spans: Map<string, [number, number]> } {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-test-files-'));
  try {
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const files = [fakeTestFile(dir, 'linuxA', true, log), fakeTestFile(dir, 'linuxB', true, log), fakeTestFile(dir, 'other1', false, log), fakeTestFile(dir, 'other2', false, log)];
    // Without this test's own runner context, the files' `node --test` reports as TAP, as under npm test.
    const env = labEnv();
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/test-files.mjs'), '60000', ...extra, ...files], { encoding: 'utf8', cwd: REPO_ROOT, env });
    const spans = new Map<string, [number, number]>();
    for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
      const [what, name, at] = line.split(' ') as [string, string, string];
      const span = spans.get(name) ?? [0, 0];
      span[what === 'start' ? 0 : 1] = Number(at);
      spans.set(name, span);
    }
    return { status: r.status, stdout: r.stdout, spans };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const overlap = (a: [number, number], b: [number, number]): boolean => a[0] < b[1] && b[0] < a[1];

test('in a lab host no two files that boot Linux guests run at once; other files run beside them', () => {
  const one = runFour(['--one-linux-guest']);
  assert.equal(one.status, 0, one.stdout);
  assert.equal(one.spans.size, 4, 'every file ran');
  for (const name of ['linuxA', 'linuxB', 'other1', 'other2']) assert.match(one.stdout, new RegExp(`# test-file-end \\S*${name}\\.test\\.mjs 0\\n`));
  const [a, b] = [one.spans.get('linuxA')!, one.spans.get('linuxB')!];
  assert.ok(!overlap(a, b), `linuxA ${a.join('-')} and linuxB ${b.join('-')} overlapped`);
  assert.ok(overlap(a, one.spans.get('other1')!), 'a file that boots no Linux ran beside linuxA');
  // Without the option the same files take the two slots in order: both Linux files at once.
  const two = runFour([]);
  assert.equal(two.status, 0, two.stdout);
  assert.ok(overlap(two.spans.get('linuxA')!, two.spans.get('linuxB')!), 'without --one-linux-guest the first two files run together');
});

test('a file stuck past its limit, node\'s own timeout aside, is killed whole and fails under its name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-test-files-'));
  try {
    const stuck = join(dir, 'stuck.test.mjs');
    // A test that never yields: --test-timeout needs the event loop it holds.
    writeFileSync(stuck, "import { test } from 'node:test';\ntest('spins', () => { for (;;); });\n");
    const env = labEnv();
    const t0 = Date.now();
    // node's own limit put far off, as if its runner were the one stuck: test-files' limit still holds.
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/test-files.mjs'), '2000', '--test-timeout=600000', stuck], { encoding: 'utf8', cwd: REPO_ROOT, env, timeout: 60_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /# test-files: \S*stuck\.test\.mjs ran past its limit of 2 s by 2 s and was killed\n# test-file-end \S*stuck\.test\.mjs 1\n/);
    assert.ok(Date.now() - t0 < 30_000, 'killed at the limit, not left to spin');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
