/**
 * The plug-in framework without a guest: the edu example plug-in driven through hvmpt's side
 * of the contract (INTx with Interrupt Disable and Interrupt Status, MSI as the guest enables
 * it, DMA only with bus mastering, only into RAM, only where the protection map allows), a
 * plug-in that throws failed and contained, save/restore as plain data, option errors named
 * by plan path, the package's public entry, and the class-hiding policy on a real machine's
 * capture, its SSDT method evaluated by ACPICA's acpiexec.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { DmaMemory } from '../../src/hw/chipset/fw-cfg.js';
import { ProtectionMap } from '../../src/hw/mem/protection.js';
import { buildEmulatedFunction } from '../../src/hw/pci/emulated.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { PlanError } from '../../src/plan/load.js';
import type { PciDeviceDefinition } from '../../src/plugin/api.js';
import { PluginDevice, type DeviceHost } from '../../src/plugin/device.js';
import { layoutSpec } from '../../src/plugin/layout.js';
import { preparePlan } from '../../src/plugin/load.js';
import { importPlugin } from '../../src/plugin/modules.js';
import { acpiexec } from '../acpi/generate/acpiexec.js';
import { fixture, REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware, skipUnlessCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from '../vmm/kvm-helpers.js';

const EDU = pathToFileURL(join(REPO_ROOT, 'examples', 'plugins', 'edu.js')).href;

interface Harness {
  readonly device: PluginDevice;
  readonly events: string[];
  readonly ram: Uint8Array;
  line: boolean;
}

/** The edu plug-in over a host that records what it does, with 64 KiB of "RAM" at 0x10000. */
async function edu(options: { protection?: ProtectionMap } = {}): Promise<Harness> {
  const def = (await importPlugin(EDU, undefined, 'device')) as PciDeviceDefinition;
  const opts = { dmaMaskBits: 28 };
  const layout = def.layout(opts);
  const fn = buildEmulatedFunction(layoutSpec(layout, 'edu')).fn;
  const ram = new Uint8Array(0x10000);
  const inRam = (a: bigint, n: number): boolean => a >= 0x10000n && a + BigInt(n) <= 0x20000n;
  const memory: DmaMemory = {
    covers: inRam,
    read: (a, n) => (inRam(a, n) ? ram.slice(Number(a) - 0x10000, Number(a) - 0x10000 + n) : undefined),
    write: (a, d) => (inRam(a, d.length) ? (ram.set(d, Number(a) - 0x10000), true) : false),
  };
  const events: string[] = [];
  const h = { events, ram, line: false } as { device?: PluginDevice; events: string[]; ram: Uint8Array; line: boolean };
  const host: DeviceHost = {
    setIntx: (level) => {
      h.line = level;
      events.push(`intx ${level ? 1 : 0}`);
    },
    signalMessage: (kind, vector, address, data) => void events.push(`${kind} ${vector} 0x${address.toString(16)} 0x${data.toString(16)}`),
    memory,
    protection: options.protection,
    barMemory: (_bar, size) => new Uint8Array(size),
    note: (t) => void events.push(`note ${t}`),
    fault: (m) => void events.push(`fault ${m}`),
  };
  h.device = new PluginDevice(def, opts, fn, layout, host);
  h.device.reset();
  return h as Harness;
}

test('the edu plug-in: ID, liveness, factorial, INTx gated by Interrupt Disable with Interrupt Status, MSI once enabled', async () => {
  const h = await edu();
  const bar = h.device.barAccess(0);
  const fn = h.device.fn;
  assert.equal(bar.read(0x00, 4), 0x010000ed);
  bar.write(0x04, 4, 0x12345678);
  assert.equal(bar.read(0x04, 4), ~0x12345678 >>> 0);
  bar.write(0x08, 4, 10);
  assert.equal(bar.read(0x20, 4) & 1, 0, 'not computing');
  assert.equal(bar.read(0x08, 4), 3628800);
  assert.equal(bar.read(0x00, 2), 0xffff, 'edu answers 4-byte accesses only below 0x80');

  bar.write(0x60, 4, 0x10005);
  assert.equal(h.line, true);
  assert.equal(fn.read(0x06, 2) & 0x08, 0x08, 'Status: Interrupt Status');
  assert.equal(bar.read(0x24, 4), 0x10005);
  fn.write(0x04, 2, fn.read(0x04, 2) | 0x400); // Interrupt Disable, as uio_pci_generic masks it
  assert.equal(h.line, false);
  assert.equal(fn.read(0x06, 2) & 0x08, 0x08, 'still pending while disabled');
  bar.write(0x64, 4, 0x10005);
  assert.equal(fn.read(0x06, 2) & 0x08, 0, 'acknowledged');
  fn.write(0x04, 2, fn.read(0x04, 2) & ~0x400);
  assert.equal(h.line, false);

  // MSI: the capability the layout declared, programmed and enabled as a guest would.
  const cap = fn.capabilities!.caps.find((c) => c.id === 0x05)!;
  fn.write(cap.offset + 4, 4, 0xfee0_0000);
  fn.write(cap.offset + 8, 4, 0);
  fn.write(cap.offset + 0x0c, 2, 0x4041);
  fn.write(cap.offset + 2, 2, 0x0001);
  h.events.length = 0;
  bar.write(0x60, 4, 1);
  assert.deepEqual(h.events, ['msi 0 0xfee00000 0x4041']);
  assert.equal(h.line, false, 'no INTx while MSI is on');
});

test('the edu plug-in\'s DMA: only with bus mastering, only into RAM, only where the protection map allows', async () => {
  const h = await edu();
  const bar = h.device.barAccess(0);
  const dma = (src: number, dst: number, len: number, cmd: number): void => {
    bar.write(0x80, 4, src);
    bar.write(0x84, 4, 0);
    bar.write(0x88, 4, dst);
    bar.write(0x8c, 4, 0);
    bar.write(0x90, 4, len);
    bar.write(0x98, 4, cmd | 1);
  };
  for (let i = 0; i < 256; i++) h.ram[0x100 + i] = (i * 7 + 3) & 0xff;
  dma(0x10100, 0x40000, 256, 0);
  assert.match(h.events.find((e) => e.startsWith('fault')) ?? '', /bus mastering is off/);
  assert.equal(h.device.failed !== undefined, true, 'a refused DMA the plug-in does not catch fails the device');
  assert.equal(bar.read(0x00, 4), 0xffff_ffff, 'a failed device reads all ones');

  const g = await edu();
  const gbar = g.device.barAccess(0);
  g.device.fn.write(0x04, 2, 0x0006);
  for (let i = 0; i < 256; i++) g.ram[0x100 + i] = (i * 7 + 3) & 0xff;
  const run = (src: number, dst: number, len: number, cmd: number): void => {
    gbar.write(0x80, 4, src);
    gbar.write(0x88, 4, dst);
    gbar.write(0x90, 4, len);
    gbar.write(0x98, 4, cmd | 1);
  };
  run(0x10100, 0x40000, 256, 0);
  run(0x40000, 0x10800, 256, 2 | 4);
  assert.deepEqual([...g.ram.subarray(0x800, 0x900)], [...g.ram.subarray(0x100, 0x200)]);
  assert.equal(g.line, true, 'DMA done raises INTx 0x100');
  assert.equal(gbar.read(0x24, 4), 0x100);
  run(0x40000, 0x30000, 256, 2);
  assert.match(g.events.find((e) => e.startsWith('fault')) ?? '', /not the guest's RAM/);

  const p = await edu({ protection: ProtectionMap.build([{ start: 0x10000n, end: 0x11000n, access: 'rw', kind: 'ram', name: 'identity region 0' }], []) });
  p.device.fn.write(0x04, 2, 0x0006);
  const pbar = p.device.barAccess(0);
  pbar.write(0x80, 4, 0x10100);
  pbar.write(0x88, 4, 0x40000);
  pbar.write(0x90, 4, 16);
  pbar.write(0x98, 4, 1);
  assert.equal(p.device.failed, undefined, 'inside the grant');
  pbar.write(0x80, 4, 0x40000);
  pbar.write(0x88, 4, 0x11800);
  pbar.write(0x98, 4, 3);
  assert.match(p.device.failed ?? '', /protection map: 0x11000 is not in any range this guest may map/);
});

test('save and restore: plain data that survives JSON, and a fresh instance goes on from it', async () => {
  const a = await edu();
  const bar = a.device.barAccess(0);
  bar.write(0x04, 4, 0xcafe);
  bar.write(0x08, 4, 6);
  bar.write(0x40010, 4, 0xdeadbeef);
  bar.write(0x60, 4, 0x42);
  const saved = JSON.parse(JSON.stringify(a.device.save())) as ReturnType<PluginDevice['save']>;
  const b = await edu();
  b.device.restore(saved);
  const rb = b.device.barAccess(0);
  assert.equal(rb.read(0x04, 4), ~0xcafe >>> 0);
  assert.equal(rb.read(0x08, 4), 720);
  assert.equal(rb.read(0x40010, 4), 0xdeadbeef);
  assert.equal(rb.read(0x24, 4), 0x42);
  assert.equal(b.line, true, 'the restored device drives its line again');
});

test('a plug-in that throws is failed once and contained; its handlers are not called again', async () => {
  const def = (await importPlugin(EDU, undefined, 'device')) as PciDeviceDefinition;
  let calls = 0;
  const bad: PciDeviceDefinition = {
    ...def,
    create: () => ({
      bars: {
        0: {
          read: () => {
            calls++;
            throw new Error('index out of range');
          },
          write: () => {},
        },
      },
    }),
  };
  const layout = bad.layout({});
  const fn = buildEmulatedFunction(layoutSpec(layout, 'bad')).fn;
  const faults: string[] = [];
  const d = new PluginDevice(bad, {}, fn, layout, { setIntx: () => {}, signalMessage: () => {}, memory: { covers: () => false, read: () => undefined, write: () => false }, barMemory: (_b, n) => new Uint8Array(n), note: () => {}, fault: (m) => void faults.push(m) });
  assert.equal(d.barAccess(0).read(0, 4), 0xffff_ffff);
  assert.equal(d.barAccess(0).read(0, 4), 0xffff_ffff);
  assert.equal(calls, 1);
  assert.deepEqual(faults, ['index out of range']);
});

test('the package entry: import { definePciDevice, definePolicy, z } from \'hvmpt\', with types', async () => {
  const m = (await import('hvmpt')) as Record<string, unknown>;
  // Exactly these: the public surface is what docs/plugins.md's "Stability and versions" covers,
  // and an addition is a decision made there, not an accident of an export.
  assert.deepEqual(Object.keys(m).sort(), ['PLUGIN_API_VERSION', 'definePciDevice', 'definePolicy', 'isDmaRefused', 'z']);
  const docs = readFileSync(join(REPO_ROOT, 'docs', 'plugins.md'), 'utf8');
  assert.match(docs, new RegExp(`\\*\\*API version ${String(m['PLUGIN_API_VERSION'])}\\*\\*`), 'the guide names the API version the code speaks');
  // A vendor's TypeScript, checked against the published types through the exports map.
  // Not under the checkout: this file runs in the lab where KVM is missing, and there only the temporary directories are writable.
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-vendor-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'hvmpt'));
    writeFileSync(
      join(dir, 'device.ts'),
      `import { definePciDevice, z } from 'hvmpt';\n` +
        `export default definePciDevice({ name: 'x', summary: 'x', options: z.object({ n: z.number() }),\n` +
        `  layout: (o) => ({ vendorId: o.n, deviceId: 1, classCode: 0xff0000, bars: [{ index: 0, kind: 'mem32', size: 4096 }] }),\n` +
        `  create: (ctx) => ({ bars: { 0: { read: (off: number) => off + ctx.config.read(0, 2), write: () => ctx.intx(true) } } }) });\n` +
        `// @ts-expect-error: a layout needs a class code\n` +
        `definePciDevice({ name: 'y', summary: 'y', options: z.object({}), layout: () => ({ vendorId: 1, deviceId: 2 }), create: () => ({}) });\n`,
    );
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['device.ts'] }));
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plug-in entries: options checked by the plug-in\'s own schema, each problem by plan path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-plugin-plan-'));
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(
      plan,
      `pci:\n  plugins:\n` +
        `    - { name: edu, module: ${join(REPO_ROOT, 'examples/plugins/edu.js')}, at: "00:06.0", options: { dmaMaskBits: 8, colour: red } }\n` +
        `    - { module: ./missing.js, at: "00:07.0" }\n` +
        `    - { module: ${join(REPO_ROOT, 'examples/plugins/hide-class.js')}, at: "00:08.0" }\n`,
    );
    const err = await preparePlan(plan).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PlanError, String(err));
    const paths = err.problems.map((p) => p.path);
    assert.ok(paths.includes('pci.plugins[0].options.dmaMaskBits'), paths.join(' '));
    assert.ok(paths.includes('pci.plugins[0].options'), 'the unknown key');
    assert.match(err.problems.find((p) => p.path === 'pci.plugins[1].module')!.message, /no such file/);
    assert.match(err.problems.find((p) => p.path === 'pci.plugins[2].module')!.message, /not a device plug-in \(definePciDevice\)/);

    writeFileSync(plan, `pci:\n  plugins:\n    - { name: edu, module: ${join(REPO_ROOT, 'examples/plugins/edu.js')}, at: "00:06.0" }\n`);
    const ok = await preparePlan(plan);
    const composed = composePlanFile(plan, ok.plan, { plugins: ok.plugins });
    const e = composed.pci.entries.find((x) => x.fn.id === 'edu')!;
    assert.equal(composed.pci.topology.addressOf(e.fn), '00:06.0');
    assert.equal(e.fn.read(0, 4), 0x11e81234);
    assert.deepEqual(composed.config.pci?.plugins?.map((p) => [p.name, p.export]), [['edu', 'default']]);
    assert.doesNotThrow(() => structuredClone(composed.config), 'the machine config crosses to the vCPU thread');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the hide-class policy hides the SMBus of a real ASUS P6T6 from PCI and ACPI, adds its SSDT method (acpiexec), and records why', async (t) => {
  if (!skipUnlessCommand(t, 'acpiexec', 'acpica-tools')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-policy-'));
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(
      plan,
      `memory: { size: 128M }\n` +
        `policies:\n  - { module: ${join(REPO_ROOT, 'examples/plugins/hide-class.js')}, options: { class: "0x0c05" } }\n` +
        `machine:\n  hostPci: { capture: ${fixture('pci', 'pciutils-tests', 'tree-asus-p6t6')}, functions: ["00:1c.0", "08:00.0", "00:1f.3"] }\n`,
    );
    const prepared = await preparePlan(plan);
    assert.deepEqual(prepared.changes.map((c) => `${c.policy} ${c.action} ${c.target}`), ['hide-class hide-pci 00:1f.3', 'hide-class add-ssdt HVPOLICY']);
    assert.match(prepared.changes[0]!.why, /class 0x0c0500 \(8086:3a30\)/);
    const composed = composePlanFile(plan, prepared.plan);
    const visible = composed.pci.topology.reachable().map(({ fn }) => `${fn.read(0, 2).toString(16)}:${fn.read(2, 2).toString(16)}`);
    assert.ok(!visible.includes('8086:3a30'), `the SMBus is gone from the bus: ${visible.join(' ')}`);
    assert.ok(visible.includes('10ec:8168'), 'the NIC stays');
    const files = composed.acpi.tables.filter((x) => x.signature === 'DSDT' || x.signature === 'SSDT').map((x, i) => {
      const f = join(dir, `${x.signature}${i}.aml`);
      writeFileSync(f, x.bytes);
      return f;
    });
    const r = acpiexec('evaluate \\_SB.HVPH\n', files);
    assert.deepEqual(r.results.map((x) => [x.path, x.value]), [['\\_SB.HVPH', 1n]], r.output);
    assert.doesNotMatch(r.output, /SBUS|0x001F0003/i, 'nothing of the SMBus in the namespace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plug-in named by package: found in node_modules beside the plan, through its exports map (import only)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-plugin-package-'));
  try {
    const pkg = join(dir, 'node_modules', '@acme', 'counter');
    mkdirSync(join(pkg, 'lib'), { recursive: true });
    symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'hvmpt'));
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@acme/counter', type: 'module', exports: { '.': { import: './lib/device.js' } } }));
    writeFileSync(
      join(pkg, 'lib', 'device.js'),
      `import { definePciDevice, z } from 'hvmpt';\n` +
        `export default definePciDevice({ name: 'acme-counter', summary: 'counts', options: z.strictObject({ device: z.number().int() }),\n` +
        `  layout: (o) => ({ vendorId: 0x1d0f, deviceId: o.device, classCode: 0xff0000, bars: [{ index: 2, kind: 'io', size: 16 }] }),\n` +
        `  create: () => { let n = 0; return { bars: { 2: { read: () => n++, write: () => {} } } }; } });\n`,
    );
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `pci:\n  plugins:\n    - { name: counter, module: "@acme/counter", at: "00:09.0", options: { device: 0x77 } }\n`);
    const p = await preparePlan(plan);
    assert.equal(p.plugins[0]?.kind, 'module');
    const composed = composePlanFile(plan, p.plan, { plugins: p.plugins });
    const fn = composed.pci.entries.find((e) => e.fn.id === 'counter')!.fn;
    assert.equal(fn.read(0, 4), 0x00771d0f);
    assert.equal(fn.read(0x18, 4) & 1, 1, 'BAR 2 is an I/O BAR');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plug-in file outside any package imports \'hvmpt\' and gets the hvmpt that loads it, in the main thread and the vCPU thread', (t) => {
  if (!skipUnlessKvm(t)) return;
  if (!skipUnlessBootFirmware(t)) return;
  // tmpdir(): no node_modules above it, no package to resolve 'hvmpt' through.
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-vendor-file-'));
  try {
    writeFileSync(
      join(dir, 'counter.js'),
      `import { definePciDevice, definePolicy, z } from 'hvmpt';\n` +
        `export default definePciDevice({ name: 'counter', summary: 'counts', options: z.strictObject({}),\n` +
        `  layout: () => ({ vendorId: 0x1d0f, deviceId: 0x77, classCode: 0xff0000, bars: [{ index: 0, kind: 'mem32', size: 4096 }] }),\n` +
        `  create: () => { let n = 0; return { bars: { 0: { read: () => n++, write: () => {} } } }; } });\n` +
        `export const quiet = definePolicy({ name: 'quiet', summary: 'hides nothing', options: z.strictObject({}), apply() {} });\n`,
    );
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: 128M }\npolicies: [{ module: ./counter.js, export: quiet }]\npci:\n  plugins: [{ name: counter, module: ./counter.js, at: "00:06.0" }]\n`);
    const r = hvmpt(['run', plan, '--no-lab', '--timeout', '2', '--report', join(dir, 'report.json')]);
    assert.match(r.stderr, /^hvmpt: pci: plug-in counter: counter from \.\/counter\.js/m, r.stderr);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { plugins: Array<{ device: string; failed: string | null }> };
    assert.deepEqual(report.plugins.map((p) => [p.device, p.failed]), [['counter', null]], 'built and run in the vCPU thread');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hvmpt run prints what each policy changed and records it in --report', (t) => {
  if (!skipUnlessKvm(t)) return;
  if (!skipUnlessBootFirmware(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-policy-run-'));
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(
      plan,
      `memory: { size: 128M }\npolicies:\n  - { module: ${join(REPO_ROOT, 'examples/plugins/hide-class.js')}, options: { class: "0x0c05" } }\n` +
        `machine:\n  hostPci: { capture: ${fixture('pci', 'pciutils-tests', 'tree-asus-p6t6')}, functions: ["00:1c.0", "08:00.0", "00:1f.3"] }\n`,
    );
    const r = hvmpt(['run', plan, '--no-lab', '--timeout', '2', '--report', join(dir, 'report.json')]);
    assert.match(r.stderr, /^hvmpt: policy hide-class: hide-pci 00:1f\.3: class 0x0c0500 \(8086:3a30\) is hidden by policy$/m);
    assert.match(r.stderr, /^hvmpt: policy hide-class: add-ssdt HVPOLICY: /m);
    assert.match(r.stderr, /hidden: 00:1f\.3/);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { policies: Array<{ policy: string; action: string; target: string }> };
    assert.deepEqual(report.policies.map((c) => `${c.policy} ${c.action} ${c.target}`), ['hide-class hide-pci 00:1f.3', 'hide-class add-ssdt HVPOLICY']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
