/**
 * Host facts with a Linux guest on hvmpt, in one lab host (hvmpt lab --iommu intel, with a
 * multi-function edu, an e1000e behind a pcie-root-port, and an edu and an nvme behind a
 * conventional pci-bridge):
 * - P2V closes the loop: the lab host collects itself, `hvmpt plan --from` its archive with
 *   `--p2v`, `hvmpt bind` gives the planned functions to vfio-pci, and `hvmpt run` boots the
 *   plan (only a probe boot added) there; the probe guest's sysfs shows each passed function
 *   at its planned place, with the lab host's IDs, bound to its own Linux driver.
 * - The twin: every whole-machine fixture and the lab's own archive, `hvmpt plan --twin`, run
 *   with the probe guest; its sysfs config space, dumped back in `lspci -xxxx` form, decodes
 *   under `lspci -vvv -F` to the source machine's functions at the same places in the tree
 *   (what firmware and drivers do not program: IDs, class, subsystem, capabilities), less the
 *   differences the plan documents.
 * Everything runs inside the lab: no device of this machine is touched.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { readFactsTar } from '../../src/host/facts/archive.js';
import { readSnapshot } from '../../src/hw/facts/snapshot.js';
import { fixture, REPO_ROOT } from '../helpers/paths.js';
import { haveCommand } from '../helpers/require.js';
import { labAccel } from '../../src/cli/lab.js';
import { runLab } from '../../src/host/lab/index.js';
import { compareGuestTwin, GUEST_CONFIG_SCRIPT, twinHidden, twinMoves, withoutKernelLines } from '../helpers/twin-compare.js';
import { labEnv } from '../lab/lab-env.js';

const MINUTES = 60_000;
/** Whole machines among the pciutils test dumps (SOURCES.md), as in twin.test.ts. */
const MACHINES = ['tree-asus-p6t6', 'tree-fujitsu-p8010', 'PCI-X-bridges-and-domains'];
const GUEST_MEMORY = '256M';
/** Guest-side drivers for what the lab host can spare (uio_pci_generic takes edu by new_id). */
const GUEST_MODULES = ['uio_pci_generic', 'e1000e', 'e1000', 'nvme', 'ahci', 'i2c_i801'];

/** The probe guest of the P2V run: every function with its place in the tree, IDs and driver. */
const P2V_SCRIPT =
  'echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id; sleep 2; ' +
  `section functions sh -c 'for d in /sys/bus/pci/devices/*; do p=$(readlink -f $d); r=$(readlink $d/driver); ` +
  `echo "\${d##*/} $(cat $d/vendor):$(cat $d/device) driver=\${r##*/} path=\${p#/sys/devices/pci0000:00/}"; done'`;

/**
 * One guest run's limit. The lab's runs take minutes each; a nested guest that stops making
 * progress (docs/lab.md, Limits) is ended here and tried once more, instead of holding the lab
 * until the file's limit with every later run not done.
 */
const RUN_TIMEOUT_S = 900;

/** Sets machine.boot (and the timeout, and with a third argument the vCPUs) of a plan hvmpt wrote, keeping everything else as it is. */
const SET_BOOT = `
const RUN_TIMEOUT_S = ${RUN_TIMEOUT_S};
import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from '${join(REPO_ROOT, 'node_modules', 'yaml', 'dist', 'index.js')}';
const [file, bootFile, cpus] = process.argv.slice(2);
const doc = parseDocument(readFileSync(file, 'utf8'));
doc.setIn(['machine', 'boot'], doc.createNode(JSON.parse(readFileSync(bootFile, 'utf8'))));
doc.setIn(['machine', 'timeout'], RUN_TIMEOUT_S);
if (cpus !== undefined) doc.setIn(['machine', 'cpus'], Number(cpus));
writeFileSync(file, doc.toString());
const pt = doc.toJS().pci?.passthrough ?? [];
console.log(pt.map((e) => e.host).join(' '));
`;

/** One section of the lab script's output: what it printed, its status, how long it took. */
interface Section {
  readonly text: string;
  readonly rc: number;
  readonly seconds: number;
}

const SECTION = (mark: string): RegExp => new RegExp(`^@@${mark}-begin (\\S+)\\n([\\s\\S]*?)^@@${mark}-end \\1 rc=(\\d+) s=(\\d+)$`, 'gm');

/**
 * `@@lg-begin NAME` … `@@lg-end NAME rc=N s=S` blocks of the lab script's output, each name with
 * all its tries in order (a guest run that failed runs once more).
 */
function blocks(out: string, mark: string): Map<string, Section[]> {
  const m = new Map<string, Section[]>();
  for (const s of out.matchAll(SECTION(mark))) m.set(s[1]!, [...(m.get(s[1]!) ?? []), { text: s[2]!, rc: Number(s[3]), seconds: Number(s[4]) }]);
  return m;
}

interface LabOutcome {
  readonly status: number | null;
  /** Why the lab ended without the script's status (its deadline, a lab host that stopped). */
  readonly error: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly sections: Map<string, Section[]>;
}

/**
 * When the lab is stopped, whatever it is doing: before test-files' limit for this file
 * (FILE_LIMIT_MS.here in scripts/run-tests.mjs, 45 minutes from the file's start), so that the
 * tests whose sections ran still report, and the others say what ran and for how long. The
 * lab's own --timeout cannot keep that: it counts from the lab host's start, after the wait for
 * a guest slot.
 */
const DEADLINE_MS = Date.now() + 41 * MINUTES;

let work = '';
let outcome: LabOutcome | undefined;
let missing: string | undefined;

const twins = [...MACHINES.map((m) => ({ name: m, source: fixture('pci', 'pciutils-tests', m) })), { name: 'lab', source: '' }];

before(async () => {
  missing = ['qemu-system-x86_64', 'lspci', 'busybox'].find((c) => !haveCommand(c));
  if (missing !== undefined) return;
  work = mkdtempSync(join(tmpdir(), 'hvmpt-lab-guests-'));
  writeFileSync(join(work, 'nvme.img'), new Uint8Array(1 << 20));
  writeFileSync(join(work, 'set-boot.mjs'), SET_BOOT);
  const boot = (script: string, modules: readonly string[] = []): string => JSON.stringify({ kind: 'probe', report: false, modules, script });
  writeFileSync(join(work, 'boot-twin.json'), boot(GUEST_CONFIG_SCRIPT));
  writeFileSync(join(work, 'boot-p2v.json'), boot(P2V_SCRIPT, GUEST_MODULES));
  const H = `node ${join(REPO_ROOT, 'dist/hvmpt.mjs')}`;
  // The lab's twin keeps its plan's two vCPUs in the plan test below but boots with one:
  // two-vCPU Linux guests nested under TCG have triple-faulted now and then, this twin among
  // them (docs/host-facts.md, Limits); what the twin is checked for is its PCI tree.
  const twinRun = (tw: (typeof twins)[number]): string => `
sec plan-${tw.name} ${H} plan --from ${tw.source === '' ? 'lab.tar' : tw.source} --twin --memory ${GUEST_MEMORY} --out twin-${tw.name}.yaml
sec plan-cpus-${tw.name} grep -E '^  cpus: ' twin-${tw.name}.yaml
node set-boot.mjs twin-${tw.name}.yaml boot-twin.json ${tw.source === '' ? '1' : ''} >/dev/null
guest run-${tw.name} ${H} run twin-${tw.name}.yaml`;
  const script = `
set -u
cd ${work}
sec() { n=$1; shift; t=$(date +%s); echo "@@lg-begin $n"; "$@" 2>&1; rc=$?; echo "@@lg-end $n rc=$rc s=$(( $(date +%s) - t ))"; return $rc; }
# A guest run that fails runs once more: nested guests under TCG fail now and then for reasons of
# their own (docs/lab.md, Limits); a failure that comes again stands, and the first try is reported.
guest() { sec "$@" || sec "$@"; }
sec collect ${H} collect --out lab.tar
sec p2v-plan ${H} plan --from lab.tar --p2v --memory ${GUEST_MEMORY} --out p2v.yaml
hosts=$(node set-boot.mjs p2v.yaml boot-p2v.json)
sec p2v-yaml cat p2v.yaml
sec p2v-host sh -c 'for h in ${'$'}{0}; do r=$(readlink /sys/bus/pci/devices/$h/driver); echo "$h $(cat /sys/bus/pci/devices/$h/vendor):$(cat /sys/bus/pci/devices/$h/device) driver=\${r##*/}"; done' "$hosts"
sec p2v-bind ${H} bind $hosts
# One guest at a time: two nested Linux guests side by side crashed lab hosts (docs/lab.md, Limits).
guest p2v-run ${H} run p2v.yaml
${twins.map(twinRun).join('\n')}
`;
  let stdout = '';
  let stderr = '';
  // Each section's end is said as it happens: a lab that is stopped still shows where its time went.
  let said = 0;
  const progress = (): void => {
    // Whole lines only: a chunk may end inside one.
    const upTo = stdout.lastIndexOf('\n') + 1;
    for (const m of stdout.slice(said, upTo).matchAll(/^@@lg-end (\S+) rc=(\d+) s=(\d+)$/gm)) process.stderr.write(`lab-guests: ${m[1]} ended rc=${m[2]} after ${m[3]} s\n`);
    said = Math.max(said, upTo);
  };
  let status: number | null = null;
  let error: string | undefined;
  try {
    const run = await runLab({
      command: [script],
      accel: labAccel(),
      iommu: 'intel',
      cpus: 2,
      memory: '3G',
      devices: [
        'edu,addr=0x13.0,multifunction=on', 'edu,addr=0x13.1',
        'pcie-root-port,id=rp1,addr=0x10', 'e1000e,bus=rp1',
        'pci-bridge,id=br,addr=0x12', 'edu,bus=br', `nvme:${join(work, 'nvme.img')},bus=br`,
      ],
      // The plans, their files and the archive come back to this machine for the comparisons.
      writable: [work],
      cwd: work,
      env: labEnv(),
      // The file takes 15 to 20 minutes beside the other labs here (one twin dumps 35 functions),
      // and has taken longer on a loaded CI machine. runLab counts the wait for a machine-wide
      // guest slot as boot time: other labs may hold both.
      deadlineMs: DEADLINE_MS,
      bootTimeoutS: 3600,
      stdout: (b) => {
        stdout += Buffer.from(b).toString('utf8');
        progress();
      },
      stderr: (b) => void (stderr += Buffer.from(b).toString('utf8')),
      log: (line) => void (stderr += `hvmpt lab: ${line}\n`),
    });
    status = run.status;
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  outcome = { status, error, stdout, stderr, sections: blocks(stdout, 'lg') };
  // Kept for a look after the run: the lab's whole output.
  mkdirSync(join(REPO_ROOT, '.cache', 'facts'), { recursive: true });
  writeFileSync(join(REPO_ROOT, '.cache', 'facts', 'lab-guests.log'), `${stdout}\n---- stderr\n${stderr}${error === undefined ? '' : `\n---- error\n${error}`}`);
});

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

function lab(t: TestContext): LabOutcome | undefined {
  if (missing !== undefined) {
    const line = `SKIPPED (no ${missing}; run scripts/setup.sh): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return undefined;
  }
  return outcome!;
}

/** What the lab ran, each section with its status and time: for a failure's message. */
const ran = (o: LabOutcome): string =>
  [...o.sections].map(([name, tries]) => `${name}: ${tries.map((x) => `rc=${x.rc} in ${x.seconds} s`).join(', then ')}`).join('\n');

/**
 * A section's last try. A guest run tried twice says so in the TAP, with the first try's end,
 * so a pass after a retry is never silent.
 */
function section(o: LabOutcome, name: string, t?: TestContext): { text: string; rc: number } {
  const tries = o.sections.get(name);
  assert.ok(
    tries,
    `the lab ran ${name}; status ${o.status}${o.error === undefined ? '' : `, ${o.error}`}\nwhat ran:\n${ran(o)}\nstderr:\n${o.stderr.slice(-3000)}\nstdout:\n${o.stdout.slice(-3000)}`,
  );
  if (tries.length > 1 && t !== undefined) {
    const first = tries[0]!;
    t.diagnostic(`${name} ran once more: its first try ended rc=${first.rc} after ${first.seconds} s with:\n${first.text.trimEnd().split('\n').slice(-15).join('\n')}`);
  }
  return tries[tries.length - 1]!;
}

/** A harness section the probe guest printed, from a run's output. */
function guestSection(runText: string, name: string): string {
  // The guest's serial console ends its lines with CR LF.
  const m = new RegExp(`^@@hvmpt-begin ${name}\\n([\\s\\S]*?)^@@hvmpt-end ${name} rc=(\\d+)$`, 'm').exec(runText.replace(/\r\n/g, '\n'));
  assert.ok(m, `the guest printed ${name}:\n${runText.slice(-4000)}`);
  return withoutKernelLines(m[1]!);
}

/** A sysfs device path below pci0000:00 as slots: `0000:00:12.0/0000:01:01.0` -> `12.0/01.0`. */
const slotsOf = (path: string): string => path.split('/').map((p) => p.replace(/^[0-9a-f]{4}:[0-9a-f]{2}:/, '')).join('/');

/** The P2V plan the lab host wrote for itself, and the lab host's own IDs of the functions it passes. */
function p2vPlan(o: LabOutcome): { entries: Array<{ host: string; at: string }>; ids: Map<string, string>; cpus: number | undefined } {
  assert.equal(section(o, 'collect').rc, 0, section(o, 'collect').text);
  assert.equal(section(o, 'p2v-plan').rc, 0, section(o, 'p2v-plan').text);
  const plan = parseYaml(section(o, 'p2v-yaml').text) as { pci?: { passthrough?: Array<{ host: string; at: string }> }; machine?: { cpus?: number } };
  const ids = new Map(
    section(o, 'p2v-host')
      .text.trim()
      .split('\n')
      .map((l) => l.trim().split(' '))
      .map(([bdf, id]) => [bdf!, id!.replace(/0x/g, '')]),
  );
  return { entries: plan.pci?.passthrough ?? [], ids, cpus: plan.machine?.cpus };
}


test('P2V of the lab host, in the lab host: its own collection gives a plan passing everything it can spare, with its two CPUs, and hvmpt bind takes them all', { timeout: 120 * MINUTES }, (t) => {
  const o = lab(t);
  if (o === undefined) return;
  const { ids, cpus } = p2vPlan(o);
  // The lab host's MADT lists its two CPUs (APIC IDs 0 and 1): the guest gets two vCPUs, and the table holds true.
  assert.equal(cpus, 2);
  // What QEMU was given (three edu, an e1000e and its hub peer, an nvme) and the lab host does not use: all of it passed.
  const passedIds = [...ids.values()].sort();
  for (const want of ['1234:11e8', '1234:11e8', '1234:11e8', '8086:10d3', '8086:10d3', '1b36:0010']) {
    const i = passedIds.indexOf(want);
    assert.ok(i >= 0, `the P2V plan passes every ${want} the lab was given: ${[...ids].join(', ')}`);
    passedIds.splice(i, 1);
  }
  assert.equal(section(o, 'p2v-bind').rc, 0, section(o, 'p2v-bind').text);
});

test('P2V closes the loop: the lab host\'s own P2V plan runs there, its devices passed through at the planned places with their drivers bound in the guest', { timeout: 120 * MINUTES }, (t) => {
  const o = lab(t);
  if (o === undefined) return;
  const { entries, ids } = p2vPlan(o);
  const runOut = section(o, 'p2v-run', t);
  assert.equal(runOut.rc, 0, runOut.text.slice(-4000));
  const guest = new Map(
    guestSection(runOut.text, 'functions')
      .trim()
      .split('\n')
      .map((l) => {
        const [bdf, id, driver, path] = l.trim().split(' ');
        return [slotsOf(path!.replace(/^path=/, '')), { bdf: bdf!, ids: id!.replace(/0x/g, ''), driver: driver!.replace(/^driver=/, '') }] as const;
      }),
  );
  for (const e of entries) {
    // `00:13.1` on the root bus, `0000:00:12.0/01.0` behind a captured bridge.
    const at = e.at.includes('/') ? `${e.at.split('/')[0]!.replace(/^([0-9a-f]{4}:)?[0-9a-f]{2}:/, '')}/${e.at.split('/')[1]}` : e.at.replace(/^([0-9a-f]{4}:)?[0-9a-f]{2}:/, '');
    const g = guest.get(at);
    assert.ok(g, `${e.host} is at ${e.at} in the guest: ${[...guest].map(([p, v]) => `${p} ${v.ids}`).join(', ')}`);
    assert.equal(g.ids, ids.get(e.host), `${e.host} at ${e.at}: the lab host's IDs`);
    assert.notEqual(g.driver, '', `${e.host} at ${e.at} (${g.ids}): a guest driver is bound`);
  }
});


for (const tw of twins) {
  test(`the twin of ${tw.name} on hvmpt: the probe guest's sysfs config space decodes under lspci -vvv -F as the source machine, less the documented differences`, { timeout: 120 * MINUTES }, (t) => {
    const o = lab(t);
    if (o === undefined) return;
    assert.equal(section(o, `plan-${tw.name}`).rc, 0, section(o, `plan-${tw.name}`).text);
    // A collection says how many CPUs the machine had (its MADT); an lspci dump does not.
    assert.equal(section(o, `plan-cpus-${tw.name}`).text.trim(), tw.source === '' ? 'cpus: 2' : '', 'the twin plan\'s machine.cpus');
    const runOut = section(o, `run-${tw.name}`, t);
    assert.equal(runOut.rc, 0, runOut.text.slice(-4000));
    const dir = mkdtempSync(join(tmpdir(), 'hvmpt-twin-guest-'));
    try {
      const guestDump = join(dir, 'guest.lspci');
      writeFileSync(guestDump, guestSection(runOut.text, 'config'));
      let source = tw.source;
      const planFile = join(work, `twin-${tw.name}.yaml`);
      if (tw.source === '') {
        // The lab's config spaces as lspci reads them, from the archive it collected.
        source = join(dir, 'lab.lspci');
        const capture = readSnapshot(readFactsTar(new Uint8Array(readFileSync(join(work, 'lab.tar'))), 'lab.tar')).pci.capture;
        assert.ok(capture, 'the lab archive holds config spaces');
        writeFileSync(source, writeLspciDump(composePci({ base: capture }, 'lab.tar')));
      }
      const composed = join(dir, 'twin.lspci');
      writeFileSync(composed, writeLspciDump(composePlanFile(planFile).pci));
      const problems = compareGuestTwin(source, composed, guestDump, twinMoves(planFile, source), twinHidden(planFile, source));
      assert.deepEqual(problems, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
