#!/usr/bin/env node
// Runs node's test runner over the compiled *.test.js files (helpers under dist/test are
// not tests). Extra arguments filter by path substring: `npm test -- pci acpi`.
//
// Files that need /dev/kvm (they call skipUnlessKvm; `paging: true` for a paging kernel) run
// where this machine's /dev/kvm can run them, and otherwise together in a lab host (`hvmpt
// lab`, docs/lab.md; a fresh one for the files not done if it stalls), while the rest run here
// at the same time. HVMPT_KVM=lab sends them to the lab even where /dev/kvm works. The TAP is
// printed as one stream, file by file (scripts/test-files.mjs): this machine's as each ends, then
// the lab's, numbered on, with one summary of all.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { kvmRoute } from '../dist/src/cli/lab.js';
import { spawnGroup } from './process-groups.mjs';
import { anotherRun, runAgainWords } from './retry-policy.mjs';
import { kvmNeed } from './test-needs.mjs';
import { ASLEEP_WORDS } from '../dist/src/host/guest/boot.js';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

// A file that hangs is stopped and reported under its name rather than holding the run until
// CI's limit: a lab file runs in minutes, a file that boots lab hosts of its own in under half
// an hour on a loaded 2-core machine (scripts/test-files.mjs also ends a file whose tests are
// done but a handle stays open).
const FILE_LIMIT_MS = { here: 45 * 60_000, lab: 20 * 60_000 };

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = walk('dist/test')
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' }).status === 0;
const inLab = [];
let labWhy;
for (const f of files) {
  const need = kvmNeed(f);
  if (need === undefined || !haveQemu) continue;
  const route = kvmRoute(need === 'paging');
  if (route.lab) {
    inLab.push(f);
    labWhy ??= route.why;
  }
}
const here = files.filter((f) => !inLab.includes(f));

const started = Date.now();
if (inLab.length > 0) process.stderr.write(`run-tests: ${labWhy}: ${inLab.length} test files run in a lab host: ${inLab.join(' ')}\n`);

const SUMMARY = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const totals = Object.fromEntries(SUMMARY.map((k) => [k, 0]));
let numbered = 0;

/**
 * One TAP stream's lines, printed without its header, plan and summary, its top-level tests
 * numbered on from the streams before; its summary goes into the totals.
 */
function tapStream() {
  let partial = '';
  const stream = { summarized: false, push, end };
  function line(text) {
    const sum = /^# (\w+) (\d+(?:\.\d+)?)$/.exec(text);
    if (sum !== null && (SUMMARY.includes(sum[1]) || sum[1] === 'duration_ms')) {
      if (SUMMARY.includes(sum[1])) totals[sum[1]] += Number(sum[2]);
      stream.summarized = true;
      return;
    }
    if (text === 'TAP version 13' || /^1\.\.\d+$/.test(text)) return;
    const top = /^(not ok|ok) \d+( .*)?$/.exec(text);
    if (top !== null) {
      text = `${top[1]} ${++numbered}${top[2] ?? ''}`;
    }
    process.stdout.write(text + '\n');
  }
  function push(chunk) {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const l of lines) line(l);
  }
  function end() {
    if (partial !== '') line(partial);
    partial = '';
  }
  return stream;
}

/**
 * Runs `files` through scripts/test-files.mjs (`inLab`: inside a fresh lab host) and resolves with
 * each ended file's TAP and status. A lab host that said nothing for WEDGED_MS, or in which no
 * test ended for STALL_MS, while its QEMU ran is stopped; one whose QEMU sleeps the guest harness
 * stops itself (bootGuest, ASLEEP_MS).
 */
function runFiles(files, { inLab: labHost = false, timeoutS = 0, env = process.env, onBlock = () => {} } = {}) {
  const blocks = new Map();
  let open;
  let partial = '';
  let stalled;
  const runner = ['scripts/test-files.mjs', String(labHost ? FILE_LIMIT_MS.lab : FILE_LIMIT_MS.here), ...(labHost ? ['--one-linux-guest'] : []), ...passThrough, ...files];
  const args = labHost ? [JSON.parse(readFileSync('package.json', 'utf8')).bin.hvmpt, 'lab', '--memory', '4G', '--cpus', '2', '--timeout', String(timeoutS), '--', process.execPath, ...runner] : runner;
  const child = spawnGroup(process.execPath, args, { stdio: ['ignore', 'pipe', labHost ? 'pipe' : 'inherit'], env });
  // hvmpt lab's own failure, a lab host fallen asleep among them, is passed on and kept for the reason.
  let said = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk) => {
    process.stderr.write(chunk);
    said = (said + chunk).slice(-16384);
  });
  // The clocks start once QEMU runs: the lab host may wait for a guest slot before it boots.
  let lastProgress;
  let lastAlive;
  const line = (text) => {
    let m;
    if (text === '# test-alive') lastAlive = Date.now();
    else if (/^# test-progress /.test(text)) lastProgress = Date.now();
    else if ((m = /^# test-file (\S+)$/.exec(text)) !== null) open = { file: m[1], lines: [] };
    else if ((m = /^# test-file-end (\S+) (\d+)( asleep)?$/.exec(text)) !== null && open?.file === m[1]) {
      blocks.set(m[1], { text: open.lines.join('\n') + '\n', status: Number(m[2]), asleep: m[3] !== undefined });
      onBlock(m[1], blocks.get(m[1]));
      open = undefined;
      lastProgress = Date.now();
    } else open?.lines.push(text);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    lines.forEach(line);
  });
  const stop = (why) => {
    stalled = why;
    child.kill('SIGTERM');
    // hvmpt lab stops its QEMU on SIGTERM; a lab host that does not answer is killed, its group whole.
    setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // It has gone already.
      }
    }, 30_000).unref();
  };
  const watch = labHost
    ? setInterval(() => {
        const now = Date.now();
        if (stalled !== undefined || !qemuInGroup(child.pid)) return;
        lastProgress ??= now;
        if (lastAlive !== undefined && now - lastAlive >= WEDGED_MS) stop(`wedged: it said nothing for ${WEDGED_MS / 60_000} minutes while its QEMU ran, not even test-files' heartbeat`);
        else if (now - lastProgress >= STALL_MS) stop(`spinning: no test ended for ${STALL_MS / 60_000} minutes while its QEMU ran`);
      }, 10_000)
    : undefined;
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(watch);
      // Why hvmpt lab ended early, from what it said: asleep, or the lab kernel's panic line.
      const panic = /Kernel panic - not syncing: [^\n]*/.exec(said)?.[0];
      const why = said.includes(ASLEEP_WORDS) ? 'asleep: its QEMU used no CPU, the guest harness stopped it' : panic !== undefined ? `its kernel panicked: ${panic}` : undefined;
      resolve({ blocks, stalled: stalled ?? why, status: code ?? (signal ? 1 : 0) });
    });
  });
}

process.stdout.write('TAP version 13\n');

// The lab's files run in a lab host; scripts/test-files.mjs prints each file's TAP whole once it
// ends, so what a lab host finished is known when it stops. A lab host has been seen to stop
// making progress for good (docs/lab.md, Limits): asleep (QEMU uses no CPU: the guest harness
// ends it) or spinning (no test ends: runFiles stops it). A fresh one runs the files not done; a
// file that ended counts as it ended, failures included. All lab hosts get LAB_BUDGET_MS together.
const LAB_BUDGET_MS = 55 * 60_000;
const LAB_HOSTS = 5;
// A test in the lab ends every few minutes, the Linux guests' included (their test boots Linux
// on hvmpt inside the lab); in CI's runs so far the longest took under ten.
const STALL_MS = 15 * 60_000;
// scripts/test-files.mjs says it is alive every 10 s; a lab host that says nothing for this long
// has wedged as a whole (both of its CPUs stuck in nested guests, docs/lab.md, Limits).
const WEDGED_MS = 3 * 60_000;

/** Whether a QEMU runs in process group `pgid` (a lab host's: hvmpt lab and the QEMU it started). */
function qemuInGroup(pgid) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name may hold spaces and parentheses; the fields after its last ')' do not.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    if (comm.startsWith('qemu-system') && Number(stat.slice(close + 2).split(' ')[2]) === pgid) return true;
  }
  return false;
}

/** What is said in the TAP as well as on stderr, so a pass after a rerun is never silent. */
const notes = [];
const note = (text) => {
  process.stderr.write(`run-tests: ${text}\n`);
  notes.push(text);
};
/**
 * A file that boots guests (a lab host, or a TCG guest of its own) and failed runs once more:
 * lab hosts and TCG guests fail now and then for reasons of their own (docs/lab.md, Limits:
 * panics in the lab kernel, a guest fallen asleep), and one such failure should not decide a
 * run. A failure that comes again stands; either way the TAP says what happened the first time.
 * The one exception is a guest fallen asleep again: the harness saw its QEMU use no CPU at all
 * (the lab kernel's lost timer, not the code under test, which a guest that is not running
 * cannot exercise), and on a loaded machine that has come twice in a row. Such a file has one
 * run more, three in all (scripts/retry-policy.mjs); any other failure in it stands.
 */
const BOOTS_GUEST = /host\/guest\/|'lab'|"lab"|qemu-system/;
const bootsGuest = (f) => inLab.includes(f) || BOOTS_GUEST.test(readFileSync(f, 'utf8'));
const retryable = (f, b) => b.status !== 0 && (b.asleep || bootsGuest(f));
const runsAgain = (f, b, runs) => retryable(f, b) && anotherRun(b.asleep, runs);
/** Why a file runs again: its guest fell asleep, or the names of the tests that failed. */
function againNote(f, b, where, runs = 1) {
  const failed = b.text
    .split('\n')
    .filter((l) => /^not ok \d+ /.test(l) && !/ # (TODO|SKIP)\b/i.test(l))
    .map((l) => l.replace(/^not ok \d+ - /, ''));
  const why = b.asleep
    ? 'a guest it booted fell asleep for good (its QEMU under TCG used no CPU; docs/lab.md, Limits)'
    : `it failed (${failed.length > 0 ? failed.join('; ') : `status ${b.status}`})`;
  // Each run's whole TAP but the last goes to stderr, for the record: only the last is counted.
  process.stderr.write(`run-tests: run ${runs} of ${f}:\n${b.text}`);
  return `${f} ran ${runAgainWords(runs)}${where}: ${why}`;
}

const labRun = (async () => {
  const blocks = new Map();
  for (let host = 1; host <= LAB_HOSTS; host++) {
    // A file that failed counts as not done once more (twice where its guest fell asleep twice: scripts/retry-policy.mjs).
    const left = inLab.filter((f) => !blocks.has(f) || runsAgain(f, blocks.get(f), blocks.get(f).runs));
    const budgetMs = LAB_BUDGET_MS - (Date.now() - started);
    if (left.length === 0 || budgetMs < 5 * 60_000) break;
    if (host > 1) process.stderr.write(`run-tests: running the ${left.length} files not done in lab host ${host}: ${left.join(' ')}\n`);
    for (const f of left.filter((f) => blocks.has(f))) note(againNote(f, blocks.get(f), ` in lab host ${host}`, blocks.get(f).runs));
    const r = await runFiles(left, { inLab: true, timeoutS: Math.floor(budgetMs / 1000) });
    for (const [f, b] of r.blocks) blocks.set(f, { ...b, runs: (blocks.get(f)?.runs ?? 0) + 1 });
    const missing = left.filter((f) => !r.blocks.has(f));
    if (missing.length > 0) note(`lab host ${host} stopped with ${missing.length} of its ${left.length} files not done (${r.stalled ?? `it exited with status ${r.status}`}): ${missing.join(' ')}`);
  }
  return blocks;
})();
// HVMPT_KVM=lab chose where the files that need /dev/kvm run; the others run as on this machine.
const { HVMPT_KVM: _route, ...localEnv } = process.env;
let failed = false;
/** A failure of the runner's own, in the TAP and the totals. */
function runnerFailure(text) {
  process.stdout.write(`not ok ${++numbered} - ${text}\n`);
  totals.tests++;
  totals.fail++;
  failed = true;
}
/** One ended file's TAP, numbered on. */
function printBlock(f, b) {
  const tap = tapStream();
  tap.push(b.text);
  tap.end();
  if (b.status !== 0) failed = true;
  if (!tap.summarized) runnerFailure(`${f}: its test runner ended with status ${b.status} before its summary`);
}
// This machine's files are printed as each ends (one that runs again once it has); the lab's
// after them, since their numbers follow.
const localRun = (async () => {
  const print = (f, b) => void (retryable(f, b) ? undefined : printBlock(f, b));
  const blocks = here.length > 0 ? (await runFiles(here, { env: localEnv, onBlock: print })).blocks : new Map();
  let again = here.filter((f) => blocks.has(f) && retryable(f, blocks.get(f)));
  for (let runs = 1; again.length > 0; runs++) {
    again.forEach((f) => note(againNote(f, blocks.get(f), '', runs)));
    const rerun = (await runFiles(again, { env: localEnv })).blocks;
    for (const f of again) blocks.set(f, rerun.get(f));
    const next = again.filter((f) => rerun.has(f) && runsAgain(f, rerun.get(f), runs + 1));
    for (const f of again) if (rerun.has(f) && !next.includes(f)) printBlock(f, rerun.get(f));
    again = next;
  }
  for (const f of here) if (blocks.get(f) === undefined) runnerFailure(`${f}: its test runner did not end it (see stderr)`);
})();
const [, labBlocks] = await Promise.all([localRun, labRun]);
for (const f of inLab) {
  const b = labBlocks.get(f);
  if (b === undefined) runnerFailure(`${f}: no lab host finished it (see the lines above and stderr)`);
  else printBlock(f, b);
}
for (const n of notes) process.stdout.write(`# ${n}\n`);
process.stdout.write(`1..${numbered}\n`);
for (const k of SUMMARY) process.stdout.write(`# ${k} ${totals[k]}\n`);
process.stdout.write(`# duration_ms ${Date.now() - started}\n`);
process.exit(failed || totals.fail > 0 || totals.cancelled > 0 ? 1 : 0);
