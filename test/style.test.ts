import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
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

/** The layers of src/ and what each may import (docs/architecture.md): data flows hw ← plan ← platform ← host ← vmm ← cli. */
const LAYERS: Record<string, readonly string[]> = {
  hw: ['hw', 'util', 'errors'],
  util: ['util', 'errors'],
  errors: ['errors'],
  plan: ['plan', 'hw', 'util', 'errors'],
  platform: ['platform', 'plan', 'hw', 'util', 'errors'],
  native: ['native', 'errors'],
  host: ['host', 'platform', 'plan', 'hw', 'util', 'errors', 'native'],
  plugin: ['plugin', 'host', 'platform', 'plan', 'hw', 'util', 'errors', 'native'],
  vmm: ['vmm', 'plugin', 'host', 'platform', 'plan', 'hw', 'util', 'errors', 'native'],
  cli: ['cli', 'vmm', 'plugin', 'export', 'report', 'host', 'platform', 'plan', 'hw', 'util', 'errors', 'native'],
  export: ['export', 'host', 'platform', 'plan', 'hw', 'util', 'errors'],
  report: ['report', 'host', 'platform', 'plan', 'hw', 'util', 'errors'],
};
/**
 * Layers with no I/O: they import no node: module. plan/ reads its own file (plan/load.ts)
 * through the bounded input reader every input shares (plan/input.ts), and nothing else.
 */
const PURE = new Set(['hw', 'platform', 'plan', 'util', 'errors']);
const PURE_EXCEPTIONS = new Set(['src/plan/load.ts', 'src/plan/input.ts']);

interface ImportEdge {
  readonly spec: string;
  readonly typeOnly: boolean;
}

function importsOf(file: string): ImportEdge[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(import|export)(\s+type)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ spec: m[3]!, typeOnly: m[2] !== undefined }));
}

function layerOf(file: string): string {
  const rel = relative(SRC, file).split(sep);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
}

function target(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return resolve(dirname(file), spec).replace(/\.js$/, '.ts');
}

test('layers: each layer of src/ imports only the layers below it, and the pure layers do no I/O', () => {
  const offenders: string[] = [];
  for (const file of sources(SRC)) {
    const layer = layerOf(file);
    const allowed = LAYERS[layer];
    const name = relative(REPO_ROOT, file);
    if (allowed === undefined) {
      offenders.push(`${name}: layer '${layer}' is not in the layer map`);
      continue;
    }
    for (const { spec } of importsOf(file)) {
      if (spec.startsWith('node:')) {
        if (PURE.has(layer) && !PURE_EXCEPTIONS.has(name)) offenders.push(`${name} (${layer}, pure) imports ${spec}`);
        continue;
      }
      const t = target(file, spec);
      if (t === undefined) continue;
      const to = layerOf(t);
      if (!allowed.includes(to)) offenders.push(`${name} (${layer}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('no runtime import cycles in src/ (type-only imports do not count)', () => {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    graph.set(file, importsOf(file).filter((e) => !e.typeOnly).flatMap((e) => target(file, e.spec) ?? []));
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      const s = state.get(t);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].map((x) => relative(REPO_ROOT, x)).join(' -> '));
      else if (s === undefined && graph.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
