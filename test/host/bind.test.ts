import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BindError, bindFunctions, unbindFunctions } from '../../src/host/pci/bind.js';
import { fakeSysfs } from '../helpers/fake-sysfs.js';

/**
 * bind/unbind against a made-up sysfs: the refusals happen before anything is written, and the
 * writes are the kernel's documented sequence. (The real kernel's answer is checked in the lab.)
 */

function withSysfs<T>(body: (root: string, state: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bind-'));
  try {
    const root = fakeSysfs(join(dir, 'sys'), [
      { address: '0000:00:02.0', vendor: 0x1af4, device: 0x1001, classCode: 0x010000, driver: 'virtio-pci', group: 2 },
      { address: '0000:00:03.0', vendor: 0x8086, device: 0x10d3, classCode: 0x020000, driver: 'e1000e', group: 3 },
      { address: '0000:00:03.1', vendor: 0x8086, device: 0x10d3, classCode: 0x020000, driver: 'e1000e', group: 3 },
      { address: '0000:00:04.0', vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, group: 4 },
    ]);
    return body(root, join(dir, 'state'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const disk = [{ address: '0000:00:02.0', use: "the root filesystem's disk (/dev/vda)" }];

test('bind refuses the host\'s own devices before writing anything', () => {
  withSysfs((root, stateDir) => {
    assert.throws(() => bindFunctions(['0000:00:02.0'], 'vfio-pci', { sysfsRoot: root, stateDir, hostUses: disk }), (e: unknown) => e instanceof BindError && /root filesystem's disk .*: the host needs it/.test(e.message));
    assert.equal(existsSync(join(root, 'bus/pci/devices/0000:00:02.0/driver_override')), false, 'nothing written');
    assert.throws(() => bindFunctions(['zz:00.0'], 'vfio-pci', { sysfsRoot: root, stateDir, hostUses: [] }), /'zz:00.0' is not a PCI address/);
  });
});

test('bind moves a function through driver_override, unbind and drivers_probe, and a bind the kernel does not complete gives it back to its driver', () => {
  withSysfs((root, stateDir) => {
    mkdirSync(join(root, 'bus/pci/drivers/vfio-pci'), { recursive: true });
    // The made-up kernel never binds (nor unbinds), so the wait gives up: what matters is what was
    // written, and that the failed bind gave the function back before it reported.
    assert.throws(
      () => bindFunctions(['00:03.0'], 'vfio-pci', { sysfsRoot: root, stateDir, hostUses: disk, timeoutMs: 50 }),
      (e: unknown) => e instanceof BindError && /did not bind vfio-pci \(see dmesg\); 0000:00:03\.0 is with e1000e again$/.test(e.message),
    );
    const dev = (a: string, f: string): string => readFileSync(join(root, 'bus/pci/devices', a, f), 'utf8');
    assert.equal(readFileSync(join(root, 'bus/pci/drivers/e1000e/unbind'), 'utf8'), '0000:00:03.0');
    assert.equal(readFileSync(join(root, 'bus/pci/drivers_probe'), 'utf8'), '0000:00:03.0');
    assert.equal(dev('0000:00:03.0', 'driver_override'), '\n', 'the override cleared by the roll-back');
    assert.equal(existsSync(join(root, 'bus/pci/devices/0000:00:03.1/driver_override')), false, 'the group mate after it was not touched');
    assert.equal(existsSync(join(stateDir, '0000:00:03.0.json')), false, 'the record goes with the roll-back');
  });
});

test('bind reports the driver not loaded, and unbind asks for the remembered driver by name', () => {
  withSysfs((root, stateDir) => {
    assert.throws(() => bindFunctions(['0000:00:04.0'], 'uio_pci_generic', { sysfsRoot: root, stateDir, hostUses: [] }), /uio_pci_generic is not loaded/);
    // 00:03.0 as bind leaves it: with vfio-pci, its driver remembered.
    const dev = join(root, 'bus/pci/devices/0000:00:03.0');
    mkdirSync(join(root, 'bus/pci/drivers/vfio-pci'), { recursive: true });
    rmSync(join(dev, 'driver'));
    symlinkSync(join(root, 'bus/pci/drivers/vfio-pci'), join(dev, 'driver'));
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, '0000:00:03.0.json'), JSON.stringify({ address: '0000:00:03.0', previous: 'e1000e', driver: 'vfio-pci', since: '' }));
    assert.throws(() => unbindFunctions(['0000:00:03.0'], { sysfsRoot: root, stateDir, timeoutMs: 50 }), (e: unknown) => e instanceof BindError && /e1000e did not take the function back/.test(e.message));
    assert.equal(readFileSync(join(dev, 'driver_override'), 'utf8'), '\n', 'the override is cleared');
    assert.equal(readFileSync(join(root, 'bus/pci/drivers/vfio-pci/unbind'), 'utf8'), '0000:00:03.0');
    assert.equal(readFileSync(join(root, 'bus/pci/drivers/e1000e/bind'), 'utf8'), '0000:00:03.0', 'the driver it had, by name');
  });
});

test('bind that cannot remember the driver moves nothing; unbind refuses a record it cannot trust before moving anything', () => {
  withSysfs((root, stateDir) => {
    mkdirSync(join(root, 'bus/pci/drivers/vfio-pci'), { recursive: true });
    // The state directory's place is taken by a file: the record cannot be written.
    writeFileSync(stateDir, 'not a directory');
    assert.throws(
      () => bindFunctions(['0000:00:04.0'], 'vfio-pci', { sysfsRoot: root, stateDir, hostUses: [], timeoutMs: 50 }),
      (e: unknown) =>
        e instanceof BindError && e.where.input === join(stateDir, '0000:00:04.0.json') && /^cannot remember the function's driver here: E[A-Z]+ \(are you root\?\); 0000:00:04\.0 was not moved$/.test(e.detail),
    );
    assert.equal(existsSync(join(root, 'bus/pci/devices/0000:00:04.0/driver_override')), false, 'nothing written');
    rmSync(stateDir);
    mkdirSync(stateDir);
    // 00:03.0's record is cut short (a crash mid-write of an older hvmpt), 00:03.1's is sound.
    writeFileSync(join(stateDir, '0000:00:03.1.json'), JSON.stringify({ address: '0000:00:03.1', previous: 'e1000e', driver: 'vfio-pci', since: '' }));
    writeFileSync(join(stateDir, '0000:00:03.0.json'), '{"address":"0000:00:03.0","prev');
    assert.throws(
      () => unbindFunctions(['0000:00:03.1', '0000:00:03.0'], { sysfsRoot: root, stateDir, timeoutMs: 50 }),
      (e: unknown) => e instanceof BindError && e.where.input === join(stateDir, '0000:00:03.0.json') && /is not a record hvmpt bind wrote for 0000:00:03\.0/.test(e.message),
    );
    for (const f of ['0000:00:03.0', '0000:00:03.1']) assert.equal(existsSync(join(root, 'bus/pci/devices', f, 'driver_override')), false, `nothing written for ${f}`);
  });
});
