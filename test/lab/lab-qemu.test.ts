/**
 * Which QEMU runs a lab host (src/host/lab/qemu.ts): the one scripts/lab-qemu.sh unpacked from
 * Debian's backports under TCG, with its data directories first; the system's under KVM, for an
 * AMD IOMMU, when none was fetched, or when HVMPT_LAB_QEMU says so; a binary HVMPT_LAB_QEMU
 * names, checked before anything boots.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseLabAccel, chooseLabQemu, LabError, labQemuCacheDir, SYSTEM_QEMU, unpackedQemu } from '../../src/host/lab/index.js';

const tcg = chooseLabAccel({ paging: false, why: 'test' });
const kvm = { kind: 'kvm', cpu: 'host', why: 'test' } as const;

function fakeCache(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-lab-qemu-'));
  mkdirSync(join(dir, 'root', 'usr', 'bin'), { recursive: true });
  const bin = join(dir, 'root', 'usr', 'bin', SYSTEM_QEMU);
  writeFileSync(bin, '#!/bin/sh\n');
  chmodSync(bin, 0o755);
  writeFileSync(join(dir, 'version'), '10.0.2\nbookworm-backports\n');
  return dir;
}

test('chooseLabQemu: the unpacked QEMU under TCG, its data directories before the system\'s; the system\'s under KVM, for an AMD IOMMU and when none is unpacked', () => {
  const cache = fakeCache();
  const empty = mkdtempSync(join(tmpdir(), 'hvmpt-lab-qemu-none-'));
  try {
    const q = chooseLabQemu({ accel: tcg, iommu: 'intel', cacheDir: cache });
    assert.equal(q.binary, join(cache, 'root', 'usr', 'bin', SYSTEM_QEMU));
    assert.deepEqual(q.args, ['-L', join(cache, 'root/usr/share/qemu'), '-L', join(cache, 'root/usr/share/seabios'), '-L', '/usr/share/qemu']);
    assert.equal(q.why, 'QEMU 10.0.2 from bookworm-backports (.cache/lab-qemu)');
    assert.equal(chooseLabQemu({ accel: tcg, iommu: 'none', cacheDir: cache }).binary, q.binary);

    const system = (o: Parameters<typeof chooseLabQemu>[0], why: RegExp): void => {
      const s = chooseLabQemu(o);
      assert.deepEqual([s.binary, s.args], [SYSTEM_QEMU, []]);
      assert.match(s.why, why);
    };
    system({ accel: kvm, iommu: 'intel', cacheDir: cache }, /the lab host runs under KVM/);
    system({ accel: tcg, iommu: 'amd', cacheDir: cache }, /AMD IOMMU/);
    system({ accel: tcg, iommu: 'intel', cacheDir: empty }, /scripts\/lab-qemu\.sh fetches one/);
    system({ accel: tcg, iommu: 'intel', cacheDir: cache, override: 'system' }, /HVMPT_LAB_QEMU=system/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
});

test('HVMPT_LAB_QEMU naming a binary: that one, or a typed error naming the variable when it cannot run', () => {
  const cache = fakeCache();
  try {
    const mine = join(cache, 'root', 'usr', 'bin', SYSTEM_QEMU);
    const q = chooseLabQemu({ accel: kvm, iommu: 'amd', override: mine });
    assert.deepEqual([q.binary, q.args, q.why], [mine, [], `QEMU: ${mine} (HVMPT_LAB_QEMU)`]);
    const missing = join(cache, 'nothing-here');
    assert.throws(
      () => chooseLabQemu({ accel: tcg, iommu: 'intel', override: missing }),
      (e: unknown) => e instanceof LabError && e.where.input === 'HVMPT_LAB_QEMU' && e.message.includes(`${missing} is not an executable file`),
    );
    assert.throws(() => chooseLabQemu({ accel: tcg, iommu: 'intel', override: join(cache, 'version') }), LabError, 'a file that is not executable');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('the QEMU scripts/lab-qemu.sh unpacked runs here and is the version it recorded', (t) => {
  const dir = labQemuCacheDir();
  const unpacked = dir === undefined ? undefined : unpackedQemu(dir);
  if (unpacked === undefined) {
    // setup fetches it only where the system's QEMU is older than 10 and the release has a backport.
    const system = spawnSync(SYSTEM_QEMU, ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'none';
    t.skip(`no QEMU in .cache/lab-qemu (the system's: ${system}); scripts/lab-qemu.sh found none to fetch`);
    process.stderr.write(`SKIPPED lab-qemu: no QEMU in .cache/lab-qemu (system: ${system})\n`);
    return;
  }
  const r = spawnSync(unpacked.binary, ['-L', unpacked.dataDirs[0]!, '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`version ${unpacked.version.replace(/\./g, '\\.')}\\b`));
  assert.match(unpacked.suite, /-backports$/);
});
