/**
 * The few statistics the benchmarks print: the median of repeated timings, and how far a ratio
 * between two peers measured in paired rounds can be trusted when the rounds scatter (the nested
 * lab's do, by 10-20 % from one round to the next).
 */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('the median of no figures');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Student's t, two-sided 95 %, for 1-30 degrees of freedom. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

function t975(df: number): number {
  // Past 30 degrees of freedom 1.96 + 2.5/df is within 0.002 of the table's values.
  return T975[df - 1] ?? 1.96 + 2.5 / df;
}

export interface RatioInterval {
  /** The geometric mean of the rounds' ratios a/b. */
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
}

/**
 * The 95 % confidence interval of a/b from paired rounds (a[k] and b[k] measured in the same
 * round): a t interval on the rounds' log ratios, so a round twice as fast and one half as fast
 * weigh the same. It treats the rounds as independent draws; an interval holding 1 says the
 * rounds cannot tell the two peers apart.
 */
export function ratioInterval(a: readonly number[], b: readonly number[]): RatioInterval {
  if (a.length !== b.length) throw new RangeError(`paired rounds: ${a.length} figures against ${b.length}`);
  if (a.length < 2) throw new RangeError('an interval needs two rounds or more');
  const logs = a.map((x, k) => {
    const y = b[k]!;
    if (!(x > 0 && y > 0)) throw new RangeError(`round ${k + 1}: figures must be positive (${x}, ${y})`);
    return Math.log(x / y);
  });
  const n = logs.length;
  const mean = logs.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(logs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  const half = (t975(n - 1) * sd) / Math.sqrt(n);
  return { ratio: Math.exp(mean), low: Math.exp(mean - half), high: Math.exp(mean + half) };
}

/** `0.93-1.14`: an interval as the benchmarks print it. */
export function formatInterval(i: RatioInterval): string {
  return `${i.low.toFixed(2)}-${i.high.toFixed(2)}`;
}
