/**
 * The edu plug-in under a real driver: Linux in a probe guest on hvmpt's monitor binds
 * uio_pci_generic to it and runs tools/guest/c/edu-tool — the same guest test the VFIO
 * pass-through of QEMU's own edu runs — for the ID, liveness and factorial, 2,000 INTx
 * raise/acknowledge cycles per device with none lost or doubled, and a DMA round trip through guest RAM.
 * One guest in one lab host (a /dev/kvm that pages) holds three of them: the plug-in
 * in-process; the same plug-in served out of process by `hvmpt serve-device` and attached over
 * vfio-user; and a third served likewise whose server is killed mid-run, which fails that
 * device while the guest and the other two go on to power off.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseProbeReport } from '../../src/host/guest/probe.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { labEnv } from '../lab/lab-env.js';

const EDU = join(REPO_ROOT, 'examples', 'plugins', 'edu.js');
const CLI = join(REPO_ROOT, 'dist', 'hvmpt.mjs');
/** Two reserved MiB the guest's driver reaches through /dev/mem for its DMA buffers. */
const CMDLINE = 'memmap=1M$0x4000000 memmap=1M$0x4080000';

/**
 * INTx cycles per device: every register access of an emulated edu is an exit into the monitor
 * (and, over vfio-user, a round trip to the server), so this is fewer than the 10,000 the VFIO
 * lab runs on QEMU's own edu, where the BAR is mapped; still thousands of raise/acknowledge
 * pairs in which a lost or doubled interrupt would show.
 */
const CYCLES = 2000;
const DEV = (at: string): string => `/sys/bus/pci/devices/0000:${at}`;
const INPROC = '00:06.0';
const USER = '00:07.0';
const KILLED = '00:08.0';
const full = (name: string, at: string): string =>
  `section ${name}-id /bin/edu-tool ${DEV(at)} id\nsection ${name}-intx /bin/edu-tool ${DEV(at)} intx ${CYCLES}\nsection ${name}-dma /bin/edu-tool ${DEV(at)} dma 0x4000000 0x4080000 2048\n`;
const SCRIPT =
  'echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id\n' +
  `section before /bin/edu-tool ${DEV(KILLED)} id\n` +
  full('inproc', INPROC) +
  full('user', USER) +
  // The lab kills the third device's server once "before" is out; the tests above outlast that.
  `section after /bin/edu-tool ${DEV(KILLED)} id\nsection alive echo still-running\n`;

function plan(file: string, tool: string): void {
  writeFileSync(
    file,
    `memory: { size: 256M }\n` +
      `pci:\n  plugins:\n` +
      `    - { name: edu, module: ${EDU}, at: "${INPROC}" }\n` +
      `    - { name: eduuser, socket: /tmp/edu.sock, at: "${USER}" }\n` +
      `    - { name: edukill, socket: /tmp/edu2.sock, at: "${KILLED}" }\n` +
      `machine:\n  timeout: 2400\n` +
      `  boot: { kind: probe, report: false, modules: [uio_pci_generic], cmdline: ${JSON.stringify(CMDLINE)}, script: ${JSON.stringify(SCRIPT)}, files: [{ path: bin/edu-tool, file: ${tool} }] }\n`,
  );
}

/** The lab's output between `@@edu-lab NAME begin` and `@@edu-lab NAME end`. */
function part(out: string, name: string): string {
  const m = new RegExp(`^@@edu-lab ${name} begin$([\\s\\S]*?)^@@edu-lab ${name} end$`, 'm').exec(out);
  assert.ok(m !== null, `the lab printed no ${name} part`);
  return m[1]!;
}

test('edu-tool in a Linux guest drives the edu plug-in in-process, over vfio-user, and survives its server being killed', { timeout: 3_600_000 }, (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessCommand(t, 'gcc', 'gcc')) return;
  const work = mkdtempSync(join(REPO_ROOT, 'dist', 'edu-guest-'));
  try {
    const tool = join(work, 'edu-tool');
    const cc = run('gcc', ['-static', '-O2', '-o', tool, join(REPO_ROOT, 'tools', 'guest', 'c', 'edu-tool.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    plan(join(work, 'plan.yaml'), tool);
    const script = [
      `H="node ${CLI}"`,
      `serve() { $H serve-device ${EDU} --socket $1 --name $2 2>>/tmp/serve.log & while [ ! -S $1 ]; do sleep 0.2; done; }`,
      'serve /tmp/edu.sock eduuser; S1=$!',
      'serve /tmp/edu2.sock edukill; S2=$!',
      `$H run ${work}/plan.yaml --report /tmp/all.json >/tmp/all.out 2>/tmp/all.err & R=$!`,
      'while ! grep -q "^@@hvmpt-end before" /tmp/all.out 2>/dev/null; do kill -0 $R 2>/dev/null || break; sleep 0.5; done',
      'kill -9 $S2',
      'wait $R; st=$?',
      'kill $S1',
      'echo "@@edu-lab all begin"; cat /tmp/all.out; echo "@@edu-lab-status $st"; echo "@@edu-lab-report"; cat /tmp/all.json; echo; echo "@@edu-lab-stderr"; cat /tmp/all.err; echo "@@edu-lab all end"',
      'echo "@@edu-lab serve begin"; cat /tmp/serve.log; echo "@@edu-lab serve end"',
    ].join('\n');
    const r = hvmpt(['lab', '--memory', '3G', '--timeout', '3000', '--', script], { env: labEnv(), cwd: work });
    assert.equal(r.status, 0, `lab: ${r.stderr.slice(-3000)}`);

    const p = part(r.stdout, 'all');
    const stderr = /^@@edu-lab-stderr$([\s\S]*)/m.exec(p)?.[1] ?? '';
    assert.match(p, /^@@edu-lab-status 0$/m, `hvmpt run exit status: the guest went on to power off; ${/^@@edu-lab-status .*$/m.exec(p)?.[0]}; its stderr ends: ${stderr.slice(-2500)}; its console ends: ${p.split('@@edu-lab-report')[0]!.slice(-2500)}`);
    const probe = parseProbeReport(p);
    const section = (s: string): string => probe.sections.get(s)?.output.trim() ?? `(no ${s} section)`;
    for (const name of ['inproc', 'user']) {
      assert.match(section(`${name}-id`), /^id=0x010000ed live=0xedcba987 fact=120$/m, name);
      assert.equal(probe.sections.get(`${name}-id`)?.rc, 0, name);
      assert.match(section(`${name}-intx`), new RegExp(`^intx cycles=${CYCLES} lost=0 doubled=0 wrong=0 per_s=\\d+$`, 'm'), name);
      assert.equal(probe.sections.get(`${name}-intx`)?.rc, 0, name);
      assert.match(section(`${name}-dma`), /^dma src=0x4000000 dst=0x4080000 len=2048 mismatched=0 first=0x03$/m, name);
    }
    assert.match(p, /pci: plug-in eduuser: vfio-user server at \/tmp\/edu\.sock/);
    assert.match(section('before'), /id=0x010000ed live=0xedcba987 fact=120/);
    assert.match(section('after'), /id=0xffffffff/, 'a failed device reads all ones');
    assert.match(section('alive'), /still-running/);
    const report = JSON.parse(/^@@edu-lab-report$([\s\S]*?)^@@edu-lab-stderr$/m.exec(p)![1]!) as { reason: { kind: string }; deviceFaults: Array<{ device: string; message: string }> };
    assert.equal(report.reason.kind, 'poweroff');
    // Only the device whose server died failed: the in-process one and the other server's did not.
    assert.deepEqual(report.deviceFaults.map((f) => f.device), ['edukill'], JSON.stringify(report.deviceFaults));
    assert.match(report.deviceFaults[0]!.message, /\/tmp\/edu2\.sock/);
    assert.match(p, /device edukill failed \(contained, the guest goes on\)/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
