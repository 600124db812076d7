import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import { readResources } from '../../../src/hw/acpi/namespace/crs.js';
import { decodeEisaId, encodeEisaId } from '../../../src/hw/acpi/aml/eisaid.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { readPrt, type PrtEntry, type PrtTable } from '../../../src/hw/acpi/namespace/prt.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { disassemble, lastSeg, prtEntriesIn, scanAsl, scanResourceTemplates, type AslPrtEntry } from './asl.js';
import { allMachines, HEADER_LENGTH, type Machine } from './fixtures.js';
import { expectedAsl, normalize } from './resource-asl.js';

function load(m: Machine): AcpiNamespace {
  return AcpiNamespace.build(parseAmlTables(m.tables.map((x) => ({ body: x.body, table: x.label, baseOffset: HEADER_LENGTH }))));
}

function machine(part: string): Machine {
  const m = allMachines().find((x) => x.name.includes(part));
  assert.ok(m !== undefined, part);
  return m;
}

test('EISA ids encode and decode like ASL EisaId()', () => {
  assert.equal(encodeEisaId('PNP0A08'), 0x080ad041);
  assert.equal(decodeEisaId(0x080ad041), 'PNP0A08');
  assert.equal(decodeEisaId(0x030ad041n), 'PNP0A03');
  assert.equal(decodeEisaId(encodeEisaId('ACP0003')), 'ACP0003');
  assert.equal(decodeEisaId(0x1_0000_0000n), undefined);
  assert.throws(() => encodeEisaId('PNP0A0'), RangeError);
});

test('namespace queries on a real machine: paths, search rules, _HID/_CID/_ADR', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const ns = load(machine('thinkpad-x230'));
  const pci0 = ns.require('\\_SB.PCI0');
  assert.equal(pci0.path, '\\_SB_.PCI0');
  assert.equal(ns.get('_SB_.PCI0'), pci0);
  assert.equal(pci0.kind, 'Device');
  assert.equal(ns.hid(pci0), 'PNP0A08');
  assert.deepEqual(ns.cids(pci0), ['PNP0A03']);
  assert.deepEqual(ns.findByHid('pnp0a08'), [pci0]);
  assert.ok(ns.findByHid('PNP0A03').includes(pci0), 'found through _CID');
  // The LPC bridge is device 0x1F function 0 on the root bus.
  const lpc = ns.findByAdr(0x001f0000, pci0);
  assert.equal(lpc.length, 1);
  assert.equal(lpc[0]!.path, '\\_SB_.PCI0.LPC_');
  // Search rules: a single segment is found in the scope or any parent; a path is exact.
  assert.equal(ns.resolve('PCI0', '\\_SB_.PCI0.LPC_')?.path, '\\_SB_.PCI0');
  assert.equal(ns.resolve('GPIC', '\\_SB_.PCI0.LPC_')?.path, '\\GPIC');
  assert.equal(ns.resolve('LPC.EC', '\\_SB_.PCI0')?.path, '\\_SB_.PCI0.LPC_.EC__');
  assert.equal(ns.resolve('LPC.EC', '\\_SB_'), undefined);
  assert.equal(ns.resolve('^^^PCI0', '\\_SB_.PCI0.LPC_.EC__')?.path, '\\_SB_.PCI0');
  assert.equal(ns.resolve('^^PCI0', '\\_SB_.PCI0.LPC_.EC__'), undefined);
  assert.equal(ns.argCount(ns.require('\\_SB.PCI0._PRT')), 0);
  assert.equal(ns.argCount(ns.require('\\_OSI')), 1);
  assert.throws(() => ns.require('\\_SB.NOPE'), /no object \\_SB.NOPE/);
  // Objects declared in method bodies are not in the namespace.
  assert.ok([...ns.nodes()].every((n) => n.parent === null || n.parent.kind !== 'Method'));
});

function sameEntries(mine: readonly PrtEntry[], asl: readonly AslPrtEntry[], where: string): void {
  const m = mine.map((e) => `${e.address.toString(16)}/${e.pin}/${e.source.kind === 'gsi' ? '0' : lastSeg(e.source.path)}/${e.source.kind === 'gsi' ? e.source.gsi : e.source.index}`);
  const a = asl.map((e) => `${e.address.toString(16)}/${e.pin}/${e.source === '0' ? '0' : lastSeg(e.source)}/${e.index}`);
  assert.deepEqual(m.sort(), a.sort(), where);
}

test('_PRT routing of every bridge matches the packages in iasl -d output', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools') || !skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  let byModel = 0;
  let entries = 0;
  for (const m of allMachines()) {
    const ns = load(m);
    const facts = m.tables.map((x) => disassemble(m, x.name)).filter((d) => d !== undefined).map((d) => scanAsl(d.asl));
    const valueOf = (path: string) => facts.map((f) => f.values.get(path)).find((v) => v !== undefined);
    const methodOf = (path: string) => facts.map((f) => f.methods.get(path)).find((v) => v !== undefined);
    for (const n of ns.nodes()) {
      if (n.name !== '_PRT' || n.parent === null) continue;
      const prt = readPrt(ns, n.parent)!;
      const where = `${m.name} ${n.path}`;
      const check = (tbl: PrtTable) => {
        const toks = valueOf(tbl.from);
        if (toks !== undefined) {
          sameEntries(tbl.entries, prtEntriesIn(toks), `${where} from ${tbl.from}`);
          entries += tbl.entries.length;
        }
        return toks !== undefined;
      };
      if (prt.kind === 'by-model') {
        byModel++;
        assert.deepEqual(prt.apic.entries.length > 0 && prt.pic.entries.length > 0, true, where);
        // APIC routes to GSIs, or (QEMU) to GSI link devices; PIC always through links.
        assert.ok(prt.pic.entries.every((e) => e.source.kind === 'link' || prt.pic.from.endsWith('_PRT')), `${where}: PIC entries use links`);
        const named = check(prt.apic) && check(prt.pic);
        if (!named) {
          // Tables returned inline: both packages sit in the method body.
          const body = methodOf(n.path);
          assert.ok(body !== undefined, `${where}: method in the ASL`);
          sameEntries([...prt.apic.entries, ...prt.pic.entries], prtEntriesIn(body), where);
          entries += prt.apic.entries.length + prt.pic.entries.length;
        }
      } else if (prt.kind === 'static') {
        assert.ok(check(prt) || methodOf(n.path) !== undefined, where);
      } else {
        assert.match(prt.reason, /argument|computes/, `${where}: ${prt.reason}`);
      }
    }
  }
  assert.ok(byModel >= 100, `${byModel} _PRTs with APIC and PIC routings`);
  assert.ok(entries > 1500, `${entries} entries compared`);
});

test('_PRT routing details: flags from _PIC, GSIs, link devices', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const ns = load(machine('thinkpad-x230'));
  const prt = readPrt(ns, '\\_SB.PCI0');
  assert.ok(prt?.kind === 'by-model');
  assert.deepEqual(prt.flags, ['\\GPIC']);
  assert.equal(prt.apic.from, '\\_SB_.PCI0.ARRT');
  assert.equal(prt.pic.from, '\\_SB_.PCI0.LRRT');
  const first = prt.apic.entries.find((e) => e.device === 0x1f && e.pin === 0);
  assert.deepEqual(first?.source, { kind: 'gsi', gsi: 21 });
  const link = prt.pic.entries.find((e) => e.device === 0x1f && e.pin === 0);
  assert.equal(link?.source.kind === 'link' ? link.source.path : '', '\\_SB_.LNKF');
  assert.equal(link?.source.kind === 'link' ? ns.hid(link.source.device!) : '', 'PNP0C0F');
  const linkPrs = readResources(ns, '\\_SB.LNKA', '_PRS');
  assert.ok(linkPrs?.kind === 'template');
  assert.equal(linkPrs.template.resources[0]?.type, 'Irq');

  // Methods that compute their table are reported, not guessed.
  const star = load(machine('starlabs'));
  const rp = readPrt(star, '\\_SB.PCI0.RP01');
  assert.ok(rp?.kind === 'dynamic', JSON.stringify(rp?.kind));
  assert.match(rp.reason, /RP01._PRT calls a method with arguments/);
  assert.equal(readPrt(star, '\\_SB.PCI0.LPCB'), undefined);
});

test('host bridge _CRS templates match iasl -d', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools') || !skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  let compared = 0;
  for (const m of allMachines()) {
    const ns = load(m);
    const dsdt = disassemble(m, 'dsdt');
    assert.ok(dsdt !== undefined);
    const facts = scanAsl(dsdt.asl);
    for (const bridge of ns.findByHid('PNP0A08').concat(ns.findByHid('PNP0A03'))) {
      const crs = readResources(ns, bridge);
      assert.ok(crs !== undefined && crs.kind !== 'dynamic', `${m.name} ${bridge.path}._CRS: ${crs?.kind === 'dynamic' ? crs.reason : 'missing'}`);
      const templates = crs.kind === 'template' ? [crs] : crs.templates;
      for (const tpl of templates) {
        const toks = facts.values.get(tpl.from) ?? facts.methods.get(tpl.from.replace(/\.[A-Z0-9_]{4}$/, ''));
        if (toks === undefined) continue;
        const asl = scanResourceTemplates(toks.map((k) => k.v).join(' '));
        const mine = tpl.template.resources.map((r) => normalize(expectedAsl(r)));
        assert.ok(asl.some((a) => JSON.stringify(a.map(normalize), bigints) === JSON.stringify(mine, bigints)), `${m.name} ${tpl.from}`);
        const windows = tpl.template.resources.filter((r) => r.type === 'AddressSpace' && r.producer);
        assert.ok(windows.length >= 2, `${m.name} ${tpl.from}: host bridge windows`);
        compared++;
      }
    }
  }
  assert.ok(compared >= 12, `${compared} host bridge templates compared`);
});

function bigints(_: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString(16) : v;
}
