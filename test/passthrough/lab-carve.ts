/**
 * The identity carve of a lab host with no IOMMU, as `hvmpt e820 carve` computes it from that
 * lab host's own firmware map: the map read once by a short lab boot with the same --memory,
 * cached under .cache/ (the lab tests that run identity guests share it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { labEnv } from '../lab/lab-env.js';

const CACHE = join(REPO_ROOT, '.cache', 'identity-lab');

/** The lab host's firmware map (/sys/firmware/memmap), from a first short lab boot with the same memory, cached. */
export function labHostMap(memory: string): string {
  const file = join(CACHE, `memmap-${memory}.txt`);
  if (existsSync(file)) return file;
  const r = hvmpt(['lab', '--memory', memory, '--timeout', '300', '--', 'grep . /sys/firmware/memmap/*/*'], { env: labEnv() });
  assert.equal(r.status, 0, `reading the lab host's map: ${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /memmap\/0\/type:System RAM/);
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(file, r.stdout);
  return file;
}

export interface LabCarve {
  /** The host kernel's memmap= parameters, unescaped for the lab's --append. */
  readonly memmap: string[];
  readonly start: bigint;
  readonly end: bigint;
}

/** One guest of `size` carved at or above `above` from the lab host's map. */
export function labCarve(memory: string, size: string, above: string): LabCarve {
  const carve = hvmpt(['e820', 'carve', labHostMap(memory), '--size', size, '--above', above, '--json']);
  assert.equal(carve.status, 0, carve.stderr);
  const plan = JSON.parse(carve.stdout) as { kernelParams: string[]; guests: Array<{ identity: Array<{ start: string; end: string }> }> };
  const memmap = plan.kernelParams.map((p) => p.replace(/\\\$/g, '$'));
  assert.equal(memmap.length, 1);
  const region = plan.guests[0]!.identity[0]!;
  return { memmap, start: BigInt(region.start), end: BigInt(region.end) };
}
