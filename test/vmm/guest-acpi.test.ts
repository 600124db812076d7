import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCapture } from '../../src/host/pci/load.js';
import { formatAcpidump, parseAcpidump } from '../../src/hw/acpi/dump/acpidump.js';
import { generateGuestTables } from '../../src/hw/acpi/generate/generate.js';
import { pciFactsFromTopology } from '../../src/hw/acpi/generate/pci.js';
import { readResources } from '../../src/hw/acpi/namespace/crs.js';
import type { AcpiNamespace } from '../../src/hw/acpi/namespace/namespace.js';
import { readPrt } from '../../src/hw/acpi/namespace/prt.js';
import { decodeTable, type Fadt, type Madt, type Mcfg } from '../../src/hw/acpi/tables/index.js';
import { devicesAtPciPath, loadWorld, worldNamespace } from '../../src/hw/acpi/world/index.js';
import { AcpiPm, PM1_CNT, PM1_EN, PM1_STS, PM_TMR } from '../../src/hw/chipset/acpi-pm.js';
import { ACPI_TABLES_FILE } from '../../src/hw/chipset/acpi-table-loader.js';
import { ResetControl } from '../../src/hw/chipset/reset-control.js';
import type { SystemControl } from '../../src/hw/chipset/system.js';
import { PirqRouter } from '../../src/hw/irq/pirq.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { intxRoute } from '../../src/hw/pci/intx.js';
import { PlanError } from '../../src/plan/load.js';
import { loadPlan } from '../../src/plan/schema.js';
import type { ComposedMachine } from '../../src/platform/compose.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import type { GuestAcpiTable } from '../../src/platform/guest-acpi.js';
import { defaultPcRouting } from '../../src/vmm/kvm/vm.js';
import { decodeStructures } from '../../src/hw/smbios/decode.js';
import { ECAM_BUSES } from '../../src/platform/pci-platform.js';
import { fixture, REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';

/**
 * The guest's ACPI tables on the monitor, checked against what the monitor does (no guest
 * runs here; the acceptance test boots the same tables under SeaBIOS and GRUB, and
 * intx-prt.test.ts sends interrupts through the _PRT):
 * MCFG and the E820 and the DSDT's reservation = the ECAM window the monitor decodes; the
 * FADT's PM block and reset register = the chipset models; \_S5 = the sleep type the PM block
 * powers off on; the MADT = the vCPUs and KVM's IOAPIC and GSI routing; the _PRT = the PIIX3
 * PIRQ routing of the monitor's PirqRouter for every function on the composed bus; and hidden
 * functions are absent from every table the guest gets, generated or the host's.
 */

const DESKTOP = join(REPO_ROOT, 'examples', 'desktop.yaml');


/** A plan in a scratch directory, with a stand-in firmware and kernel: composing reads them, nothing boots. */
function scratchPlan(yaml: string, files: Record<string, Uint8Array | string> = {}): { file: string; dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-guest-acpi-'));
  writeFileSync(join(dir, 'fw.bin'), new Uint8Array(0x10000));
  writeFileSync(join(dir, 'kernel'), new Uint8Array(4096));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  const file = join(dir, 'plan.yaml');
  writeFileSync(file, yaml);
  return { file, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const MACHINE = 'machine:\n  firmware: fw.bin\n  boot: { kind: linux, kernel: kernel }\n';

function namespaceOf(tables: readonly GuestAcpiTable[]): AcpiNamespace {
  const images = tables.filter((t) => t.signature === 'DSDT' || t.signature === 'SSDT').map((t, i) => ({ name: `${t.signature.toLowerCase()}${i}`, origin: t.from, signature: t.signature, data: t.bytes }));
  return worldNamespace(loadWorld(images));
}

function table<T>(c: ComposedMachine, sig: string): T {
  const t = c.acpi.tables.find((x) => x.signature === sig);
  assert.ok(t !== undefined, `${sig} is given to the guest`);
  return decodeTable(t.bytes) as T;
}

function system(): SystemControl & { events: string[] } {
  const events: string[] = [];
  return { events, reset: (s) => void events.push(`reset ${s}`), powerOff: (s) => void events.push(`poweroff ${s}`) };
}

test('generated tables say what the monitor does: ECAM, PM block, reset, \\_S5, vCPUs, IOAPIC, windows', (t) => {
  if (!skipUnlessBootFirmware(t, true)) return;
  const c = composePlanFile(DESKTOP);
  assert.equal(c.acpi.source, 'generated');
  const ecam = c.config.pci!.ecamBase;
  const ecamEnd = ecam + BigInt(ECAM_BUSES) * 0x10_0000n;

  // MCFG = the window the monitor's ECAM decoder serves; the E820 and the DSDT reserve it.
  const mcfg = table<Mcfg>(c, 'MCFG');
  assert.deepEqual(mcfg.allocations, [{ baseAddress: ecam, segment: 0, startBus: 0, endBus: ECAM_BUSES - 1, reserved: 0 }]);
  assert.ok(c.e820.some((e) => e.type === 'reserved' && e.start <= ecam && ecamEnd <= e.end), 'the E820 reserves the ECAM window');
  assert.ok(c.config.e820!.some((e) => e.type === 'reserved' && e.start <= ecam && ecamEnd <= e.end), 'etc/e820 carries it');
  const ns = namespaceOf(c.acpi.tables);
  const mres = readResources(ns, '\\_SB.MRES');
  assert.ok(mres?.kind === 'template');
  assert.deepEqual(mres.template.resources, [{ type: 'FixedMemory32', writable: false, base: Number(ecam), length: 0x1000_0000 }]);

  // The host bridge's _CRS is the windows the monitor checks BARs against, clear of RAM and ECAM.
  const crs = readResources(ns, '\\_SB.PCI0');
  assert.ok(crs?.kind === 'template');
  const windows = crs.template.resources.flatMap((r) => (r.type === 'AddressSpace' && r.space.kind === 'memory' && r.min >= 0x10_0000n ? [{ start: r.min, end: r.max + 1n }] : []));
  assert.deepEqual(windows, [
    { start: c.windows.mem32.base, end: c.windows.mem32.limit + 1n },
    { start: c.windows.mem64!.base, end: c.windows.mem64!.limit + 1n },
  ]);
  for (const w of windows) {
    assert.ok(!(w.start < ecamEnd && ecam < w.end), 'no window over ECAM');
    assert.ok(!c.config.ram.ranges.some((r) => w.start < r.end && r.start < w.end), 'no window over RAM');
  }

  // FADT: the PM block where the monitor serves it, laid out as acpi-pm.ts decodes it; the
  // reset register is the PIIX3 reset control, and its value resets.
  const fadt = table<Fadt>(c, 'FACP');
  const base = c.config.acpiPmBase!;
  assert.deepEqual(
    [fadt.pm1aEventBlock, fadt.pm1EventLength, fadt.pm1aControlBlock, fadt.pm1ControlLength, fadt.pmTimerBlock, fadt.pmTimerLength],
    [base + PM1_STS, PM1_CNT - PM1_STS, base + PM1_CNT, 2, base + PM_TMR, 4],
  );
  assert.equal(PM1_EN, 2, 'PM1a_EVT is status then enable, two bytes each');
  assert.deepEqual([fadt.xPm1aControlBlock?.address, fadt.xPmTimerBlock?.address], [BigInt(base + PM1_CNT), BigInt(base + PM_TMR)]);
  const sys = system();
  new ResetControl(sys).writePort(Number(fadt.resetRegister!.address), 1, fadt.resetValue!);
  assert.match(sys.events[0] ?? '', /reset port 0xcf9/);
  assert.equal(Number(fadt.resetRegister!.address), 0xcf9);

  // \_S5: what the OS writes to PM1a_CNT for soft-off is what the PM block powers off on.
  const s5 = ns.valueOf(ns.get('\\_S5_'));
  assert.ok(s5?.kind === 'Package' && s5.elements[0]?.kind === 'Integer');
  const slpTyp = Number(s5.elements[0].value);
  assert.equal(slpTyp, c.config.s5SleepType);
  const pmSys = system();
  const pm = new AcpiPm(base, pmSys, { s5SleepType: c.config.s5SleepType ?? 0, nowNs: () => 0n });
  pm.writePort(fadt.pm1aControlBlock, 2, (slpTyp << 10) | 0x2000);
  assert.deepEqual(pmSys.events, [`poweroff ACPI PM1a_CNT SLP_EN with SLP_TYP ${slpTyp} (S5)`]);

  // MADT: one enabled Local APIC per vCPU the monitor runs, APIC ID = vCPU ID (KVM's in-kernel
  // LAPICs); KVM's in-kernel IOAPIC (ID 0 at 0xFEC00000); IRQ 0 on GSI 2, which is where the
  // monitor's GSI routing sends the PIT.
  const madt = table<Madt>(c, 'APIC');
  const lapics = (m: Madt): number[][] => m.entries.flatMap((e) => (e.type === 'localApic' ? [[e.processorUid, e.apicId, e.flags & 1]] : []));
  const plan = loadPlan(DESKTOP);
  assert.equal(plan.machine.cpus, 2);
  assert.deepEqual(lapics(madt), [[0, 0, 1], [1, 1, 1]]);
  const smp = composePlanFile(DESKTOP, { ...plan, machine: { ...plan.machine, cpus: 3 } });
  assert.equal(smp.config.cpus, 3);
  assert.deepEqual(lapics(table<Madt>(smp, 'APIC')), [[0, 0, 1], [1, 1, 1], [2, 2, 1]]);
  assert.equal(namespaceOf(smp.acpi.tables).findByHid('ACPI0007').length, 3);
  // SMBIOS: the three vCPUs are the cores of one processor (type 4: core count at 0x23, threads at 0x25).
  const smbios = decodeStructures(smp.config.fwCfgFiles!.find((f) => f.name === 'etc/smbios/smbios-tables')!.data);
  assert.deepEqual(smbios.filter((x) => x.type === 4).map((x) => [x.formatted[0x23], x.formatted[0x25]]), [[3, 3]]);
  assert.deepEqual(madt.entries.filter((e) => e.type === 'ioApic').map((e) => [e.ioApicId, e.address, e.gsiBase]), [[0, 0xfec0_0000, 0]]);
  const irq0 = madt.entries.find((e) => e.type === 'interruptOverride' && e.source === 0);
  assert.ok(irq0?.type === 'interruptOverride');
  assert.ok(defaultPcRouting().some((r) => r.kind === 'irqchip' && r.chip === 'ioapic' && r.gsi === 0 && r.pin === irq0.gsi));
  assert.ok(!defaultPcRouting().some((r) => r.kind === 'irqchip' && r.chip === 'ioapic' && r.gsi === 2), 'nothing else on pin 2');
});

test('the generated _PRT routes every function of the composed bus the way the monitor\'s PIIX3 PIRQ router does', (t) => {
  if (!skipUnlessBootFirmware(t, true)) return;
  const c = composePlanFile(DESKTOP);
  const prt = readPrt(namespaceOf(c.acpi.tables), '\\_SB.PCI0');
  assert.ok(prt?.kind === 'by-model');
  const apic = new Map(prt.apic.entries.map((e) => [`${e.device}/${e.pin}`, e.source.kind === 'gsi' ? e.source.gsi : -1]));
  const pic = new Map(prt.pic.entries.map((e) => [`${e.device}/${e.pin}`, e.source.kind === 'link' ? e.source.path : '']));
  // The IRQs the PIRQ registers get: SeaBIOS's (pci_irqs[] in its pciinit.c), which \_PIC (1) also writes.
  const seabiosIrqs = [10, 10, 11, 11];
  const topology = c.pci.topology;
  let routed = 0;
  for (const { fn } of topology.reachable()) {
    const route = intxRoute(topology, fn);
    if (route === undefined) continue;
    const pirq = PirqRouter.pirqOf(route.rootDevice, route.rootPin);
    const key = `${route.rootDevice}/${route.rootPin - 1}`;
    assert.equal(apic.get(key), seabiosIrqs[pirq], `${fn.id}: APIC-mode GSI of slot ${route.rootDevice} pin ${route.rootPin}`);
    assert.equal(pic.get(key), `\\_SB_.LNK${'ABCD'[pirq]}`, `${fn.id}: PIC-mode link`);
    routed++;
  }
  assert.ok(routed >= 4, `functions with an INTx pin: ${routed} (the e1000, the device behind the fake bridge, the NIC behind a root port, the root ports)`);
  assert.equal(apic.size, new Set([...apic.keys()]).size);
  // No entry for a slot pin nothing uses.
  const used = new Set(topology.reachable().flatMap(({ fn }) => {
    const r = intxRoute(topology, fn);
    return r === undefined ? [] : [`${r.rootDevice}/${r.rootPin - 1}`];
  }));
  assert.deepEqual([...apic.keys()].sort(), [...used].sort());
});

test('the desktop plan\'s hidden SMBus is in none of the tables the guest gets', (t) => {
  if (!skipUnlessBootFirmware(t, true)) return;
  const c = composePlanFile(DESKTOP);
  const hidden = c.pci.hidden.map((e) => e.capturedBdf!);
  assert.equal(hidden.length, 1);
  const ns = namespaceOf(c.acpi.tables);
  // The hidden function has no guest address; nothing may sit at its host one either.
  for (const b of hidden) {
    assert.deepEqual(devicesAtPciPath(ns, { segment: 0, bus: 0, hops: [{ device: b.device, fn: b.fn }] }), []);
    assert.ok(!ns.findByAdr(((b.device << 16) | b.fn) >>> 0).length, 'no object with its _ADR');
  }
  const prt = readPrt(ns, '\\_SB.PCI0');
  assert.ok(prt?.kind === 'by-model' && !prt.apic.entries.some((e) => e.device === hidden[0]!.device), 'no _PRT entry for its slot');
});

test('host tables (acpi.tables: host): a function pci.hide hides is absent from every table the guest gets', (t) => {
  if (!skipUnlessBootFirmware(t, false)) return;
  const capture = fixture('pci', 'pciutils-tests', 'tree-asus-p6t6');
  const x230 = fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt');
  // The ThinkPad X230's own tables, with the PCH SMBus at 00:1f.3 (\_SB.PCI0.SMBU), on a bus
  // whose 00:1f.3 the plan hides: the same PCI address, so the same function to the rules.
  const hostPlan = (extra: string): string =>
    `memory: { size: 64M }\npci:\n  hide: [{ bdf: "00:1f.3" }]\n${extra}${MACHINE}  acpiTables: ${x230}\n  hostPci: { capture: ${capture}, functions: ["00:1c.0", "00:1f.3"] }\n`;
  const p = scratchPlan(hostPlan('acpi: { tables: host, pciHidden: { references: neutralize } }\n'));
  try {
    const c = composePlanFile(p.file);
    assert.equal(c.acpi.source, 'host');
    const before = worldNamespace(loadWorld(parseAcpidump(readFileSync(x230, 'latin1'), x230)));
    assert.ok(before.get('\\_SB_.PCI0.SMBU') !== undefined, 'the X230 describes its SMBus');
    const ns = namespaceOf(c.acpi.tables);
    assert.equal(ns.get('\\_SB_.PCI0.SMBU'), undefined);
    assert.deepEqual(devicesAtPciPath(ns, { segment: 0, bus: 0, hops: [{ device: 0x1f, fn: 3 }] }), []);
    // Nowhere in what fw_cfg hands the firmware does the name appear.
    const blob = Buffer.from(c.config.fwCfgFiles!.find((f) => f.name === ACPI_TABLES_FILE)!.data);
    assert.equal(blob.indexOf('SMBU'), -1, 'no trace of SMBU in etc/acpi/tables');
    assert.ok(c.acpi.tables.length >= 20, 'the host\'s other tables are there');
    // The monitor would serve the PM block where the host FADT puts it, but the X230's (0x400)
    // overlaps the debug console at 0x402: the run says so instead of pretending.
    const fadt = decodeTable(c.acpi.tables.find((x) => x.signature === 'FACP')!.bytes) as Fadt;
    assert.equal(fadt.pm1aEventBlock, 0x400);
    assert.equal(c.config.acpiPmBase, 0x600);
    assert.ok(c.summary.some((l) => /cannot serve the host FADT's PM1a block: .*overlaps the debug console at 0x402/.test(l)), c.summary.join('\n'));
    // \_S5 is read from the host's DSDT (the X230 powers off with SLP_TYP 7).
    assert.equal(c.config.s5SleepType, 7);
    // The PCH's GPE0 block answers quiet: unclaimed, its status would read all ones and run
    // every _Lxx/_Exx of the host's DSDT against hardware the guest does not have.
    assert.ok(fadt.gpe0Block !== 0 && fadt.gpe0BlockLength > 0);
    assert.deepEqual(c.config.quietGpe, [{ base: fadt.gpe0Block, length: fadt.gpe0BlockLength }]);
    assert.ok(c.summary.some((l) => l.includes(`GPE blocks ([0x${fadt.gpe0Block.toString(16)}, `)), c.summary.join('\n'));
  } finally {
    p.done();
  }
});

test('exposed host tables: an SSDT loads on the generated namespace without the hidden function; a raw table naming it is refused', (t) => {
  if (!skipUnlessBootFirmware(t, false)) return;
  // A host whose tables describe every function of a real capture (as its firmware's would),
  // with an SSDT that references the SMBus at 00:1f.3 and a vendor table naming its path.
  const captureFile = fixture('pci', 'pciutils-tests', 'tree-asus-p6t6');
  const host = composePci({ base: loadCapture(captureFile) }, 'capture');
  const smbus = '\\_SB.PCI0.SFB'; // the generator's name for 00:1f.3
  const hostTables = generateGuestTables({
    cpus: 1,
    pci: pciFactsFromTopology(host.topology),
    ssdts: [
      {
        kind: 'spec',
        oemTableId: 'HOSTDEV',
        body: [
          { external: smbus, type: 'device' },
          { scope: '\\_SB', body: [{ device: 'HVMX', hid: 'HVM0002', uid: 0, sta: 0x0f, body: [{ method: '_INI', body: [{ notify: smbus, value: 0 }] }] }] },
        ],
      },
    ],
  });
  const vendor = new Uint8Array(64);
  vendor.set(Buffer.from('OEMX'), 0);
  new DataView(vendor.buffer).setUint32(4, 64, true);
  vendor.set(Buffer.from('\\_SB.PCI0.SFB'), 40);
  vendor[9] = (256 - vendor.reduce((s, x) => (s + x) & 0xff, 0)) & 0xff;
  const images = [...hostTables.tables.filter((x) => !['RSDP', 'RSDT', 'XSDT'].includes(x.signature)).map((x) => ({ signature: x.signature, data: x.bytes })), { signature: 'OEMX', data: vendor }];
  const dump = formatAcpidump(images);
  const plan = (expose: string): string =>
    `memory: { size: 64M }\npci:\n  hide: [{ bdf: "00:1f.3" }]\nacpi:\n  pciHidden: { references: neutralize }\n  expose: ${expose}\n${MACHINE}  acpiTables: host.acpidump\n  hostPci: { capture: ${captureFile}, functions: ["00:1c.0", "00:1f.3"] }\n`;
  const p = scratchPlan(plan('[{ signature: SSDT, oemTableId: HOSTDEV }]'), { 'host.acpidump': dump });
  try {
    const c = composePlanFile(p.file);
    const exposed = c.acpi.tables.filter((x) => x.origin === 'host');
    assert.deepEqual(exposed.map((x) => `${x.signature} ${x.oemTableId.trimEnd()}`), ['SSDT HOSTDEV']);
    const ns = namespaceOf(c.acpi.tables);
    assert.equal(ns.hid(ns.require('\\_SB_.HVMX')), 'HVM0002', 'the exposed device is in the guest\'s namespace');
    assert.equal(ns.get('\\_SB_.PCI0.SFB_'), undefined);
    for (const x of c.acpi.tables) assert.equal(Buffer.from(x.bytes).indexOf('SFB_'), -1, `${x.signature} ${x.from}: no trace of the hidden function's object`);
    // The raw vendor table spells the hidden path: refused, naming the plan entry.
    writeFileSync(p.file, plan('[{ signature: SSDT, oemTableId: HOSTDEV }, { signature: OEMX }]'));
    assert.throws(
      () => composePlanFile(p.file),
      (e: unknown) => e instanceof PlanError && e.problems.some((x) => x.path === 'acpi.expose[1]' && /names \\_SB_?\.PCI0\.SFB_?, which the plan hides/.test(x.message)),
    );
  } finally {
    p.done();
  }
});

test('plan errors in the acpi section name their paths, before anything runs', (t) => {
  if (!skipUnlessBootFirmware(t, false)) return;
  const x230 = fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt');
  const cases: Array<[string, string[]]> = [
    [
      'acpi:\n  generate:\n    cpus: 2\n    hpet: { address: 0xfed00000 }\n    ioApic: { address: 0xfec01000 }\n    com1: { port: 0x2f8 }\n    pm: { base: 0x3f8 }\n    layout: { tablesAddress: 0xe0000 }\n    reset: { value: 2 }\n',
      ['acpi.generate.cpus', 'acpi.generate.hpet', 'acpi.generate.ioApic.address', 'acpi.generate.com1.port', 'acpi.generate.pm.base', 'acpi.generate.layout', 'acpi.generate.reset.value'],
    ],
    ['acpi:\n  rules: [{ action: hide-table, signature: DMAR }]\n', ['acpi.rules']],
    ['acpi:\n  tables: host\n', ['acpi.tables']],
    ['acpi:\n  generate: { interrupts: { pirqIrqs: [4, 10, 11, 11] } }\n', ['acpi.generate.interrupts.pirqIrqs[0]']],
  ];
  const refused = (text: string, paths: readonly string[], what: string): void => {
    const p = scratchPlan(text);
    try {
      assert.throws(
        () => composePlanFile(p.file),
        (e: unknown) => e instanceof PlanError && paths.every((path) => e.problems.some((x) => x.path === path)),
        what,
      );
    } finally {
      p.done();
    }
  };
  for (const [acpi, paths] of cases) refused(`memory: { size: 64M }\n${acpi}${MACHINE}`, paths, acpi);
  // Host tables the plan never uses, exposing a table hvmpt generates or the host's IOMMU.
  const host = [
    ['', ['machine.acpiTables']],
    ['acpi:\n  expose: [{ signature: FACP }, { signature: DMAR }, { signature: SSDT, oemTableId: NOSUCH }]\n', ['acpi.expose[0].signature', 'acpi.expose[1].signature', 'acpi.expose[2]']],
    ['acpi:\n  expose: [{ signature: SSDT, oemTableId: SataAhci }]\n', ['acpi.expose[0]']],
  ] as const;
  for (const [acpi, paths] of host) refused(`memory: { size: 64M }\n${acpi}${MACHINE}  acpiTables: ${x230}\n`, paths, acpi);
  // Through the CLI: exit 1, the plan file and the path in the message, nothing run.
  const p = scratchPlan(`memory: { size: 64M }\nacpi:\n  generate: { cpus: 4 }\n${MACHINE}`);
  try {
    const r = hvmpt(['run', p.file]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /plan\.yaml: acpi\.generate\.cpus: the monitor runs 1 vCPU \(machine\.cpus\)/);
  } finally {
    p.done();
  }
});

test('machine.ecamBase and the generated MCFG name one window; the ECAM must end below the IOAPIC', (t) => {
  if (!skipUnlessBootFirmware(t, false)) return;
  const p = scratchPlan(`memory: { size: 64M }\nacpi:\n  generate: { ecam: { base: 0xa0000000 } }\n${MACHINE}`);
  try {
    // Only the tables name it: the monitor decodes it there.
    const c = composePlanFile(p.file);
    assert.equal(c.config.pci!.ecamBase, 0xa000_0000n);
    assert.equal((table<Mcfg>(c, 'MCFG')).allocations[0]!.baseAddress, 0xa000_0000n);
    writeFileSync(p.file, `memory: { size: 64M }\nacpi:\n  generate: { ecam: { base: 0xa0000000 } }\n${MACHINE}  ecamBase: 0xb0000000\n`);
    assert.throws(() => composePlanFile(p.file), (e: unknown) => e instanceof PlanError && e.problems.some((x) => x.path === 'acpi.generate.ecam.base'));
    writeFileSync(p.file, `memory: { size: 64M }\n${MACHINE}  ecamBase: 0xf0000000\n`);
    assert.throws(() => loadPlan(p.file), (e: unknown) => e instanceof PlanError && e.problems.some((x) => x.path === 'machine.ecamBase'));
    // ecam: false leaves the MCFG out (the guest uses CF8/CFC); the window stays reserved.
    writeFileSync(p.file, `memory: { size: 64M }\nacpi:\n  generate: { ecam: false }\n${MACHINE}`);
    const none = composePlanFile(p.file);
    assert.ok(!none.acpi.tables.some((x) => x.signature === 'MCFG'));
  } finally {
    p.done();
  }
});
