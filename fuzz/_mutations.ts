/**
 * The loop the single-threaded fuzz targets share: make a mutated input, run it, and require
 * that it ends in a value or one of the target's typed errors within a time bound. The first
 * input that does anything else stops the run with the seed and iteration to replay it.
 */
export interface MutationStats {
  readonly inputs: number;
  /** Inputs the target accepted. */
  readonly accepted: number;
  /** Inputs it refused with its typed error. */
  readonly rejected: number;
  readonly slowestMs: number;
}

export interface MutationTarget<I> {
  readonly iterations: number;
  readonly seed: number;
  /** The next mutated input (drawing on the target's own seeded generator). */
  make(): I;
  run(input: I): void;
  /** Whether an error is the target's typed refusal. */
  typed(err: unknown): boolean;
  /** How much of a bad input to print. */
  describe(input: I): string;
  readonly budgetMs: number;
}

export function runMutations<I>(t: MutationTarget<I>): MutationStats {
  let accepted = 0;
  let rejected = 0;
  let slowestMs = 0;
  for (let i = 0; i < t.iterations; i++) {
    const input = t.make();
    const started = performance.now();
    try {
      t.run(input);
      accepted++;
    } catch (err) {
      if (!t.typed(err)) throw new Error(`iteration ${i} (seed ${t.seed}) threw ${String(err)} for input:\n${t.describe(input)}`);
      rejected++;
    }
    const ms = performance.now() - started;
    if (ms > slowestMs) slowestMs = ms;
    if (ms > t.budgetMs) throw new Error(`iteration ${i} (seed ${t.seed}) took ${ms.toFixed(0)} ms`);
  }
  return { inputs: t.iterations, accepted, rejected, slowestMs };
}

/** The line edits the text targets share: one character replaced by `char()`, a line dropped, or another line repeated here. */
export function editLine(lines: string[], i: number, edit: 'char' | 'drop' | 'repeat', below: (n: number) => number, char: () => string): void {
  if (edit === 'drop') lines.splice(i, 1);
  else if (edit === 'repeat') lines.splice(i, 0, lines[below(lines.length)] ?? '');
  else {
    const l = lines[i] ?? '';
    if (l.length === 0) return;
    const j = below(l.length);
    lines[i] = l.slice(0, j) + char() + l.slice(j + 1);
  }
}
