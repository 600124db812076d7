import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAml } from '../../../src/hw/acpi/aml/parse.js';
import { generateGuestTables, type GeneratedTables } from '../../../src/hw/acpi/generate/generate.js';
import { GuestFactsError, type GuestAcpiFacts } from '../../../src/hw/acpi/generate/facts.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { readPrt } from '../../../src/hw/acpi/namespace/prt.js';
import { readResources } from '../../../src/hw/acpi/namespace/crs.js';
import type { Fadt } from '../../../src/hw/acpi/tables/fadt.js';
import type { Madt } from '../../../src/hw/acpi/tables/madt.js';
import type { Rsdp } from '../../../src/hw/acpi/tables/rsdp.js';
import type { Rsdt, Xsdt } from '../../../src/hw/acpi/tables/sdt.js';
import { decodeTable, encodeTable, tableChecksumOk, traceTable } from '../../../src/hw/acpi/tables/table.js';
import { devicesAtPciPath, formatPciPath } from '../../../src/hw/acpi/world/select.js';
import { linkAcpiTables } from '../../../src/hw/chipset/acpi-table-loader.js';
import { formatBdf } from '../../../src/hw/pci/address.js';
import { intxRoutes } from '../../../src/hw/pci/intx.js';
import { loadCapture } from '../../../src/host/pci/load.js';
import { generateFacts, hiddenPciPaths } from '../../../src/plan/acpi.js';
import { loadAcpiPlan } from '../../../src/host/plan/acpi.js';
import { fixture, REPO_ROOT } from '../../helpers/paths.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { compileAsl, disassembleTable } from '../aml/asl.js';
import { acpiexec } from './acpiexec.js';
import { HEADER_LENGTH } from '../aml/fixtures.js';
import { NAMES, compareFields, parseAcpicaFields, rsdpSource } from '../tables/acpica.js';
import { compile, scratch } from '../tables/iasl.js';

/**
 * The guest's generated tables, held against things nobody here wrote: ACPICA's disassembler
 * reads every one field by field as the model says, recompiles the DSDT's disassembly to the
 * same AML, and acpiexec runs _PIC and _PRT to the routing the PCI core computed for the plan's
 * bus (intxRoutes) with the PIIX3's PIRQ mapping written out independently here.
 */

const guestPlan = join(REPO_ROOT, 'examples', 'acpi', 'guest.yaml');

function generateFromPlan(): { generated: GeneratedTables; plan: ReturnType<typeof loadAcpiPlan> } {
  const plan = loadAcpiPlan(guestPlan);
  return { generated: generateGuestTables(generateFacts(plan)), plan };
}

function byName(g: GeneratedTables, name: string) {
  const t = g.tables.find((x) => x.name === name);
  assert.ok(t !== undefined, `a ${name} table`);
  return t;
}

/** The routing the plan's bus needs: each (root slot, pin) in use, its GSI by the PIIX3 swizzle and SeaBIOS's IRQs. */
function expectedRoutes(plan: ReturnType<typeof loadAcpiPlan>): Array<{ slot: number; pin: number; gsi: number; link: string }> {
  const irqs = [10, 10, 11, 11];
  const seen = new Map<string, { slot: number; pin: number; gsi: number; link: string }>();
  for (const r of intxRoutes(plan.pci!.topology)) {
    // PIIX3: slot 1 INTA is PIRQB, slot 2 INTA is PIRQC, …
    const pirq = (r.rootDevice + r.rootPin - 2) % 4;
    seen.set(`${r.rootDevice}/${r.rootPin}`, { slot: r.rootDevice, pin: r.rootPin - 1, gsi: irqs[pirq]!, link: `LNK${'ABCD'[pirq]}` });
  }
  return [...seen.values()].sort((a, b) => a.slot - b.slot || a.pin - b.pin);
}

test('the generated tables decode, re-encode to themselves, and link to each other at the layout addresses', () => {
  const { generated: g } = generateFromPlan();
  assert.deepEqual(
    g.tables.map((t) => t.name),
    ['rsdp', 'xsdt', 'rsdt', 'facp', 'facs', 'dsdt', 'apic', 'mcfg', 'ssdt'],
  );
  for (const t of g.tables) {
    const back = decodeTable(t.bytes);
    assert.deepEqual(encodeTable(back), t.bytes, `${t.name} re-encodes`);
    if (t.signature !== 'RSDP' && t.signature !== 'FACS') assert.ok(tableChecksumOk(t.bytes), `${t.name} checksum`);
  }
  const at = (sig: string): bigint => g.tables.find((t) => t.signature === sig)!.address;
  const rsdp = decodeTable(byName(g, 'rsdp').bytes) as Rsdp;
  assert.equal(rsdp.revision, 2);
  assert.equal(rsdp.xsdtAddress, at('XSDT'));
  assert.equal(BigInt(rsdp.rsdtAddress), at('RSDT'));
  const listed = ['FACP', 'APIC', 'MCFG', 'SSDT'].map(at);
  assert.deepEqual((decodeTable(byName(g, 'xsdt').bytes) as Xsdt).entries, listed);
  assert.deepEqual((decodeTable(byName(g, 'rsdt').bytes) as Rsdt).entries.map(BigInt), listed);
  const fadt = decodeTable(byName(g, 'facp').bytes) as Fadt;
  assert.equal(BigInt(fadt.dsdt), at('DSDT'));
  assert.equal(fadt.xDsdt, at('DSDT'));
  assert.equal(BigInt(fadt.firmwareCtrl), at('FACS'));
  assert.equal(at('FACS') % 64n, 0n, 'FACS 64-byte aligned');
  // Tables do not overlap.
  const spans = g.tables.filter((t) => t.signature !== 'RSDP').map((t) => [t.address, t.address + BigInt(t.bytes.length)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![1]);
  // What the monitor's table loader takes: no root tables, FADT/FACS/DSDT first, the FADT's
  // 64-bit FACS pointer 0 so the loader's 32-bit patch is the one the OS uses.
  assert.deepEqual(g.loaderTables.map((b) => String.fromCharCode(...b.subarray(0, 4))), ['FACP', 'FACS', 'DSDT', 'APIC', 'MCFG', 'SSDT']);
  assert.equal((decodeTable(g.loaderTables[0]!) as Fadt).xFirmwareCtrl, 0n);
});

test('the FADT, MADT and MCFG say what the monitor emulates', () => {
  const { generated: g } = generateFromPlan();
  const fadt = decodeTable(byName(g, 'facp').bytes) as Fadt;
  assert.equal(fadt.header.revision, 6);
  assert.deepEqual([fadt.pm1aEventBlock, fadt.pm1aControlBlock, fadt.pmTimerBlock], [0x600, 0x604, 0x608]);
  assert.deepEqual([fadt.pm1EventLength, fadt.pm1ControlLength, fadt.pmTimerLength], [4, 2, 4]);
  assert.equal(fadt.sciInterrupt, 9);
  assert.equal(fadt.smiCommand, 0, 'SCI_EN is always set: no SMI command port');
  assert.equal(fadt.xPm1aEventBlock?.address, 0x600n);
  assert.equal(fadt.xPmTimerBlock?.bitWidth, 32);
  assert.deepEqual([fadt.resetRegister?.spaceId, fadt.resetRegister?.address, fadt.resetValue], [1, 0xcf9n, 0x06]);
  assert.ok((fadt.flags & (1 << 10)) !== 0, 'RESET_REG_SUP');
  assert.equal(fadt.flags & (1 << 8), 0, 'a 24-bit PM timer');
  const madt = decodeTable(byName(g, 'apic').bytes) as Madt;
  assert.deepEqual(
    madt.entries.map((e) => e.type),
    ['localApic', 'localApic', 'ioApic', 'interruptOverride', 'interruptOverride', 'interruptOverride', 'interruptOverride', 'localApicNmi'],
  );
  const overrides = madt.entries.filter((e) => e.type === 'interruptOverride').map((e) => e.type === 'interruptOverride' && [e.source, e.gsi, e.flags]);
  // IRQ0 on GSI 2; SCI level/high; the PCI IRQs (10, 11) level/low.
  assert.deepEqual(overrides, [[0, 2, 0], [9, 9, 0x0d], [10, 10, 0x0f], [11, 11, 0x0f]]);
  const io = madt.entries.find((e) => e.type === 'ioApic');
  assert.ok(io?.type === 'ioApic' && io.address === 0xfec00000 && io.gsiBase === 0);
  assert.deepEqual(decodeTable(byName(g, 'mcfg').bytes), {
    kind: 'mcfg',
    header: (decodeTable(byName(g, 'mcfg').bytes) as { header: unknown }).header,
    reserved: 0n,
    allocations: [{ baseAddress: 0xb000_0000n, segment: 0, startBus: 0, endBus: 255, reserved: 0 }],
  });
});

test('iasl disassembles every generated table without a complaint and reads every field as the model says', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const { generated: g } = generateFromPlan();
  const s = scratch('hvmpt-gen-');
  try {
    for (const table of g.tables) {
      if (table.signature === 'RSDP') {
        // iasl -d cannot take a bare RSDP; it compiles the same values to the same bytes.
        const rsdp = decodeTable(table.bytes) as Rsdp;
        assert.deepEqual(compile(s.dir, 'rsdp', rsdpSource(rsdp)), table.bytes);
        continue;
      }
      const d = disassembleTable(table.bytes);
      assert.equal(d.status, 0, `${table.name}: ${d.log}`);
      assert.doesNotMatch(d.log, /\b(Error|Warning)\b/i, `${table.name}: ${d.log}`);
      if (table.table.kind === 'definitionBlock') continue;
      const c = compareFields(parseAcpicaFields(d.asl), traceTable(table.table), NAMES);
      assert.deepEqual(c.problems, [], table.name);
      assert.ok(c.matched > 3, `${table.name}: ${c.matched} fields matched`);
    }
  } finally {
    s.done();
  }
});

test('the DSDT: iasl recompiles its disassembly to the same AML; its namespace holds the plan\'s functions, windows and _PRT', (t) => {
  const { generated: g, plan } = generateFromPlan();
  const dsdt = byName(g, 'dsdt');
  const body = dsdt.bytes.subarray(HEADER_LENGTH);
  const tree = parseAml(body, { table: 'DSDT', baseOffset: HEADER_LENGTH });
  const ns = AcpiNamespace.build([{ table: 'dsdt', terms: tree.terms }]);
  const pci0 = ns.require('\\_SB.PCI0');
  assert.deepEqual([ns.hid(pci0), ns.cids(pci0)], ['PNP0A08', ['PNP0A03']]);
  // Every function the guest reaches but the chipset has an object at its place, with _SUN on the root bus.
  for (const r of plan.pci!.topology.reachable()) {
    const bus = plan.pci!.topology.busOf(r.fn);
    if (bus.bridge === null && r.bdf.device <= 1) continue;
    const hops = bus.bridge === null ? [{ device: r.bdf.device, fn: r.bdf.fn }] : [{ device: bus.bridge.device, fn: bus.bridge.fn }, { device: r.bdf.device, fn: r.bdf.fn }];
    const objects = devicesAtPciPath(ns, { segment: 0, bus: 0, hops });
    assert.equal(objects.length, 1, `an object for ${formatBdf(r.bdf)}`);
    if (bus.bridge === null) assert.equal(ns.valueOf(objects[0]!.children.get('_SUN'))?.kind, 'Integer');
  }
  assert.equal(ns.hid(ns.require('\\_SB.PCI0.ISA.COM1')), 'PNP0501');
  const crs = readResources(ns, pci0);
  assert.ok(crs?.kind === 'template');
  const windows = crs.template.resources.flatMap((r) => (r.type === 'AddressSpace' ? [`${r.space.kind} ${r.min.toString(16)}-${r.max.toString(16)}`] : []));
  assert.deepEqual(windows, ['bus 0-ff', 'io 0-cf7', 'io c000-ffff', 'memory a0000-bffff', 'memory c0000000-febfffff', 'memory 800000000-fffffffff']);
  const s5 = ns.valueOf(ns.require('\\_S5'));
  assert.ok(s5?.kind === 'Package' && s5.elements[0]?.kind === 'Integer' && s5.elements[0].value === 0n, 'SLP_TYP 0 as acpi-pm.ts has it');
  // hvmpt's own reading of the _PRT agrees with the plan.
  const prt = readPrt(ns, pci0);
  assert.ok(prt?.kind === 'by-model');
  const want = expectedRoutes(plan);
  assert.deepEqual(prt.apic.entries.map((e) => [e.device, e.pin, e.source.kind === 'gsi' ? e.source.gsi : -1]), want.map((r) => [r.slot, r.pin, r.gsi]));
  assert.deepEqual(prt.pic.entries.map((e) => [e.device, e.pin, e.source.kind === 'link' ? e.source.path : '']), want.map((r) => [r.slot, r.pin, `\\_SB_.${r.link}`]));
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const d = disassembleTable(dsdt.bytes);
  assert.deepEqual(compileAsl(d.asl, ['-on']).subarray(HEADER_LENGTH), body);
});

test('acpiexec runs \\_PIC then _PRT to exactly the plan\'s routing in both interrupt models', (t) => {
  if (!skipUnlessCommand(t, 'acpiexec', 'acpica-tools')) return;
  const { generated: g, plan } = generateFromPlan();
  const want = expectedRoutes(plan);
  assert.ok(want.length >= 3, 'the example plan routes several slots, one behind a bridge');
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-acpiexec-'));
  try {
    const dsdt = join(dir, 'dsdt.aml');
    writeFileSync(dsdt, byName(g, 'dsdt').bytes);
    const exec = (cmd: string) => {
      const r = acpiexec(cmd, [dsdt]);
      assert.equal(r.status, 0, r.output);
      assert.doesNotMatch(r.output, /ACPI Error|AE_[A-Z]/, r.output);
      return r;
    };
    const value = (r: ReturnType<typeof exec>, path: string) => r.results.filter((x) => x.path === path).map((x) => x.value);
    const apic = exec('evaluate \\_PIC 1; evaluate \\_SB.PCI0._PRT; evaluate \\_SB.PCI0.ISA.PRQA; evaluate \\_SB.PCI0.ISA.PRQC');
    assert.deepEqual(value(apic, '\\_SB.PCI0._PRT'), [want.map((r) => [BigInt((r.slot << 16) | 0xffff), BigInt(r.pin), 0n, BigInt(r.gsi)])]);
    // _PIC (1) routed the PIRQs to the GSIs the table names.
    assert.deepEqual([...value(apic, '\\_SB.PCI0.ISA.PRQA'), ...value(apic, '\\_SB.PCI0.ISA.PRQC')], [10n, 11n]);
    const pic = exec('evaluate \\_PIC 0; evaluate \\_SB.PCI0._PRT');
    assert.deepEqual(value(pic, '\\_SB.PCI0._PRT'), [want.map((r) => [BigInt((r.slot << 16) | 0xffff), BigInt(r.pin), { ref: r.link }, 0n])]);
    // PIC mode: a link's _SRS routes its PIRQ to the IRQ asked for, _CRS reports it, _DIS
    // disables it. APIC mode: _DIS leaves the routing _PIC (1) made.
    const irq11 = { buffer: [0x23, 0x00, 0x08, 0x18, 0x79, 0x00] };
    const link = exec('evaluate \\_PIC 0; evaluate \\_SB.LNKC._SRS (23 00 08 18 79 00); evaluate \\_SB.LNKC._CRS; evaluate \\_SB.PCI0.ISA.PRQC; evaluate \\_SB.LNKC._DIS; evaluate \\_SB.LNKC._STA; evaluate \\_SB.PCI0.ISA.PRQC');
    assert.deepEqual(link.results.map((x) => x.value), [irq11, 0x0bn, 0x09n, 0x8bn], link.output);
    const apicDis = exec('evaluate \\_PIC 1; evaluate \\_SB.LNKC._DIS; evaluate \\_SB.LNKC._STA; evaluate \\_SB.PCI0.ISA.PRQC');
    assert.deepEqual(apicDis.results.map((x) => x.value), [0x0bn, 0x0bn], apicDis.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('functions a plan hides from a captured machine have no object in the guest DSDT and no _PRT entry', () => {
  const capture = loadCapture(fixture('pci', 'pciutils-tests', 'tree-fujitsu-p8010'));
  const plan = loadAcpiPlan(join(REPO_ROOT, 'examples', 'pci', 'fujitsu-p8010.yaml'), { capture });
  const hidden = hiddenPciPaths(plan.pci!);
  assert.ok(hidden.length >= 2, hidden.map((h) => h.path).join(' '));
  const g = generateGuestTables(generateFacts(plan));
  const dsdt = byName(g, 'dsdt');
  const ns = AcpiNamespace.build([{ table: 'dsdt', terms: parseAml(dsdt.bytes.subarray(HEADER_LENGTH), { table: 'DSDT', baseOffset: HEADER_LENGTH }).terms }]);
  // The capture's ISA bridge is the ICH's LPC at 00:1f.0: the DSDT's PIRQ registers are there.
  assert.equal(ns.adr(ns.require('\\_SB.PCI0.ISA')), 0x001f0000);
  for (const h of hidden) {
    const p = { segment: 0, bus: parseInt(h.path.slice(0, 2), 16), hops: h.path.slice(3).split('/').map((x) => ({ device: parseInt(x.slice(0, 2), 16), fn: Number(x.slice(3)) })) };
    assert.equal(formatPciPath(p), h.path);
    assert.deepEqual(devicesAtPciPath(ns, p), [], `no object for hidden ${h.what} (${h.path})`);
  }
  // Every visible function does have one, and the _PRT routes exactly the visible functions' pins.
  const visible = plan.pci!.topology.reachable();
  const withPin = new Set(intxRoutes(plan.pci!.topology).map((r) => `${r.rootDevice}/${r.rootPin - 1}`));
  const prt = readPrt(ns, ns.require('\\_SB.PCI0'));
  assert.ok(prt?.kind === 'by-model');
  assert.deepEqual(new Set(prt.apic.entries.map((e) => `${e.device}/${e.pin}`)), withPin);
  assert.ok(visible.length > 10);
});

test('bad facts are GuestFactsErrors naming the facts path', () => {
  const base: GuestAcpiFacts = { cpus: 1, pci: { devices: [], routes: [] } };
  const cases: Array<[GuestAcpiFacts, RegExp]> = [
    [{ ...base, cpus: 0 }, /guest ACPI facts: cpus: 0 vCPUs/],
    [{ ...base, apicIds: [0, 0] , cpus: 2 }, /apicIds: APIC IDs repeat/],
    [{ ...base, pm: { sciIrq: 16 } }, /pm\.sciIrq: 16 is not an integer from 0 to 0xf/],
    [{ ...base, ecam: { base: 0xb0000100n } }, /ecam\.base: the ECAM base must be 1 MiB aligned/],
    [{ ...base, pci: { devices: [], routes: [{ device: 3, pin: 5 as 1 }] } }, /pci\.routes\[0\]\.pin: pin 5 is not 1-4/],
    [{ ...base, pci: { devices: [{ device: 3, fn: 0 }, { device: 3, fn: 0 }], routes: [] } }, /pci\.devices\[1\]: two functions at 03\.0/],
    [{ ...base, interrupts: { pirqIrqs: [10, 10, 4, 11] } }, /interrupts\.pirqIrqs\[2\]: IRQ 4 is COM1's/],
    [{ ...base, oem: { oemId: 'TOO LONG' } }, /oem\.oemId: "TOO LONG" is not at most 6/],
    [{ ...base, layout: { tablesAddress: 0xf0000n, rsdpAddress: 0xf0000n } }, /layout\.rsdpAddress: the RSDP at 0xf0000 overlaps the tables/],
    [{ ...base, ssdts: [{ kind: 'spec', body: [{ scope: '\\_SB.PCI0', body: [{ name: '_HID', value: 1 }] }] }] }, /ssdts\[0\]: declares \\_SB_\.PCI0\._HID, which dsdt already declares/],
  ];
  for (const [facts, re] of cases) assert.throws(() => generateGuestTables(facts), (err: unknown) => err instanceof GuestFactsError && re.test(err.message), String(re));
});

test('the monitor\'s fw_cfg table loader links the generated tables: every one listed, the FADT pointing at the DSDT and FACS', () => {
  const { generated: g } = generateFromPlan();
  const linked = linkAcpiTables(g.loaderTables);
  assert.deepEqual(linked.listed.map((l) => l.signature), ['FACP', 'APIC', 'MCFG', 'SSDT']);
  const blob = linked.files.find((f) => f.name === 'etc/acpi/tables')!.data;
  // Before the firmware relocates them, the FADT's pointers are offsets in the blob.
  const at = (sig: string): number => {
    for (let i = 0; i + 4 <= blob.length; i += 4) if (String.fromCharCode(...blob.subarray(i, i + 4)) === sig) return i;
    return -1;
  };
  const fadt = decodeTable(blob.subarray(at('FACP'), at('FACP') + 276)) as Fadt;
  assert.equal(fadt.dsdt, at('DSDT'));
  assert.equal(fadt.xDsdt, BigInt(at('DSDT')));
  assert.equal(fadt.firmwareCtrl, at('FACS'));
  assert.equal(fadt.xFirmwareCtrl, 0n);
});
