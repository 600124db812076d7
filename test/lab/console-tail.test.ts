import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consoleTail, howQemuEnded } from '../../src/host/lab/lab.js';

const trace = (n: number): string[] => Array.from({ length: n }, (_, i) => `[  171.777019]  ? frame_${i}+0x10/0x20`);

test('a lab console cut inside a kernel report keeps what the report is about', () => {
  const head = ['[  171.700000] BUG: TASK stack guard page was hit at 00000000deadbeef (stack is 000000001 .. 000000002)', '[  171.700001] stack guard page: 0000 [#1] PREEMPT SMP NOPTI', '[  171.700002] CPU: 1 PID: 812 Comm: node Not tainted 6.1.0-57-amd64 #1'];
  const text = ['@@hvmpt-lab-up', ...head, ...trace(40), '[  171.777019]  </TASK>'].join('\n');
  const out = consoleTail(text).split('\n');
  assert.deepEqual(out.slice(0, 3), head, 'the report\'s first lines come first');
  // Four lines of it at most, then the tail.
  assert.equal(out[4], '...');
  assert.equal(out.length, 4 + 1 + 25);
  assert.equal(out.at(-1), '[  171.777019]  </TASK>');
  // A short console, or one whose tail holds the report's start, is its tail as it is.
  assert.equal(consoleTail('a\nb\n'), 'a\nb');
  const whole = [...head, ...trace(10)].join('\n');
  assert.equal(consoleTail(whole), whole);
  const quiet = ['@@hvmpt-lab-up', ...trace(40)].join('\n');
  assert.equal(consoleTail(quiet), trace(40).slice(-25).join('\n'));
});

test('a lab host whose QEMU ended without a word is said to have reset itself only when QEMU exited 0', () => {
  // The lab runs QEMU with -no-reboot: a reboot or triple fault of the lab kernel ends QEMU with 0.
  assert.match(howQemuEnded('exit 0'), /^QEMU exit 0: the lab host reset itself, a reboot or a triple fault/);
  assert.equal(howQemuEnded('exit 1'), 'QEMU exit 1');
  assert.equal(howQemuEnded('SIGKILL'), 'QEMU SIGKILL');
  assert.equal(howQemuEnded(''), 'QEMU ended');
});
