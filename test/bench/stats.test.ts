/**
 * The benchmarks' statistics (bench/stats.ts): the median, and the 95 % interval of a ratio
 * from paired rounds, checked against values worked out by hand from Student's t table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatInterval, median, ratioInterval } from '../../bench/stats.js';

test('median: the middle figure, or the mean of the two middle ones; none is an error', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.throws(() => median([]), RangeError);
});

test('ratioInterval: a t interval on the rounds\' log ratios', () => {
  // Log ratios 0.1, -0.1, 0.2, 0: mean 0.05, sd sqrt(0.05/3) = 0.1291, t(3) = 3.182,
  // half-width 3.182 * 0.1291 / 2 = 0.2054: exp(-0.1554) = 0.856, exp(0.2554) = 1.291.
  const b = [100, 200, 300, 400];
  const a = [100 * Math.exp(0.1), 200 * Math.exp(-0.1), 300 * Math.exp(0.2), 400];
  const i = ratioInterval(a, b);
  assert.ok(Math.abs(i.ratio - Math.exp(0.05)) < 1e-9, `${i.ratio}`);
  assert.ok(Math.abs(i.low - 0.856) < 0.001, `${i.low}`);
  assert.ok(Math.abs(i.high - 1.291) < 0.001, `${i.high}`);
  assert.equal(formatInterval(i), '0.86-1.29');
  // Rounds that agree exactly leave no doubt.
  assert.deepEqual(ratioInterval([2, 4, 6], [1, 2, 3]), { ratio: 2, low: 2, high: 2 });
  // Two rounds: t(1) = 12.706, so wide.
  const two = ratioInterval([110, 90], [100, 100]);
  assert.ok(two.low < 0.5 && two.high > 2, formatInterval(two));
});

test('ratioInterval refuses what it cannot pair', () => {
  assert.throws(() => ratioInterval([1, 2], [1]), /paired rounds: 2 figures against 1/);
  assert.throws(() => ratioInterval([1], [1]), /two rounds or more/);
  assert.throws(() => ratioInterval([1, 0], [1, 1]), /round 2: figures must be positive/);
});
