import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { CLI } from './paths.js';

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(command: string, args: readonly string[], options: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(command, [...args], { encoding: 'utf8', maxBuffer: 256 << 20, ...options });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs the built `hvmpt` CLI in a child process. */
export function hvmpt(args: readonly string[], options: SpawnSyncOptions = {}): RunResult {
  return run(process.execPath, [CLI, ...args], options);
}
