/**
 * Lab hosts are the ground truth. Two lab hosts with known topologies (test/helpers/lab-hosts.ts:
 * q35 with VT-d, and the same machine without an IOMMU) collect their facts inside; the
 * analysis on L0 must say what the lab host's own sysfs says (read in the lab by a separate
 * script, not the collector), what Linux did when it routed INTx for real (uio_pci_generic
 * bound after the collection), and what QEMU was told (which device is the boot disk, the
 * default route, the console; which devices sit behind which bridge).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { readFactsTar } from '../../src/host/facts/archive.js';
import { analyze, type Analysis } from '../../src/hw/facts/analyze.js';
import { compareGroups, predictGroups } from '../../src/hw/facts/groups.js';
import { HostPci } from '../../src/hw/facts/host-pci.js';
import { readSnapshot, type HostSnapshot } from '../../src/hw/facts/snapshot.js';
import { monitorWindows } from '../../src/cli/facts-analysis.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { runLabHost, type LabResult } from '../helpers/lab-hosts.js';
import { haveCommand, skipUnlessCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { create as createTar } from 'tar';
import { loadPlan, type Plan } from '../../src/plan/schema.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { formatBdf, parseBdf } from '../../src/hw/pci/address.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { compareTwin, lspciBlocks, twinMoves } from '../helpers/twin-compare.js';

const labs = new Map<string, { lab: LabResult; snapshot: HostSnapshot; analysis: Analysis }>();
let missing: string | undefined;

before(async () => {
  missing = ['qemu-system-x86_64', 'mke2fs', 'busybox'].find((c) => !haveCommand(c));
  if (missing !== undefined) return;
  const cache = join(REPO_ROOT, '.cache', 'facts');
  mkdirSync(cache, { recursive: true });
  for (const name of ['q35-iommu', 'q35-noiommu']) {
    const lab = await runLabHost((hosts) => hosts.find((h) => h.name === name)!);
    // Kept for the fuzz target and the bench.
    writeFileSync(join(cache, `lab-${name}.tar`), lab.root);
    const snapshot = readSnapshot(readFactsTar(lab.root, `lab ${name}`));
    labs.set(name, { lab, snapshot, analysis: analyze(snapshot, { windows: monitorWindows(1n << 30n), memory: 1n << 30n }) });
  }
});

function get(t: TestContext, name: string): { lab: LabResult; snapshot: HostSnapshot; analysis: Analysis } | undefined {
  if (missing !== undefined) {
    const line = `SKIPPED (no ${missing}; run scripts/setup.sh): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return undefined;
  }
  return labs.get(name)!;
}

/** The lab's own sysfs, by vendor:device: the functions QEMU was asked for, wherever SeaBIOS numbered them. */
function byIds(lab: LabResult, ids: string): string[] {
  return lab.truth.functions.filter((f) => f.ids === ids).map((f) => f.bdf);
}

const EDU = '1234:11e8';
const NVME = '1b36:0010';
const E1000E = '8086:10d3';
const E1000 = '8086:100e';
const VGA = '1234:1111';
const PCI_BRIDGE = '1b36:0001';
/** The virtio-9p share the lab host writes its archives to, mounted at /out. */
const SHARE = '1af4:1009';

function commonChecks(name: string, l: { lab: LabResult; snapshot: HostSnapshot; analysis: Analysis }): void {
  const { lab, snapshot, analysis } = l;
  // Every function the lab's sysfs has, with its IDs.
  assert.deepEqual(analysis.devices.map((d) => d.device).sort(), lab.truth.functions.map((f) => f.bdf).sort(), `${name}: functions`);
  // Reset methods: the kernel's list, as the lab's sysfs says it.
  for (const f of lab.truth.functions) {
    const d = analysis.devices.find((x) => x.device === f.bdf)!;
    if (d.role === 'platform') continue;
    assert.deepEqual(d.reset?.methods ?? [], f.reset === '' ? [] : f.reset.split(','), `${name}: ${f.bdf} reset methods`);
  }
  // Host use: QEMU's nvme holds / (the lab's mount says so too), its e1000e the default route, its VGA the console.
  const nvme = byIds(lab, NVME)[0]!;
  const e1000e = byIds(lab, E1000E)[0]!;
  const vga = byIds(lab, VGA)[0]!;
  const share = byIds(lab, SHARE)[0]!;
  assert.match(lab.truth.rootSource, /nvme0n1/);
  assert.equal(lab.truth.routeDevice, 'eth0');
  const uses = (bdf: string): string[] => analysis.devices.find((d) => d.device === bdf)!.hostUse.map((u) => u.kind);
  assert.deepEqual(uses(nvme), ['boot-disk'], `${name}: ${nvme} is the boot disk`);
  assert.deepEqual(uses(e1000e), ['default-route'], `${name}: ${e1000e} carries the default route`);
  assert.deepEqual(uses(vga), ['console-gpu'], `${name}: ${vga} is the console`);
  assert.deepEqual(uses(share), ['mounted'], `${name}: ${share} is the 9p share mounted at /out`);
  for (const d of analysis.devices) if (![nvme, e1000e, vga, share].includes(d.device)) assert.deepEqual(d.hostUse, [], `${name}: ${d.device} is not the host's`);
  assert.equal(analysis.devices.find((d) => d.device === nvme)!.iommu.outcome, 'no', 'the boot disk cannot be passed');
  // INTx: where the analysis says each pin arrives is where Linux routed it once a driver (uio_pci_generic) asked.
  assert.ok(lab.truth.routed.size >= 4, `${name}: Linux routed INTx for the edu devices (${[...lab.truth.routed].join(' ')})`);
  for (const [bdf, gsi] of lab.truth.routed) {
    const d = analysis.devices.find((x) => x.device === bdf)!;
    assert.equal(d.intx.kind, 'routed', `${name}: ${bdf}: ${JSON.stringify(d.intx)}`);
    if (d.intx.kind === 'routed') assert.equal(d.intx.route.gsi, gsi, `${name}: ${bdf} INTx GSI`);
  }
  // Functions the analysis says share a line are exactly those Linux put on the same GSI.
  for (const [a, ga] of lab.truth.routed) {
    for (const [b, gb] of lab.truth.routed) {
      if (a === b) continue;
      const shares = analysis.devices.find((x) => x.device === a)!.intxSharers.some((s) => s.startsWith(b));
      assert.equal(shares, ga === gb, `${name}: ${a} and ${b} ${ga === gb ? 'share' : 'do not share'} GSI ${ga}/${gb}`);
    }
  }
  // What the collector could not read as root: nothing denied.
  assert.deepEqual(snapshot.unreadable.filter((u) => u.why === 'denied'), []);
}

test('lab host with VT-d: groups, reset methods, IOMMU state, INTx lines and host use equal the lab\'s sysfs and QEMU\'s configuration', (t) => {
  const l = get(t, 'q35-iommu');
  if (l === undefined) return;
  commonChecks('q35-iommu', l);
  const { lab, snapshot, analysis } = l;
  assert.equal(analysis.machine.iommu.on, true);
  assert.equal(analysis.machine.iommu.firmware, 'dmar');
  assert.deepEqual(analysis.machine.iommu.units, ['dmar0']);
  // Groups: the kernel's, member for member.
  for (const f of lab.truth.functions) {
    const d = analysis.devices.find((x) => x.device === f.bdf)!;
    assert.equal(String(d.iommuGroup), f.group, `${f.bdf} group`);
    if (d.group !== undefined) {
      assert.equal(d.group.source, 'kernel');
      assert.deepEqual(d.group.members.map((m) => m.device).sort(), lab.truth.functions.filter((x) => x.group === f.group).map((x) => x.bdf).sort(), `${f.bdf} group members`);
    }
  }
  // hvmpt's reading of ACS and bridges groups them as the kernel did.
  const pci = new HostPci(snapshot);
  assert.deepEqual(compareGroups(predictGroups(pci, 'actual'), pci), []);
  // QEMU's configuration: the conventional pci-bridge puts its edu and e1000 in its own group; the two functions of 00:13 share one.
  const bridge = byIds(lab, PCI_BRIDGE)[0]!;
  const behind = [...byIds(lab, EDU).filter((b) => !b.startsWith('0000:00:')), ...byIds(lab, E1000)];
  const group = (bdf: string): string => lab.truth.functions.find((f) => f.bdf === bdf)!.group;
  for (const b of behind) assert.equal(group(b), group(bridge), `${b} shares the pci-bridge's group`);
  assert.equal(group('0000:00:13.0'), group('0000:00:13.1'));
  assert.notEqual(group('0000:00:13.0'), group('0000:00:14.0'));
  // Devices behind the pcie-root-ports (with ACS) are alone.
  assert.match(JSON.stringify(analysis.devices.find((d) => d.device === byIds(lab, E1000E)[0])!.iommu.facts), /has ACS/);
  // The edu behind the bridge is passable once its group-mate e1000 leaves its driver.
  const edu = analysis.devices.find((d) => d.device === behind[0])!;
  assert.equal(edu.iommu.outcome, 'after-changes');
  assert.ok(edu.iommu.facts.some((f) => f.topic === 'group' && f.level === 'change' && f.text.includes(byIds(lab, E1000)[0]!)));
});

test('lab host without an IOMMU: IOMMU off (nothing in the firmware), and the groups hvmpt predicts are the ones the VT-d lab\'s kernel formed', (t) => {
  const l = get(t, 'q35-noiommu');
  const withIommu = get(t, 'q35-iommu');
  if (l === undefined || withIommu === undefined) return;
  commonChecks('q35-noiommu', l);
  const { lab, analysis } = l;
  assert.equal(analysis.machine.iommu.on, false);
  assert.equal(analysis.machine.iommu.firmware, 'none');
  for (const f of lab.truth.functions) assert.equal(f.group, '', 'no IOMMU groups in sysfs');
  for (const d of analysis.devices.filter((x) => x.role === 'endpoint')) {
    assert.equal(d.iommu.outcome, 'no');
    assert.ok(d.iommu.facts.some((f) => f.topic === 'iommu' && f.level === 'block'));
  }
  // Same topology, so the prediction must partition the functions as the VT-d lab's kernel did.
  const kernel = new Map<string, string[]>();
  for (const f of withIommu.lab.truth.functions) kernel.set(f.group, [...(kernel.get(f.group) ?? []), f.bdf]);
  for (const d of analysis.devices.filter((x) => x.group !== undefined)) {
    assert.equal(d.group!.source, 'predicted');
    const expected = [...kernel.values()].find((members) => members.includes(d.device))!;
    assert.deepEqual(d.group!.members.map((m) => m.device).sort(), expected.sort(), `${d.device}: predicted group`);
  }
  // Identity pass-through: the edu alone on its line is possible; the identity back-end is uio_pci_generic.
  assert.ok(analysis.machine.identityBackends.includes('uio') || analysis.machine.identityBackends.length === 0);
  assert.ok(analysis.changes.identity.kernelParams.some((p) => p.startsWith('memmap=')), `a memmap carve: ${analysis.changes.identity.kernelParams.join(' ')}`);
});

test('lab hosts: a collection as nobody gives the same functions with 64-byte configs and lists what root alone may read; --rom collects the NICs\' option ROMs', (t) => {
  const l = get(t, 'q35-iommu');
  if (l === undefined) return;
  const nobody = readSnapshot(readFactsTar(l.lab.nobody, 'nobody'));
  assert.equal(nobody.collector.uid, 65534);
  assert.deepEqual(nobody.pci.functions.map((f) => f.dir), l.snapshot.pci.functions.map((f) => f.dir));
  for (const f of nobody.pci.functions) assert.equal(f.config?.bytes.length, 64);
  assert.ok(nobody.unreadable.some((u) => u.why === 'denied' && u.path.startsWith('/sys/firmware/acpi/tables/')));
  const a = analyze(nobody, { windows: monitorWindows(1n << 30n), memory: 1n << 30n });
  assert.ok(a.machine.facts.some((f) => /without root/.test(f.text)));
  const rom = readSnapshot(readFactsTar(l.lab.rom, 'rom'));
  assert.equal(rom.collector.rom, true);
  for (const ids of [E1000E, E1000]) {
    const f = rom.pci.functions.find((x) => `${x.vendorId!.toString(16).padStart(4, '0')}:${x.deviceId!.toString(16).padStart(4, '0')}` === ids)!;
    // The kernel hands out the images the ROM holds (pci_get_rom_size), which may be less than the BAR decodes.
    assert.ok(f.rom !== undefined && f.rom.length > 0 && f.rom.length <= f.romSize!, `${ids}: ROM collected (${f.rom?.length} of ${f.romSize} bytes; ${JSON.stringify(rom.unreadable)})`);
    assert.deepEqual([...f.rom!.subarray(0, 2)], [0x55, 0xaa], `${ids}: an option ROM`);
  }
  process.stdout.write(`# collector inside the lab host (TCG): ${l.lab.collectSeconds.toFixed(1)} s\n`);
});

/** The plan less its pci.passthrough entries, which name the lab host's functions (this machine has none of them). */
function withoutPassthrough(p: Plan): Plan {
  return { ...p, pci: { ...p.pci, passthrough: [] } };
}

/** Writes a lab archive where the CLI can read it. */
function archiveFile(dir: string, lab: LabResult): string {
  const p = join(dir, `${lab.host.name}.tar`);
  writeFileSync(p, lab.root);
  return p;
}

test('P2V of the VT-d lab: every device the host can spare passed at its own address, what it keeps hidden from the bus and the host\'s tables, and the plan composes', (t) => {
  const l = get(t, 'q35-iommu');
  if (l === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-p2v-'));
  try {
    const plan = join(dir, 'p2v.yaml');
    const r = hvmpt(['plan', '--from', archiveFile(dir, l.lab), '--p2v', '--out', plan]);
    assert.equal(r.status, 0, r.stderr);
    const p = loadPlan(plan);
    const kept = [NVME, E1000E, VGA, SHARE].map((ids) => byIds(l.lab, ids)[0]!);
    const passed = (p.pci?.passthrough ?? []).map((e) => (e.host.kind === 'address' ? formatBdf(e.host.bdf, true) : ''));
    const spare = l.analysis.devices.filter((d) => d.role === 'endpoint' && !kept.includes(d.device)).map((d) => d.device);
    assert.deepEqual(passed.sort(), spare.sort(), 'everything the host does not need is passed');
    for (const e of p.pci?.passthrough ?? []) assert.equal(e.backend, 'vfio');
    // At its own place: on the root bus at its slot, or behind its own bridge.
    const edu = byIds(l.lab, EDU).find((b) => !b.startsWith('0000:00:'))!;
    const eduEntry = p.pci!.passthrough!.find((e) => e.host.kind === 'address' && formatBdf(e.host.bdf, true) === edu)!;
    assert.deepEqual(eduEntry.at, { kind: 'behind', bridge: formatBdf(parseBdf(byIds(l.lab, PCI_BRIDGE)[0]!)!), device: 1, fn: 0 });
    const hidden = (p.pci?.hide ?? []).map((h) => formatBdf(h.bdf!, true));
    for (const k of kept) assert.ok(hidden.includes(k), `${k} hidden`);
    assert.equal(p.acpi?.tables, 'host');
    const text = readFileSync(plan, 'utf8');
    assert.match(text, /# Differences from the real machine:/);
    for (const k of kept) assert.match(text, new RegExp(`${k.replace(/\./g, '\\.')} stays with the host and is hidden from the guest: the host uses it`));
    // The passed devices are the lab host's, which this machine does not have: the rest of the plan composes here.
    const m = composePlanFile(plan, withoutPassthrough(p));
    // The 9p share sits at 00:01.0, the monitor's PIIX3 slot: hidden all the same.
    assert.deepEqual(m.pci.hidden.map((e) => formatBdf(e.capturedBdf!, true)).sort(), [...new Set([...kept, '0000:00:00.0'])].sort());
    // The guest's tables are the host's, rewritten: no object for what the host keeps, no DMAR.
    assert.equal(m.acpi.source, 'host');
    assert.ok(!m.acpi.tables.some((x) => x.signature === 'DMAR'));
    assert.ok(m.acpi.summary.some((s) => /hidden: \\_SB_\.PCI0\.S10_/.test(s)), m.acpi.summary.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('export --host <the lab\'s collection>: host preparation from what the lab host has (its IOMMU on or off, IDs it keeps, its boot disk, the groups its kernel formed)', (t) => {
  const vtd = get(t, 'q35-iommu');
  const none = get(t, 'q35-noiommu');
  if (vtd === undefined || none === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-export-host-'));
  try {
    const edu = '0000:00:13.0';
    const mate = '0000:00:13.1';
    const nvme = byIds(vtd.lab, NVME)[0]!;
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: 256M }\nmachine: { boot: { kind: grub-report } }\npci:\n  passthrough:\n    - { name: edu, host: "${edu}" }\n    - { name: disk, host: "${nvme}" }\n`);
    const exported = (l: { lab: LabResult }, to: string): { out: string; err: string } => {
      const r = hvmpt(['export', plan, '--to', to, '--host', archiveFile(dir, l.lab), '--out', join(dir, `${l.lab.host.name}.${to}`)]);
      assert.equal(r.status, 0, r.stderr);
      return { out: readFileSync(join(dir, `${l.lab.host.name}.${to}`), 'utf8'), err: r.stderr };
    };
    const q = exported(vtd, 'qemu');
    assert.match(q.out, new RegExp(`^vfio-pci,id=edu,host=${edu.replace(/\./g, '\\.')},`, 'm'));
    // The VT-d lab booted with intel_iommu=on: nothing to add; the same IDs as three edus the host keeps: bound by address.
    assert.doesNotMatch(q.err, /kernel parameter intel_iommu=on/);
    assert.doesNotMatch(q.err, /vfio-pci\.ids=[^ ]*1234:11e8/);
    assert.match(q.err, /warning: 1234:11e8 is also the ID of a function the host keeps[^\n]*0000:00:13\.0 is bound by address/);
    assert.match(q.err, new RegExp(`before start: echo vfio-pci > /sys/bus/pci/devices/${edu.replace(/\./g, '\\.')}/driver_override`));
    // Its group as the lab host's own kernel formed it (its sysfs, read apart from the collector).
    const group = (bdf: string): string => vtd.lab.truth.functions.find((f) => f.bdf === bdf)!.group;
    const shared = group(edu) === group(mate);
    assert.equal(new RegExp(`pci\\.passthrough\\[0\\] \\(edu\\): IOMMU group ${group(edu)} also holds ${mate.replace(/\./g, '\\.')}`).test(q.err), shared, `group ${group(edu)} / ${group(mate)}: ${q.err}`);
    // The lab host's root filesystem is on that nvme: the analysis rules it out.
    assert.match(q.err, new RegExp(`pci\\.passthrough\\[1\\] \\(disk\\): ${nvme.replace(/\./g, '\\.')}: rules it out: [^\\n]*boots from`));
    // The same plan for the lab without an IOMMU: VFIO cannot work there, and the export says so for each device.
    const n = exported(none, 'libvirt');
    assert.match(n.out, /<!-- {3}warning: pci\.passthrough\[0\] \(edu\): 0000:00:13\.0: rules it out: no IOMMU/);
    assert.doesNotMatch(n.out, /intel_iommu=on/, 'its firmware describes no IOMMU: no parameter turns one on');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The lab's collection with its pci-bridge and the function at 00:01.0 trading places, every
 * path naming them renamed: the bridge (and what is behind it) in the monitor's PIIX3 slot, as
 * an Intel desktop's PEG port at 00:01.0 with its GPU behind.
 */
function bridgeInChipsetSlot(dir: string, lab: LabResult): { archive: string; bridge: string } {
  const files = readFactsTar(lab.root, 'lab');
  const bridge = byIds(lab, PCI_BRIDGE)[0]!;
  const other = '0000:00:01.0';
  const swap = (path: string): string => path.split('/').map((p) => (p === bridge ? other : p === other ? bridge : p)).join('/');
  const root = mkdtempSync(join(dir, 'tree-'));
  for (const path of files.paths()) {
    const full = join(root, 'hvmpt-facts', swap(path));
    mkdirSync(join(full, '..'), { recursive: true });
    const bytes = files.bytes(path)!;
    // Text files name functions too (the MANIFEST, link targets, groups): renamed alike.
    const binary = /\/config$|^sys\/firmware\/acpi\//.test(path);
    writeFileSync(full, binary ? bytes : Buffer.from(Buffer.from(bytes).toString('latin1').replace(/0000:00:[0-9a-f]{2}\.0/g, (m) => (m === bridge ? other : m === other ? bridge : m)), 'latin1'));
  }
  const archive = join(dir, 'swapped.tar');
  createTar({ file: archive, cwd: root, sync: true }, ['hvmpt-facts']);
  return { archive, bridge: other };
}

test('P2V with a bridge in the monitor\'s chipset slot: the bridge moves to a free slot with what is behind it, the passed functions follow it, and the plan composes', (t) => {
  const l = get(t, 'q35-iommu');
  if (l === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-p2v-slot-'));
  try {
    const { archive, bridge } = bridgeInChipsetSlot(dir, l.lab);
    const plan = join(dir, 'p2v.yaml');
    const r = hvmpt(['plan', '--from', archive, '--p2v', '--out', plan]);
    assert.equal(r.status, 0, r.stderr);
    const p = loadPlan(plan);
    const real = p.pci?.real ?? [];
    const moved = real.find((e) => e.bdf !== undefined && formatBdf(e.bdf, true) === bridge);
    assert.ok(moved, `the bridge ${bridge} is a pci.real entry: ${JSON.stringify(real)}`);
    assert.equal(moved.at.kind, 'root');
    if (moved.at.kind === 'root') assert.ok(moved.at.device >= 2, `a slot of its own, not the chipset's: ${JSON.stringify(moved.at)}`);
    // Behind it, the edu and the e1000 are passed, each at its own slot behind the moved bridge.
    const behind = (p.pci?.passthrough ?? []).filter((e) => e.at?.kind === 'behind');
    assert.deepEqual(behind.map((e) => (e.at?.kind === 'behind' ? `${e.at.bridge}/${e.at.device}.${e.at.fn}` : '')).sort(), [`${moved.name}/1.0`, `${moved.name}/2.0`]);
    assert.ok(!(p.pci?.hide ?? []).some((h) => formatBdf(h.bdf!, true) === bridge), 'the moved bridge is not hidden');
    assert.ok(!(p.machine.hostPci?.functions ?? []).some((f) => f === bridge), 'nor replayed at its own place');
    assert.match(readFileSync(plan, 'utf8'), new RegExp(`the bridge ${bridge.replace(/\./g, '\\.')} is at 00:[0-9a-f]{2}\\.0 in the guest, with what is below it`));
    const m = composePlanFile(plan, withoutPassthrough(p));
    const placed = m.pci.entries.find((e) => e.capturedBdf !== undefined && formatBdf(e.capturedBdf, true) === bridge);
    assert.ok(placed && placed.fn.device === (moved.at.kind === 'root' ? moved.at.device : -1), 'composed at its new slot');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plan from the lab without an IOMMU: identity memory carved from its E820, uio back-ends; --pass refuses a device the analysis rules out', (t) => {
  const l = get(t, 'q35-noiommu');
  if (l === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-identity-'));
  try {
    const archive = archiveFile(dir, l.lab);
    const plan = join(dir, 'identity.yaml');
    const r = hvmpt(['plan', '--from', archive, '--out', plan]);
    assert.equal(r.status, 0, r.stderr);
    const p = loadPlan(plan);
    assert.equal(p.memory.layout, 'identity');
    assert.ok(p.machine.hostMap !== undefined);
    const passable = l.analysis.devices.filter((d) => d.role === 'endpoint' && d.hostUse.length === 0 && d.identity.outcome !== 'no').map((d) => d.device);
    assert.deepEqual((p.pci?.passthrough ?? []).map((e) => (e.host.kind === 'address' ? formatBdf(e.host.bdf, true) : '')).sort(), passable.sort());
    for (const e of p.pci?.passthrough ?? []) assert.equal(e.backend, 'uio');
    const m = composePlanFile(plan, withoutPassthrough(p));
    assert.match(m.summary.join('\n'), /identity layout from .*host-e820\.json.*memmap=/);
    // A device whose INTx line a host driver also uses cannot be passed without an IOMMU.
    const blocked = l.analysis.devices.find((d) => d.role === 'endpoint' && d.hostUse.length === 0 && d.identity.outcome === 'no')!;
    const refused = hvmpt(['plan', '--from', archive, '--pass', blocked.device, '--out', join(dir, 'no.yaml')]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`${blocked.device.replace(/\./g, '\\.')}: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the twin of a lab host: composed, lspci -vvv -F reads it as the lab\'s own functions less the documented differences', (t) => {
  const l = get(t, 'q35-iommu');
  if (l === undefined || !skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-labtwin-'));
  try {
    const plan = join(dir, 'twin.yaml');
    const r = hvmpt(['plan', '--from', archiveFile(dir, l.lab), '--twin', '--out', plan]);
    assert.equal(r.status, 0, r.stderr);
    const m = composePlanFile(plan);
    const twinDump = join(dir, 'twin.lspci');
    writeFileSync(twinDump, writeLspciDump(m.pci));
    // The source: the lab's config spaces as lspci reads them from the collection's sysfs copy.
    const source = join(dir, 'source.lspci');
    const s = l.snapshot;
    writeFileSync(source, writeLspciDump(composePci({ base: s.pci.capture! }, 'lab')));
    compareTwin(lspciBlocks(source), lspciBlocks(twinDump), twinMoves(plan, source));
    assert.equal(m.acpi.source, 'host');
    assert.match(m.summary.join('\n'), /identity layout/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
