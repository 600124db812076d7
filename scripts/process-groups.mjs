// Children spawned each in a process group of its own, so that a signal that stops this script
// reaches what they started too (QEMU, hvmpt lab, a test file's guests) and nothing is left
// running. Used by scripts/run-tests.mjs and scripts/test-files.mjs.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const running = new Set();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    for (const child of running) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group has gone already.
      }
    }
    process.exit(128 + constants.signals[signal]);
  });
}

/** spawn(), in a new process group that a signal to this process is passed on to. */
export function spawnGroup(command, args, options) {
  const child = spawn(command, args, { ...options, detached: true });
  running.add(child);
  child.once('close', () => running.delete(child));
  return child;
}
