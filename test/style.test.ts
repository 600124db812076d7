import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/paths.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const SRC = join(REPO_ROOT, 'src');

test('no `any` in src/: everything is typed', () => {
  const offenders = sources(SRC).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line, i) => ({ line, n: i + 1 }))
      .filter(({ line }) => /(:\s*any\b|\bas any\b|<any>|any\[\])/.test(line.replace(/\/\/.*$/, '')))
      .map(({ n }) => `${relative(REPO_ROOT, file)}:${n}`),
  );
  assert.deepEqual(offenders, []);
});

test('hw/ is pure: no node: I/O modules and no imports from the I/O layers', () => {
  const offenders = sources(join(SRC, 'hw')).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const imports = [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    return imports
      .filter((spec) => spec.startsWith('node:') || /(^|\/)(host|vmm|cli|export)\//.test(spec))
      .map((spec) => `${relative(REPO_ROOT, file)} imports ${spec}`);
  });
  assert.deepEqual(offenders, []);
});
