import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { PlanError } from '../../src/plan/load.js';
import { loadPciPlan, pciComposeInput } from '../../src/plan/pci.js';
import { resolvePlanFiles } from '../../src/host/plan/files.js';
import { loadCapture } from '../../src/host/pci/load.js';
import { composePci, PciPlanError } from '../../src/hw/pci/compose.js';
import { PciAllocationError } from '../../src/hw/pci/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { PCIUTILS_TESTS } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'hvmpt-plan-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ASUS = join(PCIUTILS_TESTS, 'tree-asus-p6t6');

function plan(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

function problems(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlanError || err instanceof PciPlanError) return [...err.problems];
    throw err;
  }
  assert.fail('expected a plan error');
}

test('schema errors name the path of every bad field at once', () => {
  const file = plan(
    'bad-schema.yaml',
    `
memory: { size: 1G }     # another area's section: ignored here
pci:
  hide:
    - {}
    - { id: "8086" }
  bridges:
    - { name: br, at: "00:20.0" }
  functions:
    - target: "00:1a.0"
      bars: [{ bar: 7, size: 32 }, { bar: 4, size: "lots" }]
      colour: blue
  allocation:
    mem32: { base: 0xc0000000, limit: 0xb0000000 }
`,
  );
  const p = problems(() => loadPciPlan(file));
  const paths = p.map((x) => x.path);
  assert.ok(paths.includes('pci.hide[0]'), paths.join(' '));
  assert.ok(paths.includes('pci.hide[1].id'));
  assert.ok(paths.includes('pci.bridges[0].at'));
  assert.ok(paths.includes('pci.functions[0].bars[0].bar'));
  assert.ok(paths.includes('pci.functions[0].bars[1].size'));
  assert.ok(paths.includes('pci.functions[0]'), 'unknown key colour');
  assert.ok(paths.includes('pci.allocation') || paths.some((x) => x.startsWith('pci.allocation')));
  assert.match(p.find((x) => x.path === 'pci.bridges[0].at')!.message, /expected a slot like 00:05.0/);
});

test('composition errors name plan paths: nothing matched, slot taken, unknown bridge, unknown target, bad model options', () => {
  // References the schema cannot judge: the second half only breaks model options.
  const refs = `
pci:
  hide:
    - bdf: "00:02.0"
  bridges:
    - { name: br, at: "00:1f.0" }
  emulated:
    - { name: a, at: nowhere/00.0, model: generic, options: { vendor: 1, device: 2, class: 3 } }
  functions:
    - { target: "00:09.0", bars: [{ bar: 0, size: 4K }] }
`;
  const badModels = `
    - { name: b, at: "00:06.0", model: generic, options: { vendor: 0x10000, device: 2, class: 3 } }
    - { name: c, at: "00:07.0", model: nosuch }
`;
  const file = plan('bad-refs.yaml', refs.replace('  functions:', `${badModels.slice(1)}  functions:`));
  const section = loadPciPlan(file);
  const modelProblems = problems(() => pciComposeInput(section, { planFile: file, files: resolvePlanFiles({ pci: section }, file) }));
  assert.deepEqual(
    modelProblems.map((x) => x.path),
    ['pci.emulated[1].options.vendor', 'pci.emulated[2].model'],
  );
  assert.match(modelProblems[1]!.message, /unknown device model "nosuch" \(known: generic\)/);
  const fixed = plan('bad-refs2.yaml', refs);
  const input = pciComposeInput(loadPciPlan(fixed), { planFile: fixed, files: resolvePlanFiles({ pci: loadPciPlan(fixed) }, fixed) });
  const p = problems(() => composePci({ base: loadCapture(ASUS), ...input }, fixed));
  const byPath = new Map(p.map((x) => [x.path, x.message]));
  assert.match(byPath.get('pci.hide[0]')!, /matches no function/);
  assert.match(byPath.get('pci.bridges[0].at')!, /slot 0000:00:1f.0 is taken by 00:1f.0/);
  assert.match(byPath.get('pci.emulated[0].at')!, /bridge "nowhere" is never placed/);
  assert.match(byPath.get('pci.functions[0].target')!, /no real function 00:09.0/);
});

test('allocation that does not fit names the device, the BAR, its size and the window', () => {
  const file = plan(
    'tight.yaml',
    `
pci:
  functions:
    - { target: "06:00.0", bars: [{ bar: 0, size: 16M }, { bar: 1, size: 256M }, { bar: 3, size: 32M }, { bar: 5, size: 128 }, { bar: rom, size: 512K }] }
  unknownBarSize: alignment
  allocation:
    io: { base: 0x1000, limit: 0xffff }
    mem32: { base: 0xc0000000, size: 256M }
`,
  );
  const input = pciComposeInput(loadPciPlan(file), { planFile: file, files: resolvePlanFiles({ pci: loadPciPlan(file) }, file) });
  assert.throws(
    () => composePci({ base: loadCapture(ASUS), ...input }, file),
    (err: unknown) => {
      assert.ok(err instanceof PciAllocationError);
      assert.equal(err.where.at, 'pci.allocation');
      assert.match(err.message, /^.*tight\.yaml: pci\.allocation: cannot place 00:07\.0 prefetchable window \(288M, for 06:00\.0 BAR 1 \(mem64 prefetchable, 256M\); 06:00\.0 BAR 3 \(mem64 prefetchable, 32M\)\) in the mem32 window 0xc0000000-0xcfffffff: 288M aligned to 256M would end at 0xd1ffffff$/);
      return true;
    },
  );
});

test('a real device replayed from another dump, placed behind a fake bridge; dump paths are relative to the plan', () => {
  const file = plan(
    'real.yaml',
    `
pci:
  bridges: [{ name: br, at: "00:05.0" }]
  real:
    - name: gpu
      dump: ${relative(work, join(PCIUTILS_TESTS, 'cap-rebar'))}
      at: br/00.0
  functions:
    - target: gpu
      bars: [{ bar: 0, size: 256M }, { bar: 2, size: 2M }, { bar: 4, size: 256 }, { bar: 5, size: 256K }, { bar: rom, size: 128K }]
  allocation: true
`,
  );
  const input = pciComposeInput(loadPciPlan(file), { planFile: file, files: resolvePlanFiles({ pci: loadPciPlan(file) }, file) });
  const c = composePci({ ...input }, file);
  const gpu = c.topology.reachable().find((r) => r.fn.id === 'gpu')!;
  assert.deepEqual([gpu.bdf.bus, gpu.bdf.device, gpu.bdf.fn], [1, 0, 0]);
  assert.equal(gpu.fn.read(0, 4), 0x7300_1002);
  assert.equal(gpu.fn.bars!.layout(0)!.size, 256n << 20n);
});

test('hvmpt pci view: a bad plan exits 1 with the plan path in the message and prints no view', () => {
  const file = plan('cli-bad.yaml', 'pci:\n  hide:\n    - bdf: "00:02.0"\n');
  const r = hvmpt(['pci', 'view', ASUS, '--plan', file, '--format', 'lspci-dump']);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim(), `hvmpt: ${file}: pci.hide[0]: matches no function of ${ASUS}`);
  const missing = hvmpt(['pci', 'view', join(work, 'nope')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^hvmpt: .*nope: cannot read: ENOENT/);
  const usage = hvmpt(['pci', 'view', ASUS, '--format', 'xml']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /Allowed choices are tree, lspci-dump, json/);
});

test('hvmpt pci view --format json and tree carry the composition: hidden devices, windows, INTx routes, mappings', () => {
  const example = join(REPO_ROOT, 'examples', 'pci', 'asus-p6t6.yaml');
  const json = hvmpt(['pci', 'view', ASUS, '--plan', example, '--format', 'json']);
  assert.equal(json.status, 0, json.stderr);
  const v = JSON.parse(json.stdout) as {
    functions: Array<{ id: string; bdf: string; kind: string; intx: { pin: string; rootDevice: number; rootPin: string } | null; bridge?: { secondary: number } }>;
    hidden: Array<{ id: string }>;
    mappings: Array<{ id: string; bar: number; address: string }>;
  };
  assert.deepEqual(v.hidden.map((h) => h.id), ['00:1f.3']);
  const edu = v.functions.find((f) => f.id === 'edu')!;
  assert.equal(edu.bdf, '0000:06:00.0');
  assert.equal(edu.kind, 'fake');
  assert.deepEqual(edu.intx, { pin: 'A', rootBus: '0000:00', rootDevice: 5, rootPin: 'A', interruptLine: 0 });
  assert.equal(v.functions.find((f) => f.id === 'guestbr')!.bridge!.secondary, 6);
  assert.ok(v.mappings.some((m) => m.id === 'edu' && m.bar === 0));
  const tree = hvmpt(['pci', 'view', ASUS, '--plan', example]);
  assert.equal(tree.status, 0, tree.stderr);
  assert.match(tree.stdout, /05\.0 "guestbr" PCI bridge \[0604\]: .*\[1b36:0001\] \(fake, pci\.bridges\[0\]\)/);
  assert.match(tree.stdout, /hidden \(absent from every access path\):\n  00:1f\.3 SMBus/);
  const help = hvmpt(['pci', 'view', '--help']);
  assert.match(help.stdout, /--plan <plan\.yaml>/);
  assert.match(help.stdout, /mirrors the capture byte for byte/);
  const models = hvmpt(['pci', 'models']);
  assert.match(models.stdout, /^generic /m);
});
