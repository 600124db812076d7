/**
 * The collector: a POSIX sh script hvmpt ships (collect.sh beside this module's source), run
 * here with `sh`, or printed for a machine without Node. It only reads; see the script's
 * header for the one exception (`--rom`).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError, IoError } from '../../errors.js';
import type { FactsFiles } from '../../hw/facts/files.js';
import { packageRoot } from '../package-root.js';
import { readFactsTar } from './archive.js';

/** The collector script could not be run, or it failed. */
export class CollectorError extends HvmptError {}

/** Where the script lives: src/host/facts/collect.sh in the package (found from here, compiled, bundled or not). */
export function collectorScriptPath(): string {
  const root = packageRoot(import.meta.url);
  if (root === undefined) throw new CollectorError('cannot find the package root above this module', { input: import.meta.url });
  return join(root, 'src', 'host', 'facts', 'collect.sh');
}

export function collectorScript(): string {
  const path = collectorScriptPath();
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new IoError(`cannot read the collector script: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path });
  }
}

export interface CollectOptions {
  /** The archive to write; `-` for standard output. */
  readonly out: string;
  readonly rom?: boolean;
  /** The shell to run it with (default `sh`). */
  readonly shell?: string;
}

/** Runs the collector, which writes the archive itself; its messages go to our stderr. */
export function runCollector(options: CollectOptions): void {
  const args = [collectorScriptPath(), '--out', options.out, ...(options.rom === true ? ['--rom'] : [])];
  const r = spawnSync(options.shell ?? 'sh', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error !== undefined) throw new CollectorError(`cannot run ${options.shell ?? 'sh'}: ${r.error.message}`, { input: 'hvmpt collect' });
  if (r.status !== 0) throw new CollectorError(`the collector stopped with ${r.signal ?? `status ${r.status}`}`, { input: 'hvmpt collect' });
}

/** This machine's archive, collected on a pipe (nothing written but the collector's staging folder). */
export function collectLiveArchive(shell = 'sh'): Uint8Array {
  const r = spawnSync(shell, [collectorScriptPath(), '--out', '-'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  if (r.error !== undefined) throw new CollectorError(`cannot run ${shell}: ${r.error.message}`, { input: 'hvmpt collect' });
  if (r.status !== 0) throw new CollectorError(`the collector stopped with ${r.signal ?? `status ${r.status}`}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' / ')}`, { input: 'hvmpt collect' });
  return new Uint8Array(r.stdout);
}

/** This machine's collection, read into memory. */
export function collectLive(shell = 'sh'): FactsFiles {
  return readFactsTar(collectLiveArchive(shell), 'this machine (live)');
}
