/**
 * `hvmpt run` where /dev/kvm cannot run the plan: one line saying so, then the same run in a
 * lab host. HVMPT_KVM=lab takes that path on any machine; the README's first command
 * (examples/desktop.yaml) must give what it gives without the lab: its status, GRUB's report
 * on stdout, and the --report, --serial and --firmware-log files where they were asked for
 * (outside anything the lab makes writable).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GRUB_BEGIN_MARK, GRUB_END_MARK } from '../../src/host/firmware/grub.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware, skipUnlessCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { LAB_LIMIT_FACTOR } from '../helpers/limits.js';

const DESKTOP = join(REPO_ROOT, 'examples', 'desktop.yaml');
/** The plan's own 240 s, widened as for any guest in a lab host (test/helpers/limits.ts). */
const IN_LAB_TIMEOUT = String(240 * LAB_LIMIT_FACTOR);

test('hvmpt run in a lab host (HVMPT_KVM=lab): one line saying so, the status, the serial output and every file as without the lab', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessBootFirmware(t)) return;
  // Not under /tmp: the files must come out of the lab, not just be writable in it.
  const out = mkdtempSync(join(REPO_ROOT, 'dist', 'run-fallback-'));
  try {
    const files = { report: join(out, 'report.json'), serial: join(out, 'serial.txt'), log: join(out, 'seabios.log') };
    const r = hvmpt(['run', DESKTOP, '--timeout', IN_LAB_TIMEOUT, '--report', files.report, '--firmware-log', files.log], { env: { ...process.env, HVMPT_KVM: 'lab' } });
    assert.equal(r.status, 0, r.stderr);
    const first = r.stderr.split('\n')[0]!;
    assert.match(first, /^hvmpt: HVMPT_KVM=lab: running the plan in a lab host \((TCG|KVM); --no-lab to not; docs\/lab\.md\)$/);
    assert.equal(r.stderr.split('\n').filter((l) => /lab host/.test(l)).length, 1, 'one line about the lab');
    // The run inside said what a run says.
    assert.match(r.stderr, /^hvmpt: guest powered off \(ACPI PM1a_CNT SLP_EN with SLP_TYP \d+ \(S5\)\) after /m);
    const serial = r.stdout.replace(/\r/g, '');
    assert.ok(serial.includes(GRUB_BEGIN_MARK) && serial.includes(GRUB_END_MARK), `GRUB's report on stdout:\n${serial}`);
    const report = JSON.parse(readFileSync(files.report, 'utf8')) as { reason: { kind: string }; boots: number };
    assert.equal(report.reason.kind, 'poweroff');
    assert.equal(report.boots, 1);
    assert.match(readFileSync(files.log, 'latin1'), /SeaBIOS \(version/);

    // --serial FILE: the guest's COM1 in the file, nothing on stdout.
    const toFile = hvmpt(['run', DESKTOP, '--timeout', IN_LAB_TIMEOUT, '--serial', files.serial], { env: { ...process.env, HVMPT_KVM: 'lab' } });
    assert.equal(toFile.status, 0, toFile.stderr);
    assert.equal(toFile.stdout, '');
    assert.ok(readFileSync(files.serial, 'latin1').includes(GRUB_END_MARK));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('hvmpt run: --no-lab and HVMPT_KVM=direct never start a lab; a socket serial cannot reach into one; a bad HVMPT_KVM is named', (t) => {
  if (!skipUnlessBootFirmware(t)) return;
  const out = mkdtempSync(join(REPO_ROOT, 'dist', 'run-fallback-'));
  try {
    const socket = hvmpt(['run', DESKTOP, '--serial', `unix:${join(out, 'com1.sock')}`], { env: { ...process.env, HVMPT_KVM: 'lab' } });
    assert.equal(socket.status, 2, 'a serial option the run cannot honour is a usage error');
    assert.match(socket.stderr, /^hvmpt: unix:.*com1\.sock: a socket serial port cannot reach into a lab host; use a file or stdout/m);
    const unwritable = hvmpt(['run', DESKTOP, '--report', join(out, 'no', 'such', 'dir', 'r.json')], { env: { ...process.env, HVMPT_KVM: 'lab' } });
    assert.equal(unwritable.status, 1);
    assert.match(unwritable.stderr, /r\.json: cannot write the run report: ENOENT/);
    const bad = hvmpt(['run', DESKTOP], { env: { ...process.env, HVMPT_KVM: 'maybe' } });
    assert.equal(bad.status, 2, 'a bad HVMPT_KVM is a usage error');
    assert.match(bad.stderr, /^hvmpt: HVMPT_KVM: 'maybe' is not lab, direct or auto$/m);
    // HVMPT_KVM=direct: the run is the monitor's own, so the socket is tried (and is not there).
    const direct = hvmpt(['run', DESKTOP, '--serial', `unix:${join(out, 'com1.sock')}`], { env: { ...process.env, HVMPT_KVM: 'direct' } });
    assert.equal(direct.status, 1);
    assert.match(direct.stderr, /cannot connect the serial port: ENOENT/);
    // --no-lab wins over HVMPT_KVM=lab: the monitor's own run, stopped after a second where
    // /dev/kvm works, failing as before where it does not.
    const noLab = hvmpt(['run', DESKTOP, '--timeout', '1', '--no-lab'], { env: { ...process.env, HVMPT_KVM: 'lab' } });
    assert.equal(noLab.status, 1);
    assert.doesNotMatch(noLab.stderr, /lab host/);
    assert.match(noLab.stderr, /^hvmpt: (guest stopped: timeout after|\/dev\/kvm)/m);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
