import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { HvmptError } from '../src/errors.js';

/**
 * What the ACPI fuzz campaigns share: a tally of outcomes, and a runner that executes the cases
 * in a worker thread while the main thread watches for a case that makes no progress (a hang),
 * naming it so it can be replayed alone with `--case I`.
 */

export interface Crash {
  readonly index: number;
  readonly target: string;
  readonly how: string;
  readonly error: string;
  /** The mutated input, hex or text, to reproduce outside the campaign. */
  readonly input: string;
}

export interface Tally {
  cases: number;
  /** Cases whose input was accepted (decoded, parsed, rewritten…). */
  decoded: number;
  rejected: number;
  crashes: Crash[];
  /** Typed rejections by error class. */
  byClass: Record<string, number>;
  /** Typed rejections by message with the numbers taken out: which guards the cases reached. */
  reasons: Record<string, number>;
}

export function newTally(): Tally {
  return { cases: 0, decoded: 0, rejected: 0, crashes: [], byClass: {}, reasons: {} };
}

/** Counts a typed rejection. */
export function count(tally: Tally, err: HvmptError): void {
  tally.rejected++;
  tally.byClass[err.name] = (tally.byClass[err.name] ?? 0) + 1;
  const at = err.message.lastIndexOf(': ');
  const reason = (at >= 0 ? err.message.slice(at + 2) : err.message).replace(/0x[0-9a-f]+|\d+/gi, 'N').replace(/\(.*?\)/g, '(…)');
  tally.reasons[reason] = (tally.reasons[reason] ?? 0) + 1;
}

export function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A campaign: its name (the fuzz target), how to load its corpus, and how to run one case. */
export interface CampaignDefinition<C> {
  readonly name: string;
  /** The module defining it (its import.meta.url): the worker imports it. */
  readonly module: string;
  load(fixtures: string): C;
  runCase(corpus: C, seed: number, index: number, tally: Tally): void;
  /** Called in the worker after the last case. */
  finish?(): void;
}

interface WorkerJob {
  readonly hvmptFuzzCampaign: string;
  readonly fixtures: string;
  readonly seed: number;
  readonly cases: number;
  /** The worker stores the index of the case it is running here, so a hang names its case. */
  readonly current: SharedArrayBuffer;
}

type WorkerMessage = { kind: 'progress'; done: number } | { kind: 'done'; tally: Tally };

/** In a worker started by runCampaign for this definition: runs the cases. Call at module top level. */
export function serveCampaign<C>(def: CampaignDefinition<C>): void {
  if (isMainThread || (workerData as Partial<WorkerJob> | null)?.hvmptFuzzCampaign !== def.name) return;
  const job = workerData as WorkerJob;
  const corpus = def.load(job.fixtures);
  const tally = newTally();
  const current = new Int32Array(job.current);
  let last = Date.now();
  for (let i = 0; i < job.cases; i++) {
    Atomics.store(current, 0, i);
    def.runCase(corpus, job.seed, i, tally);
    if (Date.now() - last > 250) {
      last = Date.now();
      parentPort!.postMessage({ kind: 'progress', done: i + 1 } satisfies WorkerMessage);
    }
  }
  def.finish?.();
  parentPort!.postMessage({ kind: 'done', tally } satisfies WorkerMessage);
}

const HANG_SECONDS = 10;

export interface CampaignOutcome {
  readonly tally: Tally | undefined;
  readonly seconds: number;
}

/** Runs `cases` cases of the campaign in a worker thread; a hang ends it (tally undefined). */
export async function runCampaign<C>(def: CampaignDefinition<C>, options: { cases: number; seed: number; fixtures: string }): Promise<CampaignOutcome> {
  const started = Date.now();
  const current = new SharedArrayBuffer(4);
  const job: WorkerJob = { hvmptFuzzCampaign: def.name, fixtures: options.fixtures, seed: options.seed, cases: options.cases, current };
  const worker = new Worker(new URL(def.module), { workerData: job });
  let lastProgress = Date.now();
  let lastPrint = 0;
  const tally = await new Promise<Tally | undefined>((resolvePromise, reject) => {
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > HANG_SECONDS * 1000) {
        clearInterval(watchdog);
        void worker.terminate();
        const stuck = Atomics.load(new Int32Array(current), 0);
        process.stderr.write(`\nHANG: case ${stuck} made no progress for ${HANG_SECONDS} s (replay: npm run fuzz -- ${def.name} --seed ${options.seed} --case ${stuck})\n`);
        resolvePromise(undefined);
      }
    }, 1000);
    worker.on('message', (m: WorkerMessage) => {
      lastProgress = Date.now();
      if (m.kind === 'progress') {
        if (Date.now() - lastPrint > 2000) {
          lastPrint = Date.now();
          process.stderr.write(`${def.name}: ${m.done}/${options.cases} cases\r`);
        }
      } else {
        clearInterval(watchdog);
        resolvePromise(m.tally);
      }
    });
    worker.on('error', (err) => {
      clearInterval(watchdog);
      reject(err);
    });
  });
  process.stderr.write('\n');
  return { tally, seconds: (Date.now() - started) / 1000 };
}

export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The report every campaign prints: `name: value` lines, the commonest rejections, the first crashes. */
export function report(outcome: CampaignOutcome): string {
  const { tally, seconds } = outcome;
  if (tally === undefined) return `hangs: 1\nseconds: ${seconds.toFixed(1)}\n`;
  const lines = [
    `cases: ${tally.cases}`,
    `accepted: ${tally.decoded}`,
    `rejected_typed: ${tally.rejected}`,
    ...Object.entries(tally.byClass).map(([k, v]) => `rejected_${k}: ${v}`),
    `crashes: ${tally.crashes.length}`,
    `hangs: 0`,
    `seconds: ${seconds.toFixed(1)}`,
  ];
  const reasons = Object.entries(tally.reasons).sort((a, b) => b[1] - a[1]);
  lines.push('', `most frequent of ${reasons.length} kinds of typed rejection:`);
  for (const [reason, n] of reasons.slice(0, 15)) lines.push(`  ${String(n).padStart(6)}  ${reason}`);
  for (const c of tally.crashes.slice(0, 5)) lines.push('', `CRASH case ${c.index} (${c.target}; ${c.how}):`, c.error, `input: ${c.input.slice(0, 2000)}`);
  return lines.join('\n') + '\n';
}

/** A campaign's `main`: `--cases N` (100 000), `--seed S` (1), `--fixtures DIR`, `--case I` to replay one. */
export async function campaignMain<C>(def: CampaignDefinition<C>, args: readonly string[], defaultFixtures: string): Promise<boolean> {
  const cases = Number(option(args, '--cases') ?? 100_000);
  const seed = Number(option(args, '--seed') ?? 1);
  const fixtures = option(args, '--fixtures') ?? defaultFixtures;
  const one = option(args, '--case');
  if (one !== undefined) {
    const tally = newTally();
    def.runCase(def.load(fixtures), seed, Number(one), tally);
    def.finish?.();
    process.stdout.write(JSON.stringify(tally, null, 2) + '\n');
    return tally.crashes.length === 0;
  }
  process.stdout.write(`${def.name}: ${cases} cases, seed ${seed}\n`);
  const outcome = await runCampaign(def, { cases, seed, fixtures });
  process.stdout.write(report(outcome));
  return outcome.tally !== undefined && outcome.tally.crashes.length === 0;
}

