import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeTable, tableChecksumOk } from '../../../src/hw/acpi/tables/table.js';
import { fixture, REPO_ROOT } from '../../helpers/paths.js';
import { hvmpt } from '../../helpers/run.js';

/** The command-line contract of `hvmpt acpi rewrite`, `generate` and `decode`'s AML summaries. */

const x230 = fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt');
const q35 = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');
const example = (name: string): string => join(REPO_ROOT, 'examples', 'acpi', name);

function scratch(): { dir: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-acpi-cli-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('acpi rewrite: the example rules on the X230 write every table, rewritten, with valid checksums', () => {
  const s = scratch();
  try {
    const out = join(s.dir, 'out');
    const r = hvmpt(['acpi', 'rewrite', x230, '--rules', example('x230-guest.yaml'), '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /acpi\.rules\[0\] \(hide-device\):\n {2}hidden: \\_SB_\.PCI0\.VID_ \(PCI 00:02\.0\): removed/);
    assert.match(r.stdout, /dmar \(DMAR\): removed 2 device scope\(s\) and 2 structure\(s\) left without one/);
    assert.match(r.stdout, / {2}-\s+ECDT\s+hidden {2}ecdt \(acpi\.rules\[3\]\)/);
    assert.match(r.stdout, /ssdt9\.dat\s+SSDT\s+\d+ bytes {2}added from acpi\.rules\[5\] \(spec\)/);
    const files = readdirSync(out).sort();
    assert.ok(files.includes('dsdt.dat') && files.includes('ssdt9.dat') && !files.includes('ecdt.dat'), files.join(' '));
    for (const f of files) {
      const bytes = new Uint8Array(readFileSync(join(out, f)));
      if (!f.startsWith('facs')) assert.ok(tableChecksumOk(bytes), `${f} checksum`);
      decodeTable(bytes);
    }
    // An output directory holding tables is not overwritten by accident.
    const again = hvmpt(['acpi', 'rewrite', x230, '--rules', example('x230-guest.yaml'), '--out', out]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already holds tables .*--force to replace them/);
    const forced = hvmpt(['acpi', 'rewrite', x230, '--rules', example('x230-guest.yaml'), '--out', out, '--force', '--json']);
    assert.equal(forced.status, 0, forced.stderr);
    const json = JSON.parse(forced.stdout) as { tables: { file: string; status: string }[]; hidden: { pci: string[]; objects: string[] } };
    assert.deepEqual(json.hidden.pci, ['00:02.0', '00:1f.3']);
    assert.ok(json.hidden.objects.includes('\\_SB_.PCI0.LPC_.EC__'));
    assert.deepEqual(readdirSync(out).sort(), json.tables.map((t) => t.file).sort());
  } finally {
    s.done();
  }
});

test('acpi rewrite: a bad rules file or a rule that cannot apply is an error naming it, and nothing is written', () => {
  const s = scratch();
  try {
    const out = join(s.dir, 'out');
    const rules = join(s.dir, 'rules.yaml');
    writeFileSync(rules, 'acpi:\n  rules:\n    - { action: hide-device, pci: "00:1f.9" }\n');
    let r = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hvmpt: .*rules\.yaml: acpi\.rules\[0\]\.pci: expected a PCI address like 00:1f\.3/);
    assert.equal(existsSync(out), false);
    writeFileSync(rules, 'acpi:\n  rules:\n    - { action: hide-table, signature: DMAR }\n');
    r = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hvmpt: .*rules\.yaml: acpi\.rules\[0\]: matches no table \(there are: /);
    assert.equal(existsSync(out), false);
    writeFileSync(rules, 'acpi:\n  rules:\n    - { action: hide-device, pci: "00:1f.0" }\n');
    r = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refers to hidden .*set `references: neutralize`/);
    assert.equal(existsSync(out), false);
    writeFileSync(rules, 'pci: {}\n');
    r = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /rules\.yaml: acpi\.rules: there are no rules and pci\.hide hides no function: nothing to do/);
  } finally {
    s.done();
  }
});

test('acpi generate: one file per table, acpixtract names, the _PRT routing printed', () => {
  const s = scratch();
  try {
    const r = hvmpt(['acpi', 'generate', '--plan', example('guest.yaml'), '--out', s.dir, '--ext', 'aml']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(s.dir).sort(), ['apic.aml', 'dsdt.aml', 'facp.aml', 'facs.aml', 'mcfg.aml', 'rsdp.aml', 'rsdt.aml', 'ssdt.aml', 'xsdt.aml']);
    assert.match(r.stdout, / {2}03 INTA: GSI 11 \/ \\_SB_\.LNKC \(PIRQC\)/);
    assert.match(r.stdout, /9 table\(s\) written to /);
    const j = hvmpt(['acpi', 'generate', '--plan', example('guest.yaml'), '--out', join(s.dir, 'j'), '--json']);
    const json = JSON.parse(j.stdout) as { routes: { slot: number; pin: string; gsi: number }[] };
    assert.deepEqual(json.routes.map((x) => `${x.slot}${x.pin}:${x.gsi}`), ['3A:11', '4B:10', '5A:10']);
    const bad = hvmpt(['acpi', 'generate', '--plan', example('guest.yaml'), '--out', join(s.dir, 'k'), '--ext', 'bin']);
    assert.equal(bad.status, 2, 'a bad option value is a usage error');
    assert.match(bad.stderr, /^hvmpt: --ext: takes dat or aml/m);
  } finally {
    s.done();
  }
});

test('acpi decode: DSDT and SSDT get a namespace summary, in text and JSON', () => {
  const text = hvmpt(['acpi', 'decode', q35, '--table', 'DSDT']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /namespace: 46 device\(s\), 110 method\(s\)/);
  assert.match(text.stdout, /host bridge \\_SB_\.PCI0 \(segment 0, bus 0x00\)\n {4}_CRS \(\\_SB_\.PCI0\._CRS\):\n {6}WordBusNumber 0x0-0xff/);
  assert.match(text.stdout, / {4}_PRT by interrupt model \(\\PICF\):\n {6}APIC \(\\_SB_\.PCI0\.PRTA\): 128 entries\n {8}00\.\* INTA -> \\_SB_\.GSIE/);
  assert.match(text.stdout, /\n {4}\\_SB_\.PCI0\.SF8_ {2}_HID PNP0A06 {2}_UID 0\b|\\_SB_\.PCI0\.[A-Z0-9_]{4}\s+_HID/);
  assert.match(text.stdout, /\n {4}\\_SB_\.PCI0\._OSC \(4\)\n/);
  const json = hvmpt(['acpi', 'decode', q35, '--json', '--table', 'DSDT']);
  assert.equal(json.status, 0, json.stderr);
  const model = JSON.parse(json.stdout) as { tables: { aml?: { devices: { path: string; hid?: string }[]; bridges: { prt: { kind: string; apic: { entries: unknown[] } } }[] } }[] };
  const aml = model.tables[0]!.aml!;
  assert.ok(aml.devices.some((d) => d.path === '\\_SB_.PCI0' && d.hid === 'PNP0A08'));
  assert.equal(aml.bridges[0]!.prt.kind, 'by-model');
  assert.equal(aml.bridges[0]!.prt.apic.entries.length, 128);
});

test('acpi decode: a table whose AML does not parse is listed, then named with its offset, and the command exits 1 (as --help says)', () => {
  const s = scratch();
  try {
    assert.equal(hvmpt(['acpi', 'extract', q35, '--out', s.dir]).status, 0);
    const dsdt = new Uint8Array(readFileSync(join(s.dir, 'dsdt.dat')));
    dsdt[36] = 0xff; // the first opcode of the AML
    dsdt[37] = 0xff;
    const bad = join(s.dir, 'bad-dsdt.dat');
    writeFileSync(bad, dsdt);
    const r = hvmpt(['acpi', 'decode', bad]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /AML: does not parse: .*offset 0x2[0-9a-f]/);
    assert.match(r.stderr, new RegExp(`^hvmpt: ${bad.replace(/[.]/g, '\\.')}: offset 0x[0-9a-f]+: `, 'm'));
    assert.match(hvmpt(['acpi', 'decode', '--help']).stdout, /exits 1 after listing/);
    // The same dump's other tables alone still decode cleanly.
    assert.equal(hvmpt(['acpi', 'decode', join(s.dir, 'facp.dat')]).status, 0);
  } finally {
    s.done();
  }
});
