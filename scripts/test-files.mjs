#!/usr/bin/env node
// Runs test files for scripts/run-tests.mjs, here or inside a lab host: each file in its own
// `node --test`, two at a time, and each file's whole TAP printed in one piece when it ends,
// between `# test-file FILE` and `# test-file-end FILE STATUS [asleep]`; `asleep` when the file
// failed and said that a guest it booted fell asleep for good (GuestBootError, docs/lab.md,
// Limits), a failure of TCG's and not of the test's, which run-tests answers by running the
// file once more. A `# test-progress FILE` line goes out whenever one of its tests ends. The
// runner thus knows which files are done, and how recently a lab host made progress, when one
// stops or stalls: it runs only the files not done again, in a fresh lab host. `# test-alive`
// every 10 s says that the machine it runs on still runs at all.
//
// With --one-linux-guest (in a lab host) no two files that boot Linux guests run at once
// (scripts/test-needs.mjs, bootsLinux); another file may run beside one.
//
// Usage: node scripts/test-files.mjs LIMIT_MS [--one-linux-guest] [NODE_TEST_OPTION...] FILE...
import { spawnGroup } from './process-groups.mjs';
import { bootsLinux } from './test-needs.mjs';
import { ASLEEP_WORDS } from '../dist/src/host/guest/boot.js';

const CONCURRENCY = 2;
const [limitMs, ...rest] = process.argv.slice(2);
const oneLinuxGuest = rest.includes('--one-linux-guest');
const options = rest.filter((a) => a.startsWith('-') && a !== '--one-linux-guest');
const files = rest.filter((a) => !a.startsWith('-'));
if (!/^\d+$/.test(limitMs ?? '') || files.length === 0) {
  process.stderr.write('usage: test-files.mjs LIMIT_MS [--one-linux-guest] [NODE_TEST_OPTION...] FILE...\n');
  process.exit(2);
}

const LIMIT_MS = Number(limitMs);
/** How long past its limit a file may still run before it is killed: a minute, or the limit when shorter. */
const GRACE_MS = Math.min(60_000, LIMIT_MS);

const ENDED = /^\s*(not )?ok \d+ /;
let failed = false;

function runFile(file) {
  return new Promise((resolve) => {
    const args = ['--test', '--test-reporter=tap', `--test-timeout=${limitMs}`, '--test-force-exit', ...options, file];
    const child = spawnGroup(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let partial = '';
    // The words may fall across two chunks: the tail of the last one is kept with the next.
    let errTail = '';
    let asleep = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      const seen = errTail + chunk;
      asleep ||= seen.includes(ASLEEP_WORDS);
      errTail = seen.slice(-ASLEEP_WORDS.length);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      if (lines.some((l) => ENDED.test(l))) process.stdout.write(`# test-progress ${file}\n`);
    });
    // node's own --test-timeout needs the file's event loop; a file stuck past it (a test that
    // never yields, or a `node --test` parent that never ends: seen once, spinning after its
    // child had gone) is killed whole, and fails under its name.
    let overran = false;
    const hardLimit = setTimeout(() => {
      overran = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // It has gone already.
      }
    }, LIMIT_MS + GRACE_MS);
    child.on('close', (code, signal) => {
      clearTimeout(hardLimit);
      if (overran) text += `# test-files: ${file} ran past its limit of ${LIMIT_MS / 1000} s by ${GRACE_MS / 1000} s and was killed\n`;
      const status = overran ? 1 : code ?? (signal !== null ? 1 : 0);
      if (status !== 0) failed = true;
      const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
      const slept = status !== 0 && (asleep || text.includes(ASLEEP_WORDS)) ? ' asleep' : '';
      process.stdout.write(`# test-file ${file}\n${body}# test-file-end ${file} ${status}${slept}\n`);
      resolve();
    });
  });
}

// A line every ALIVE_MS says this machine still runs: in a lab host that wedged (its kernel's
// CPUs stuck in nested guests), nothing does, and run-tests replaces it without waiting for a test.
const ALIVE_MS = 10_000;
const alive = setInterval(() => process.stdout.write('# test-alive\n'), ALIVE_MS);
const queue = [...files];
const linux = new Set(oneLinuxGuest ? files.filter(bootsLinux) : []);
/** The Linux-booting file running now, if any: until it ends, a worker takes only other files. */
let linuxRunning;
/** The next file this worker may start: the first in order, skipping Linux files while one runs. */
function take() {
  const i = queue.findIndex((f) => !linux.has(f) || linuxRunning === undefined);
  return i < 0 ? undefined : queue.splice(i, 1)[0];
}
async function worker() {
  while (queue.length > 0) {
    const f = take();
    if (f === undefined) {
      await linuxRunning;
      continue;
    }
    const run = runFile(f);
    if (linux.has(f)) linuxRunning = run.then(() => (linuxRunning = undefined));
    await run;
  }
}
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
clearInterval(alive);
process.exit(failed ? 1 : 0);
