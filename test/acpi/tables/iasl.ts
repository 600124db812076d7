import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../helpers/run.js';

/** A scratch directory for iasl runs, removed by `done()`. */
export function scratch(prefix: string): { dir: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `iasl -d` of one binary table: the .dsl text and iasl's messages. */
export function disassemble(dir: string, name: string, data: Uint8Array): { dsl: string; log: string } {
  const file = join(dir, `${name}.dat`);
  writeFileSync(file, data);
  const r = run('iasl', ['-d', file], { cwd: dir });
  if (r.status !== 0) throw new Error(`iasl -d ${name} failed:\n${r.stdout}${r.stderr}`);
  return { dsl: readFileSync(join(dir, `${name}.dsl`), 'latin1'), log: r.stdout + r.stderr };
}

/** Compiles iasl data-table source (a .dsl from `iasl -d`, a template, or hand-written). */
export function compile(dir: string, name: string, source: string): Uint8Array {
  const file = join(dir, `${name}.asl`);
  writeFileSync(file, source);
  const r = run('iasl', ['-p', join(dir, `${name}-out`), file], { cwd: dir });
  if (r.status !== 0) throw new Error(`iasl ${name} failed:\n${r.stdout}${r.stderr}`);
  return new Uint8Array(readFileSync(join(dir, `${name}-out.aml`)));
}
