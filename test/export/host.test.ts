import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { sysfsName } from '../../src/hw/pci/host-function.js';
import { hostIds, readHostFacts, resolveHostSelector } from '../../src/host/pci/host-facts.js';
import { PlanError } from '../../src/plan/load.js';
import { fakeSysfs } from '../helpers/fake-sysfs.js';
import { fixture } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { exportIn, P6T6, scratch } from './helpers.js';

/**
 * --host: the host a plan is for, read from a sysfs tree (IOMMU groups and drivers with it) or an
 * lspci dump. A made-up sysfs tree stands in for another host: nothing here touches a device.
 */

const work = scratch('hvmpt-host-');

test('host facts from an lspci dump: selectors by address and by the n-th function with those IDs', () => {
  const facts = readHostFacts(P6T6);
  assert.equal(facts.iommuVendor, 'intel');
  assert.equal(sysfsName(resolveHostSelector(facts, { kind: 'ids', vendorId: 0x10de, deviceId: 0x05b1, index: 1 })!.address), '0000:03:00.0');
  assert.equal(resolveHostSelector(facts, { kind: 'ids', vendorId: 0x10de, deviceId: 0x05b1, index: 3 }), undefined);
  assert.equal(hostIds(resolveHostSelector(facts, { kind: 'address', bdf: { segment: 0, bus: 6, device: 0, fn: 0 } })!).deviceId, 0x0a65);
});

test('host facts from this machine\'s sysfs (read only) name every function lspci -n names, with the same IDs', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  if (readdirSync('/sys/bus/pci/devices').length === 0) {
    const why = `SKIPPED (this machine has no PCI functions in /sys/bus/pci/devices): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return;
  }
  const facts = readHostFacts('/sys/bus/pci/devices');
  const r = run('lspci', ['-n', '-D']);
  assert.equal(r.status, 0, r.stderr);
  const lspci = r.stdout.trim().split('\n').map((l) => `${l.split(' ')[0]} ${l.split(' ')[2]}`);
  const ours = facts.functions.map((f) => {
    const ids = hostIds(f);
    return `${sysfsName(f.address)} ${ids.vendorId.toString(16).padStart(4, '0')}:${ids.deviceId.toString(16).padStart(4, '0')}`;
  });
  assert.deepEqual(ours, lspci);
});

test('--host a sysfs tree: a ROM file reaches QEMU and libvirt, and an IOMMU group shared with a function the guest does not get is a warning', () => {
  const root = fakeSysfs(join(work, 'sys'), [
    { address: '0000:00:03.0', vendor: 0x8086, device: 0x100e, classCode: 0x020000, driver: 'e1000', group: 7 },
    { address: '0000:00:03.1', vendor: 0x8086, device: 0x100e, classCode: 0x020000, driver: 'e1000', group: 7 },
    { address: '0000:00:1e.0', vendor: 0x8086, device: 0x244e, classCode: 0x060400, driver: 'pcieport', group: 7 },
  ]);
  const plan = join(work, 'nic.yaml');
  writeFileSync(join(work, 'vmlinuz'), 'A stand-in for a kernel image: exporters name this file.\n');
  writeFileSync(plan, 'memory: { size: 64M }\nmachine: { boot: { kind: linux, kernel: vmlinuz } }\npci:\n  passthrough:\n    - { name: nic, host: "8086:100e", at: "00:04.0", rom: /usr/lib/ipxe/qemu/pxe-e1000.rom }\n');
  const qemu = exportIn(plan, 'qemu', { host: root });
  assert.match(qemu.text, /^vfio-pci,id=nic,host=0000:00:03\.0,bus=pci\.0,addr=04\.0,romfile=\/usr\/lib\/ipxe\/qemu\/pxe-e1000\.rom$/m);
  assert.match(exportIn(plan, 'libvirt', { host: root }).text, /<rom file='\/usr\/lib\/ipxe\/qemu\/pxe-e1000\.rom'\/>/);
  // 00:03.1 shares group 7 and stays with the host; the bridge may.
  const xen = exportIn(plan, 'xen', { host: root });
  assert.doesNotMatch(xen.text, /warning/);
  const sh = exportIn(plan, 'qemu', { host: root, format: 'sh' });
  assert.match(sh.text, /# {3}warning: pci\.passthrough\[0\] \(nic\): IOMMU group 7 also holds 0000:00:03\.1 \(e1000\), which the guest does not get/);
  assert.doesNotMatch(sh.text, /0000:00:1e\.0/);
  // 00:03.1 has the same IDs and stays with the host: vfio-pci.ids= would take it at boot too, so the guest's is bound by address.
  assert.doesNotMatch(sh.text, /kernel parameter vfio-pci\.ids=/);
  assert.match(sh.text, /# {3}warning: 8086:100e is also the ID of a function the host keeps, so vfio-pci\.ids= would take that one too: 0000:00:03\.0 is bound by address instead/);
  assert.match(sh.text, /# {3}before start: echo vfio-pci > \/sys\/bus\/pci\/devices\/0000:00:03\.0\/driver_override/);
});

test('--host a collection (hvmpt collect, this machine\'s): the devices come from it, and its analysis\'s findings for them become the export\'s warnings, the host as a whole first', (t) => {
  if (readdirSync('/sys/bus/pci/devices').length === 0) {
    const why = `SKIPPED (this machine has no PCI functions in /sys/bus/pci/devices): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return;
  }
  const archive = join(work, 'me.tar');
  const c = hvmpt(['collect', '--out', archive]);
  assert.equal(c.status, 0, c.stderr);
  const a = hvmpt(['analyze', archive, '--json']);
  assert.equal(a.status, 0, a.stderr);
  const analysis = JSON.parse(a.stdout) as { machine: { iommu: { on: boolean } }; devices: Array<{ device: string; role: string; common: Array<{ level: string; text: string }>; iommu: { facts: Array<{ level: string; text: string }> } }> };
  const device = analysis.devices.find((d) => d.role === 'endpoint');
  assert.ok(device !== undefined, 'this machine has an endpoint');
  const plan = join(work, 'collected.yaml');
  writeFileSync(plan, `memory: { size: 64M }\nmachine: { boot: { kind: grub-report } }\npci:\n  passthrough:\n    - { name: dev, host: "${device.device}", at: "00:06.0" }\n`);
  const r = exportIn(plan, 'qemu', { host: archive, format: 'sh' });
  assert.match(r.text, new RegExp(`vfio-pci,id=dev,host=${device.device.replace(/\./g, '\\.')},bus=pci\\.0,addr=06\\.0`));
  const warnings = r.text.split('\n').filter((l) => l.startsWith('#   warning: ')).map((l) => l.slice('#   warning: '.length));
  // Every fact of the analysis that rules the device out, warns, or needs a host change is there once, and nothing else about devices.
  const expected = [...new Set([...device.common, ...device.iommu.facts].filter((f) => ['block', 'warn', 'change'].includes(f.level)).map((f) => `${({ block: 'rules it out: ', warn: '', change: 'needs a host change: ' } as Record<string, string>)[f.level]}${f.text}`))];
  const about = warnings.filter((w) => w.startsWith('pci.passthrough[0] (dev): ')).map((w) => w.slice(`pci.passthrough[0] (dev): ${device.device}: `.length));
  assert.deepEqual(about.sort(), expected.sort());
  // The IOMMU line: nothing to turn on where it is on; where it is off, either its parameter or no way but the firmware's.
  if (analysis.machine.iommu.on) assert.doesNotMatch(r.text, /intel_iommu=on|amd_iommu=on/);
  // The report lists the same findings, after the host's own.
  const html = join(work, 'collected.html');
  const rep = hvmpt(['report', plan, '--host', archive, '--out', html]);
  assert.equal(rep.status, 0, rep.stderr);
  const page = readFileSync(html, 'utf8');
  for (const e of expected) assert.ok(page.includes(`: ${device.device}: ${e}`.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&#39;').replace(/"/g, '&quot;')), e);
  // A function the collection does not have is refused by its plan path, as for a sysfs tree.
  writeFileSync(plan, 'memory: { size: 64M }\nmachine: { boot: { kind: grub-report } }\npci:\n  passthrough:\n    - { name: dev, host: "0000:7f:1f.7" }\n');
  const refused = hvmpt(['export', plan, '--to', 'qemu', '--host', archive]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /pci\.passthrough\[0\]\.host: [^\n]*me\.tar has no function 0000:7f:1f\.7/);
});

test('a pass-through entry\'s use reaches every target: shared is noted where a target cannot share, and an identity layout refuses it (plan path)', () => {
  const root = fakeSysfs(join(work, 'sys2'), [{ address: '0000:00:03.0', vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, driver: 'vfio-pci', group: 3 }]);
  writeFileSync(join(work, 'vmlinuz'), 'A stand-in for a kernel image: exporters name this file.\n');
  const shared = join(work, 'shared.yaml');
  writeFileSync(shared, 'memory: { size: 64M }\nmachine: { boot: { kind: linux, kernel: vmlinuz } }\npci:\n  passthrough:\n    - { name: edu, host: "1234:11e8", use: { allocation: dynamic, sharing: shared } }\n');
  for (const target of ['qemu', 'libvirt', 'xen', 'kubevirt', 'nova']) {
    assert.ok(exportIn(shared, target, { host: root }).notes.some((n) => n.startsWith('cannot express: pci.passthrough[0].use.sharing: ')), target);
  }
  // dynamic: libvirt detaches it itself (managed), Xen seizes it at create.
  assert.match(exportIn(shared, 'libvirt', { host: root }).text, /<hostdev mode='subsystem' type='pci' managed='yes'>/);
  assert.match(exportIn(shared, 'xen', { host: root }).text, /"0000:00:03\.0@02,permissive=1,seize=1,/);
  const identity = join(work, 'identity.yaml');
  writeFileSync(
    identity,
    `memory: { size: 64M, layout: identity }\nmachine: { boot: { kind: linux, kernel: vmlinuz }, hostMap: ${fixture('dmesg', 'desktop-asrock-x370-pro4-amd-ryzen__arch-5.13.dmesg.head.txt')} }\npci:\n  passthrough:\n    - { name: edu, host: "1234:11e8", use: { sharing: shared } }\n`,
  );
  assert.throws(() => exportIn(identity, 'qemu', { host: root }), (e: unknown) => e instanceof PlanError && e.problems.some((p) => p.path === 'pci.passthrough[0].use.sharing'));
});
