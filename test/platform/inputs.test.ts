import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolvePlatformInputs } from '../../src/host/plan/inputs.js';
import { resolvePlanFiles } from '../../src/host/plan/files.js';
import { parseLspciDump } from '../../src/host/pci/lspci-dump.js';
import { PlanFiles, planFileRefs } from '../../src/plan/files.js';
import { PlanError } from '../../src/plan/load.js';
import { loadPlan } from '../../src/plan/schema.js';
import { composeMachine } from '../../src/platform/compose.js';
import type { PlatformInputs } from '../../src/platform/inputs.js';
import { fakeSysfs } from '../helpers/fake-sysfs.js';
import { fixture, REPO_ROOT } from '../helpers/paths.js';

/** The plan files of src/platform's composition are read in one step, and every unreadable one is named by its plan path. */

function withPlan<T>(text: string, body: (file: string, dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-inputs-'));
  try {
    const file = join(dir, 'plan.yaml');
    writeFileSync(file, text);
    return body(file, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const EVERY_FILE = `
memory: { size: 64M, layout: identity }
pci:
  real: [{ name: nic, at: "00:05.0", dump: nic.lspci }]
  passthrough: [{ host: "00:03.0", rom: nic.rom }]
acpi:
  rules: [{ action: add-ssdt, aml: extra.aml }]
  generate: { ssdts: [{ aml: gen.aml }] }
machine:
  firmware: bios.bin
  boot: { kind: linux, kernel: vmlinuz, initrd: initrd.img }
  hostMap: host.dmesg
  acpiTables: tables.acpidump
  hostPci: { capture: host.lspci }
  roms: [{ device: nic, file: pxe.rom }]
`;

test('planFileRefs lists every file a plan names, with the plan path that names it', () => {
  withPlan(EVERY_FILE, (file) => {
    const refs = planFileRefs(loadPlan(file)).map((r) => `${r.at}=${r.file}:${r.kind}`);
    assert.deepEqual(refs, [
      'machine.firmware=bios.bin:bytes',
      'machine.boot.kernel=vmlinuz:bytes',
      'machine.boot.initrd=initrd.img:bytes',
      'machine.hostMap=host.dmesg:e820',
      'machine.acpiTables=tables.acpidump:acpi-tables',
      'machine.hostPci.capture=host.lspci:pci-capture',
      'machine.roms[0].file=pxe.rom:bytes',
      'pci.real[0].dump=nic.lspci:pci-capture',
      'pci.passthrough[0].rom=nic.rom:bytes',
      'acpi.rules[0].aml=extra.aml:bytes',
      'acpi.generate.ssdts[0].aml=gen.aml:bytes',
    ]);
  });
});

test('an unreadable file is reported with the plan and the field that names it, all at once, before anything is composed', () => {
  withPlan(EVERY_FILE, (file, dir) => {
    writeFileSync(join(dir, 'host.lspci'), 'not a dump\n');
    const sysfsRoot = fakeSysfs(join(dir, 'sys'), [{ address: '0000:00:04.0', vendor: 0x8086, device: 0x10d3, classCode: 0x020000 }]);
    let err: unknown;
    try {
      resolvePlatformInputs(loadPlan(file), file, { sysfsRoot });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof PlanError, String(err));
    assert.equal(err.where.input, file);
    const byPath = new Map(err.problems.map((p) => [p.path, p.message]));
    assert.equal(byPath.size, 12);
    assert.match(byPath.get('pci.passthrough[0].host')!, /no PCI function 0000:00:03\.0 on this host/);
    assert.equal(byPath.get('machine.hostMap'), `${join(dir, 'host.dmesg')}: cannot read: ENOENT`);
    assert.equal(byPath.get('machine.boot.kernel'), `${join(dir, 'vmlinuz')}: cannot read: ENOENT`);
    // A file that exists but holds the wrong thing: the reader's own message, still under the field.
    assert.match(byPath.get('machine.hostPci.capture')!, /host\.lspci: no PCI functions found/);
    assert.match(err.message, /^.*plan\.yaml: machine\.firmware: .*bios\.bin: cannot read: ENOENT; /);
  });
});

test('composition is pure: a plan composes from files held in memory, with no file on disk', () => {
  const dump = readFileSync(fixture('pci', 'pciutils-tests', 'tree-asus-p6t6'), 'utf8');
  const plan = loadPlan(join(REPO_ROOT, 'examples', 'grub-report.yaml'));
  const capture = parseLspciDump(dump, 'in-memory.lspci');
  const withCapture = { ...plan, machine: { ...plan.machine, hostPci: { capture: 'nowhere/host.lspci', functions: ['00:1f.3'] } } };
  const inputs: PlatformInputs = {
    planFile: '/nonexistent/plan.yaml',
    files: new PlanFiles('/nonexistent/plan.yaml', new Map([['machine.hostPci.capture', { kind: 'pci-capture', path: 'in-memory.lspci', capture }]])),
    firmware: { name: 'test firmware', image: new Uint8Array(0x20000) },
    linuxbootRom: new Uint8Array(512),
    boot: { name: 'none', kernel: new Uint8Array(1024), cmdline: '', summary: 'boot: test' },
    passthrough: [],
  };
  const m = composeMachine(withCapture, inputs);
  assert.ok(m.pci.entries.some((e) => e.capturedBdf?.device === 0x1f && e.capturedBdf.fn === 3), 'the in-memory capture\'s 00:1f.3 is on the bus');
  assert.equal(m.config.firmware.name, 'test firmware');
  // And a plan file that names a file composition was not given is a bug in the edge, not a plan problem.
  assert.throws(() => composeMachine(withCapture, { ...inputs, files: PlanFiles.none('/nonexistent/plan.yaml') }), /machine\.hostPci\.capture was not resolved/);
});

test('resolvePlanFiles reads relative paths against the plan file', () => {
  withPlan('pci:\n  real: [{ name: a, at: "00:05.0", dump: d.lspci }]\n', (file, dir) => {
    writeFileSync(join(dir, 'd.lspci'), readFileSync(fixture('pci', 'pciutils-tests', 'tree-asus-p6t6')));
    const files = resolvePlanFiles(loadPlan(file), file);
    assert.equal(files.capture('pci.real[0].dump').path, join(dir, 'd.lspci'));
  });
});
