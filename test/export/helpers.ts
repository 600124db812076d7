import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fixture, REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { EXPORTERS, exportModel, ExportNotes, formatNote, type ExportModel, type ExportResult } from '../../src/export/index.js';
import { readHostFacts } from '../../src/host/pci/host-facts.js';
import { resolvePlatformInputs } from '../../src/host/plan/inputs.js';
import { loadPlan } from '../../src/plan/schema.js';
import { composeMachine } from '../../src/platform/compose.js';

/** The plan with every feature, and the host capture its pass-through selectors resolve against. */
export const EVERY_FEATURE = join(REPO_ROOT, 'test', 'export', 'plan', 'every-feature.yaml');
export const P6T6 = fixture('pci', 'pciutils-tests', 'tree-asus-p6t6');
export const DESKTOP = join(REPO_ROOT, 'examples', 'desktop.yaml');

export interface Exported {
  readonly status: number | null;
  readonly text: string;
  readonly stderr: string;
  /** The `cannot express` and `differs` lines, without the `hvmpt: TARGET: ` prefix. */
  readonly notes: string[];
  readonly filesDir: string;
  file(name: string): Uint8Array;
}

/** A scratch directory removed when the test file ends. */
export function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `hvmpt export` as a user would; the export's files go under `work`. */
export function exportPlan(work: string, plan: string, target: string, extra: readonly string[] = []): Exported {
  const filesDir = join(work, `${target}-${Math.random().toString(36).slice(2, 8)}.files`);
  const r = hvmpt(['export', plan, '--to', target, '--files', filesDir, ...extra], { cwd: REPO_ROOT });
  const prefix = `hvmpt: ${target}: `;
  return {
    status: r.status,
    text: r.stdout,
    stderr: r.stderr,
    notes: r.stderr.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length)),
    filesDir,
    file: (name) => new Uint8Array(readFileSync(join(filesDir, name))),
  };
}

export function exportOk(work: string, plan: string, target: string, extra: readonly string[] = []): Exported {
  const e = exportPlan(work, plan, target, extra);
  assert.equal(e.status, 0, `hvmpt export ${plan} --to ${target}: ${e.stderr}`);
  return e;
}

// ---------------------------------------------------------------- in process


const models = new Map<string, ExportModel>();

/** The export model of a plan (composed once per plan and host capture in this process). */
export function modelOf(plan: string, host?: string): ExportModel {
  const key = `${plan}\0${host ?? ''}`;
  let m = models.get(key);
  if (m === undefined) {
    const p = loadPlan(plan);
    const facts = host === undefined ? undefined : readHostFacts(host);
    const inputs = resolvePlatformInputs(p, plan, facts === undefined ? {} : { host: facts });
    m = exportModel(p, composeMachine(p, inputs), inputs, facts);
    models.set(key, m);
  }
  return m;
}

/** What `hvmpt export` would print, computed in this process: the text, the files, the note lines. */
export function exportIn(plan: string, target: string, options: { host?: string; format?: 'sh'; filesDir?: string } = {}): ExportResult & { notes: string[]; model: ExportModel } {
  const model = modelOf(plan, options.host);
  const notes = new ExportNotes();
  const r = EXPORTERS.get(target)!.run(model, notes, { filesDir: options.filesDir ?? '/files', format: options.format });
  return { ...r, notes: notes.all.map((n) => formatNote(target, n).slice(target.length + 2)), model };
}
