import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateGuestTables } from '../../../src/hw/acpi/generate/generate.js';
import { pciFactsFromTopology } from '../../../src/hw/acpi/generate/pci.js';
import { readPrt } from '../../../src/hw/acpi/namespace/prt.js';
import { applyRules } from '../../../src/hw/acpi/world/apply.js';
import { devicesAtPciPath, parsePciPath } from '../../../src/hw/acpi/world/select.js';
import { loadWorld, worldNamespace } from '../../../src/hw/acpi/world/tables.js';
import { composePci } from '../../../src/hw/pci/compose.js';
import { loadCapture } from '../../../src/host/pci/load.js';
import { PlanError } from '../../../src/plan/load.js';
import { acpiRules, hiddenPciPaths } from '../../../src/plan/acpi.js';
import { loadAcpiPlan } from '../../../src/host/plan/acpi.js';
import { fixture } from '../../helpers/paths.js';
import { reparse } from './helpers.js';

/** The plan's `acpi` section: validation errors with their paths, files, and what `pci` adds. */

function planFile(text: string): { file: string; dir: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-acpi-plan-'));
  const file = join(dir, 'plan.yaml');
  writeFileSync(file, text);
  return { file, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function problems(text: string): string[] {
  const p = planFile(text);
  try {
    acpiRules(loadAcpiPlan(p.file));
  } catch (err) {
    if (err instanceof PlanError) return err.problems.map((x) => `${x.path}: ${x.message}`);
    throw err;
  } finally {
    p.done();
  }
  assert.fail('expected a PlanError');
}

test('rules files: every problem reported with its path', () => {
  assert.deepEqual(problems('acpi:\n  rules:\n    - action: hide-everything\n'), [
    'acpi.rules[0].action: expected a rule with action: hide-table, hide-device, replace-method, patch-method, add-ssdt or rewrite-prt',
  ]);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: hide-device, path: "\\\\_SB.PCI0.TOOLONG" }\n'), ['acpi.rules[0].path: expected an absolute ACPI path like \\_SB.PCI0.LPCB']);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: hide-table, signature: DMAR, colour: red }\n'), ['acpi.rules[0]: Unrecognized key: "colour"']);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: rewrite-prt, routes: [{ device: 3, pin: E, gsi: 16 }] }\n'), ['acpi.rules[0].routes[0].pin: expected a pin: A, B, C, D (or 0-3)']);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: replace-method, method: \\_SB.FOO }\n'), ['acpi.rules[0]: give exactly one of body (statements) and aml (a compiled table holding the method)']);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: add-ssdt, aml: x.aml, body: [] }\n'), ['acpi.rules[0]: give exactly one of aml (a compiled SSDT) and body (statements)']);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: add-ssdt, aml: missing.aml }\n').map((m) => m.replace(/: .*plan-[^/]+\//, ': DIR/')), ['acpi.rules[0].aml: DIR/missing.aml: cannot read: ENOENT']);
  assert.match(problems('acpi:\n  rules:\n    - { action: patch-method, method: \\MAIN, prepend: [{ retrun: 1 }] }\n')[0]!, /^acpi\.rules\[0\]\.prepend\[0\]: expected a statement: \{return\}/);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: add-ssdt, body: [{ device: X, crs: [{ io: { min: 0x10000, length: 2 } }] }] }\n'), [
    'acpi.rules[0].body[0].crs[0].io.min: expected an integer from 0 to 0xffff, got 65536',
  ]);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: replace-method, method: \\MAIN, body: [{ return: { ref: "\\\\_SB.TOOLONGNAME" } }] }\n'), [
    'acpi.rules[0].body[0].return.ref: expected an ACPI path like \\_SB.PCI0.LPCB (segments of 1-4 letters, digits or _)',
  ]);
  assert.deepEqual(problems('acpi:\n  rules:\n    - { action: rewrite-prt, fromPci: {} }\n'), ['acpi.rules[0].fromPci: the plan has no pci section to take routes from']);
  // Several at once, and other sections pass.
  assert.equal(problems('machine: { vcpus: 2 }\nacpi:\n  rules:\n    - { action: hide-table }\n    - { action: hide-device, adr: -1 }\n').length, 1);
});

test('rules from a plan: files relative to it, paths kept, AML specs carried to the engine', () => {
  const p = planFile(
    [
      'acpi:',
      '  rules:',
      '    - { action: hide-table, signature: DMAR }',
      '    - { action: hide-device, path: \\_SB.PCI0.GFX0, references: neutralize }',
      '    - { action: add-ssdt, aml: extra.aml }',
      '    - action: add-ssdt',
      '      oemTableId: HVMDEV',
      '      body: [{ scope: \\_SB, body: [{ device: HVM0, hid: HVM0001, uid: 0, sta: 0x0F, crs: [{ io: { min: 0x510, length: 2 } }, { irq: [5] }] }] }]',
      '    - { action: rewrite-prt, routes: [{ device: 3, pin: A, gsi: 16 }, { device: 4, pin: 1, gsi: "0x11" }] }',
    ].join('\n'),
  );
  try {
    writeFileSync(join(p.dir, 'extra.aml'), new Uint8Array([1, 2, 3]));
    const rules = acpiRules(loadAcpiPlan(p.file));
    assert.deepEqual(rules.map((r) => `${r.path} ${r.action}`), ['acpi.rules[0] hide-table', 'acpi.rules[1] hide-device', 'acpi.rules[2] add-ssdt', 'acpi.rules[3] add-ssdt', 'acpi.rules[4] rewrite-prt']);
    assert.ok(rules[1]!.action === 'hide-device' && rules[1].devicePath === '\\_SB.PCI0.GFX0' && rules[1].references === 'neutralize');
    assert.ok(rules[2]!.action === 'add-ssdt' && rules[2].source.kind === 'aml' && rules[2].source.bytes.length === 3);
    assert.ok(rules[4]!.action === 'rewrite-prt');
    assert.deepEqual(rules[4].routes, [{ device: 3, pin: 0, gsi: 16 }, { device: 4, pin: 1, gsi: 17 }]);
  } finally {
    p.done();
  }
});

test('a PCI section: fromPci routes from its bus, and the functions pci.hide hides are hidden from the tables too', () => {
  // Tables describing every function of a captured machine (as its firmware's would), made
  // by the generator from the capture itself; the plan hides two functions of that machine.
  const capture = loadCapture(fixture('pci', 'pciutils-tests', 'tree-fujitsu-p8010'));
  const host = composePci({ base: capture }, 'capture');
  const hostTables = generateGuestTables({ cpus: 1, pci: pciFactsFromTopology(host.topology) });
  const images = hostTables.tables.filter((t) => !['RSDP', 'RSDT', 'XSDT'].includes(t.signature)).map((t) => ({ name: t.name, origin: 'host', signature: t.signature, data: t.bytes }));
  const p = planFile(
    [
      'pci:',
      '  hide:',
      '    - id: "8086:4229"          # the Wi-Fi card, behind a root port',
      '    - bdf: "00:1a.0"           # a USB controller on the root bus',
      'acpi:',
      '  pciHidden: { references: neutralize }',
      '  rules:',
      '    - { action: rewrite-prt, fromPci: {} }',
    ].join('\n'),
  );
  try {
    const plan = loadAcpiPlan(p.file, { capture });
    const hidden = hiddenPciPaths(plan.pci!);
    assert.deepEqual(hidden.map((h) => h.what).sort(), ['00:1a.0', '14:00.0']);
    const wifi = hidden.find((h) => h.what === '14:00.0')!;
    assert.match(wifi.path, /^00:1c\.\d\/00\.0$/, 'the Wi-Fi is named through the root port above it');
    const rules = acpiRules(plan);
    assert.deepEqual(rules.map((r) => r.action), ['hide-device', 'hide-device', 'rewrite-prt']);
    const before = worldNamespace(loadWorld(images));
    for (const h of hidden) assert.equal(devicesAtPciPath(before, parsePciPath(h.path)!).length, 1, `the host tables describe ${h.what}`);
    const r = applyRules(loadWorld(images), rules, p.file);
    const { ns } = reparse(r.tables);
    for (const h of hidden) assert.deepEqual(devicesAtPciPath(ns, parsePciPath(h.path)!), [], `${h.what} (${h.path}) is gone`);
    // The rewritten _PRT routes the plan's bus, whose hidden functions are on no route.
    const prt = readPrt(ns, '\\_SB.PCI0');
    assert.ok(prt?.kind === 'static');
    assert.ok(!prt.entries.some((e) => e.device === 0x1a), 'no entry for the hidden 00:1a.0 slot unless another function shares it');
    assert.ok(prt.entries.length > 3);
  } finally {
    p.done();
  }
});
