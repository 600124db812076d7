import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateGuestTables } from '../../../src/hw/acpi/generate/generate.js';
import { GuestFactsError, type GuestAcpiFacts } from '../../../src/hw/acpi/generate/facts.js';
import type { Fadt } from '../../../src/hw/acpi/tables/fadt.js';
import { GPE0_BASE, PCIHP_BASE } from '../../../src/hw/chipset/pci-hotplug.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { compileAsl, disassembleTable } from '../aml/asl.js';
import { HEADER_LENGTH } from '../aml/fixtures.js';
import { acpiexec } from './acpiexec.js';

/**
 * ACPI PCI hot-plug in the generated tables, held against ACPICA: iasl reads the DSDT back to
 * the same AML, and acpiexec runs the GPE's _E01 over register values a test SSDT stores (its
 * Notify calls are what Linux's acpiphp acts on) and each slot's _EJ0 (the EJ register gets
 * exactly that slot's bit).
 */
const facts: GuestAcpiFacts = {
  cpus: 1,
  pci: {
    devices: [{ device: 0, fn: 0, kind: 'host-bridge' }, { device: 1, fn: 0, kind: 'isa-bridge' }, { device: 2, fn: 0, kind: 'device' }, { device: 3, fn: 0, kind: 'device' }],
    routes: [{ device: 2, pin: 1 }, { device: 3, pin: 1 }],
  },
  // Slot 3 holds a dynamic device at boot; 5 and 6 are empty; 2 is dedicated (not hot-pluggable).
  hotplug: { slots: [6, 3, 5] },
};

/** Stores UP and DOWN as the monitor would have them, then runs the GPE the way the SCI handler does. */
const TEST_SSDT = `DefinitionBlock ("", "SSDT", 2, "HVMPT", "HPTEST", 1)
{
    External (\\_SB.PCI0.PCIU, FieldUnitObj)
    External (\\_SB.PCI0.PCID, FieldUnitObj)
    External (\\_GPE._E01, MethodObj)
    Method (\\TGPE, 2) { \\_SB.PCI0.PCIU = Arg0
        \\_SB.PCI0.PCID = Arg1
        \\_GPE._E01 () }
}
`;

test('with hot-plug the FADT has a GPE0 block at QEMU\'s PIIX4 address; without, none', () => {
  const fadt = (f: GuestAcpiFacts): Fadt => generateGuestTables(f).tables.find((t) => t.signature === 'FACP')!.table as Fadt;
  const on = fadt(facts);
  assert.deepEqual([on.gpe0Block, on.gpe0BlockLength, on.xGpe0Block?.address], [GPE0_BASE, 4, BigInt(GPE0_BASE)]);
  const { hotplug: _h, ...plain } = facts;
  assert.deepEqual([fadt(plain).gpe0Block, fadt(plain).gpe0BlockLength], [0, 0]);
  assert.throws(() => generateGuestTables({ ...facts, hotplug: { slots: [1] } }), (e: unknown) => e instanceof GuestFactsError && /hotplug\.slots\[0\]/.test(e.where.at ?? ''));
});

test('iasl disassembles the hot-plug DSDT without a complaint and recompiles it to the same AML', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const dsdt = generateGuestTables(facts).tables.find((x) => x.name === 'dsdt')!.bytes;
  const d = disassembleTable(dsdt);
  assert.equal(d.status, 0, d.log);
  assert.doesNotMatch(d.log, /\b(Error|Warning)\b/i, d.log);
  assert.match(d.asl, new RegExp(`OperationRegion \\(PCST, SystemIO, 0x${PCIHP_BASE.toString(16).toUpperCase()}, 0x08\\)`));
  // An empty slot's object, and the boot device's own with _EJ0; the dedicated slot has none.
  assert.match(d.asl, /Device \(S28\)\s*\{\s*Name \(_ADR, 0x00050000\)[^}]*_SUN, 0x05\)[\s\S]*?_EJ0, 1[\s\S]*?PCEJ \(BSEL, 0x05\)/);
  assert.match(d.asl, /Device \(S18\)\s*\{\s*Name \(_ADR, 0x00030000\)[\s\S]*?_EJ0/);
  assert.doesNotMatch(d.asl, /Device \(S10\)\s*\{\s*Name \(_ADR, 0x00020000\)\s*\/\/ _ADR: Address\s*Name \(_SUN, 0x02\)[^}]*_EJ0/);
  assert.match(d.asl, /Scope \(\\_GPE\)\s*\{\s*Method \(_E01/);
  assert.deepEqual(compileAsl(d.asl, ['-on']).subarray(HEADER_LENGTH), dsdt.subarray(HEADER_LENGTH));
});

test('acpiexec: _E01 notifies Device Check for UP slots and Eject Request for DOWN slots; each _EJ0 writes its own slot\'s bit', (t) => {
  if (!skipUnlessCommand(t, 'acpiexec', 'acpica-tools')) return;
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-hotplug-'));
  try {
    const dsdt = join(dir, 'dsdt.aml');
    const ssdt = join(dir, 'test.aml');
    writeFileSync(dsdt, generateGuestTables(facts).tables.find((x) => x.name === 'dsdt')!.bytes);
    writeFileSync(ssdt, compileAsl(TEST_SSDT));
    const r = acpiexec('execute \\TGPE 0x20 0x48; evaluate \\_SB.PCI0.S30._EJ0 1; evaluate \\_SB.PCI0.B0EJ; evaluate \\_SB.PCI0.S18._EJ0 1; evaluate \\_SB.PCI0.B0EJ; evaluate \\_SB.PCI0.BNUM', [dsdt, ssdt]);
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.output, /ACPI Error|AE_[A-Z]/, r.output);
    const notifies = [...r.output.matchAll(/Received a System Notify on \[(\w+)\] \S+ Value (0x\w+)/g)].map((m) => `${m[1]} ${m[2]}`);
    // UP 0x20 is slot 5 (S28); DOWN 0x48 is slots 3 (S18) and 6 (S30); slot 2's bit is never looked at.
    // acpiexec runs notify handlers on its own threads: their lines come in any order.
    assert.deepEqual(notifies.sort(), ['S18_ 0x03', 'S28_ 0x01', 'S30_ 0x03']);
    assert.deepEqual(r.results.map((x) => x.value), [1n << 6n, 1n << 3n, 0n], r.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
