#!/usr/bin/env node
// Runs node's test runner over the compiled *.test.js files (helpers under dist/test are
// not tests). Extra arguments filter by path substring: `npm test -- pci acpi`.
//
// Files that need /dev/kvm (they call skipUnlessKvm; `paging: true` for a paging kernel) run
// where this machine's /dev/kvm can run them, and otherwise all together in one lab host
// (`hvmpt lab`, docs/lab.md), while the rest run here at the same time. HVMPT_KVM=lab sends
// them to the lab even where /dev/kvm works. The two TAP streams are printed as one: this
// machine's first, then the lab's, numbered on, with one summary of both.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { kvmRoute } from '../dist/src/cli/lab.js';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = walk('dist/test')
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

/** 'paging', 'kvm' or undefined: what a test file needs of /dev/kvm. */
function kvmNeed(file) {
  const text = readFileSync(file, 'utf8');
  if (!text.includes('skipUnlessKvm(')) return undefined;
  return /skipUnlessKvm\([^)]*paging: true/.test(text) ? 'paging' : 'kvm';
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

if (inLab.length === 0) {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...passThrough, ...here], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const started = Date.now();
process.stderr.write(`run-tests: ${labWhy}: ${inLab.length} test files run in a lab host: ${inLab.join(' ')}\n`);

const SUMMARY = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const totals = Object.fromEntries(SUMMARY.map((k) => [k, 0]));
let numbered = 0;

/**
 * One TAP stream's lines, printed without its header, plan and summary, its top-level tests
 * numbered on from the streams before; its summary goes into the totals.
 */
function tapStream() {
  let partial = '';
  // Top-level results seen, for a stream that ends before its summary (a lab host that stopped).
  const stream = { summarized: false, seen: { tests: 0, pass: 0, fail: 0, skipped: 0 }, line, push, end };
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
      stream.seen.tests++;
      if (top[1] === 'not ok') stream.seen.fail++;
      else if (/# SKIP\b/.test(top[2] ?? '')) stream.seen.skipped++;
      else stream.seen.pass++;
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

/** Runs a command whose stdout is a TAP stream; `held`: its stream waits for `release()`. */
function run(command, args, held, env = process.env) {
  const tap = tapStream();
  let queue = held ? [] : undefined;
  const done = new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => (queue !== undefined ? queue.push(chunk) : tap.push(chunk)));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  return {
    tap,
    done,
    /** Whether the held stream got as far as its runner's summary (the lab host did not stop first). */
    finished() {
      return /^# tests \d+$/m.test((queue ?? []).join(''));
    },
    release() {
      for (const chunk of queue ?? []) tap.push(chunk);
      queue = undefined;
    },
  };
}

const tapArgs = ['--test', '--test-reporter=tap', '--test-concurrency=2', ...passThrough];
process.stdout.write('TAP version 13\n');
// The lab boots while this machine's tests run; its stream is printed after theirs, once it is whole.
const runLab = () => run(process.execPath, [JSON.parse(readFileSync('package.json', 'utf8')).bin.hvmpt, 'lab', '--memory', '4G', '--cpus', '2', '--timeout', '3600', '--', process.execPath, ...tapArgs, ...inLab], true);
// The lab host itself may stop (its kernel has panicked under nested SVM in TCG, rarely): one
// fresh lab host runs the files again at once, beside this machine's tests; a second stop is
// reported as a failure below.
const labRun = (async () => {
  let l = runLab();
  let status = await l.done;
  if (!l.finished()) {
    process.stderr.write(`run-tests: the lab host stopped before its tests finished (its console is above); running them once more in a fresh lab host\n`);
    l = runLab();
    status = await l.done;
  }
  return { lab: l, labStatus: status };
})();
// HVMPT_KVM=lab chose where the files that need /dev/kvm run; the others run as on this machine.
const { HVMPT_KVM: _route, ...localEnv } = process.env;
const local = here.length > 0 ? run(process.execPath, [...tapArgs, ...here], false, localEnv) : undefined;
const localStatus = local === undefined ? 0 : await local.done;
local?.tap.end();
const { lab, labStatus } = await labRun;
lab.release();
lab.tap.end();
if (!lab.tap.summarized) {
  // The lab host stopped before its test runner's summary: what it reported counts, and so
  // does one failure for the lab itself, so the summary cannot pass.
  for (const k of ['tests', 'pass', 'fail', 'skipped']) totals[k] += lab.tap.seen[k];
  process.stdout.write(`not ok ${++numbered} - the lab host running ${inLab.join(' ')} stopped before they finished (see stderr)\n`);
  totals.tests++;
  totals.fail++;
}
process.stdout.write(`1..${numbered}\n`);
for (const k of SUMMARY) process.stdout.write(`# ${k} ${totals[k]}\n`);
process.stdout.write(`# duration_ms ${Date.now() - started}\n`);
process.exit(localStatus !== 0 || labStatus !== 0 || totals.fail > 0 ? 1 : 0);
