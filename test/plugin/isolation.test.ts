/**
 * Misbehaving plug-ins, the kinds a vendor's code produces: definitions of another API version
 * or missing members, option schemas and layouts that throw (anything, not only Errors),
 * policies that hang or go asynchronous, devices whose handlers return promises or strings,
 * whose state is not plain data, whose create or reset never returns, and a failed device's
 * kept context trying DMA. Each is reported by its plan path or fails its device alone; none
 * ends hvmpt with an internal error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildEmulatedFunction } from '../../src/hw/pci/emulated.js';
import { COMMAND } from '../../src/hw/pci/regs.js';
import { PlanError } from '../../src/plan/load.js';
import { isDmaRefused, type DeviceBehaviour, type DeviceContext, type PciDeviceDefinition } from '../../src/plugin/api.js';
import { DmaError, PluginDevice } from '../../src/plugin/device.js';
import { layoutSpec } from '../../src/plugin/layout.js';
import { preparePlan } from '../../src/plugin/load.js';
import { importPlugin } from '../../src/plugin/modules.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';

const EDU = pathToFileURL(join(REPO_ROOT, 'examples', 'plugins', 'edu.js')).href;

/** Plug-in modules in a directory inside the package, so `import ... from 'hvmpt'` resolves as a vendor's would. */
function moduleDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(REPO_ROOT, 'dist', 'isolation-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const HEAD = `import { definePciDevice, definePolicy, z } from 'hvmpt';\n`;
const LAYOUT = `layout: () => ({ vendorId: 0x1234, deviceId: 1, classCode: 0xff0000, bars: [{ index: 0, kind: 'mem32', size: 4096 }] })`;
const DEVICE = (extra = ''): string => `definePciDevice({ name: 'd', summary: 'd', options: z.strictObject({}), ${LAYOUT}, create: () => ({}) ${extra}})`;

test('plug-in modules of another API version, incomplete, or whose schema or layout throws: each refused by its plan path, exit 1', () => {
  const dir = moduleDir({
    'newer.js': `${HEAD}export default { ...${DEVICE()}, apiVersion: 2 };\n`,
    'older.js': `${HEAD}export default { ...${DEVICE()}, apiVersion: 0 };\n`,
    'hand-made.js': `export default { kind: 'hvmpt.pci-device', apiVersion: 1, name: 'h', summary: 'h', options: {}, layout() {} };\n`,
    'schema-throws.js': `${HEAD}export default { ...${DEVICE()}, options: { '~standard': { version: 1, vendor: 'x', validate() { throw new TypeError('schema bug'); } } } };\n`,
    'layout-throws.js': `${HEAD}export default definePciDevice({ name: 'l', summary: 'l', options: z.strictObject({}), layout() { throw 'not an Error'; }, create: () => ({}) });\n`,
  });
  try {
    const plan = join(dir, 'plan.yaml');
    const names = ['newer', 'older', 'hand-made', 'schema-throws', 'layout-throws'];
    writeFileSync(plan, `pci:\n  plugins:\n${names.map((n, i) => `    - { module: ./${n}.js, at: "00:0${i + 3}.0" }\n`).join('')}`);
    const r = hvmpt(['run', plan, '--no-lab']);
    assert.equal(r.status, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack: a diagnosed problem');
    assert.match(r.stderr, /pci\.plugins\[0\]\.module: [^;]*written for plug-in API 2, newer than this hvmpt's \(1\)/);
    assert.match(r.stderr, /pci\.plugins\[1\]\.module: [^;]*written for plug-in API 0, which this hvmpt \(API 1\) no longer runs/);
    assert.match(r.stderr, /pci\.plugins\[2\]\.module: [^;]*not a complete device plug-in: options is not a Standard Schema[^;]*; create is not a function/);
    assert.match(r.stderr, /pci\.plugins\[3\]\.options: the plug-in's options schema threw: schema bug/);
    assert.match(r.stderr, /pci\.plugins\[4\]\.options: l's layout for these options: not an Error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a policy that hangs is stopped, one that goes asynchronous refused: both reported by path, nothing composed', async () => {
  const dir = moduleDir({
    'hangs.js': `${HEAD}export default definePolicy({ name: 'hangs', summary: 'h', options: z.strictObject({}), apply() { for (;;) {} } });\n`,
    'later.js': `${HEAD}export default definePolicy({ name: 'later', summary: 'l', options: z.strictObject({}), async apply(ctx) { await null; ctx.hidePci('00:1f.3', 'too late'); } });\n`,
  });
  try {
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, 'policies:\n  - { module: ./hangs.js }\n  - { module: ./later.js }\n');
    const err = await preparePlan(plan).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PlanError, String(err));
    assert.deepEqual(
      err.problems.map((p) => `${p.path}: ${p.message}`),
      ['policies[0]: hangs failed: it ran longer than 5000 ms; stopped', 'policies[1]: later failed: apply returned a promise: policies are synchronous, and what it changes after an await is lost'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Run {
  readonly device: PluginDevice;
  readonly faults: string[];
}

/** The edu layout with `create` replaced, over a host that records faults; `limit` is the host's time limit for create/reset. */
async function device(create: (ctx: DeviceContext) => DeviceBehaviour, limit?: number): Promise<Run> {
  const edu = (await importPlugin(EDU, undefined, 'device')) as PciDeviceDefinition;
  const def: PciDeviceDefinition = { ...edu, create: (ctx) => create(ctx) };
  const layout = def.layout({});
  const fn = buildEmulatedFunction(layoutSpec(layout, 'bad')).fn;
  const faults: string[] = [];
  const d = new PluginDevice(def, {}, fn, layout, {
    setIntx: () => {},
    signalMessage: () => {},
    memory: { covers: () => true, read: (_a, n) => new Uint8Array(n), write: () => true },
    barMemory: (_b, n) => new Uint8Array(n),
    note: () => {},
    fault: (m) => void faults.push(m),
    ...(limit === undefined ? {} : { callLimitMs: limit }),
  });
  d.reset();
  return { device: d, faults };
}

test('devices that break the contract are failed alone, once: a promise from create or a handler, a read that is not a number, state that is not plain data', async () => {
  const asyncCreate = await device((async () => ({})) as unknown as () => DeviceBehaviour);
  assert.deepEqual(asyncCreate.faults, ['it returned a promise: plug-in calls are synchronous (docs/plugins.md)']);
  assert.equal(asyncCreate.device.barAccess(0).read(0, 4), 0xffff_ffff);

  let reads = 0;
  const stringRead = await device(() => ({ bars: { 0: { read: () => (reads++, '42' as unknown as number), write: () => {} } } }));
  assert.equal(stringRead.device.barAccess(0).read(0, 4), 0xffff_ffff);
  assert.equal(stringRead.device.barAccess(0).read(0, 2), 0xffff);
  assert.equal(reads, 1, 'never called again');
  assert.deepEqual(stringRead.faults, ['BAR 0 read at 0x0 returned string 42, not a number']);

  let rejected = false;
  const asyncWrite = await device(() => ({
    bars: {
      0: {
        read: () => 0,
        write: (async () => {
          rejected = true;
          throw new Error('rejected later');
        }) as unknown as () => void,
      },
    },
  }));
  asyncWrite.device.barAccess(0).write(0, 4, 1);
  assert.ok(rejected);
  assert.deepEqual(asyncWrite.faults, ['it returned a promise: plug-in calls are synchronous (docs/plugins.md)']);
  // Its rejection was taken care of: had it not been, node's test runner would report it.
  await new Promise((r) => setImmediate(r));

  const bigState = await device(() => ({ save: () => ({ n: 1n }) as never }));
  assert.equal(bigState.device.save().device, null);
  assert.match(bigState.faults[0] ?? '', /BigInt/);
  assert.equal(bigState.device.failed !== undefined, true);
});

test('a create or reset that never returns is stopped by the time limit and fails its device; a failed device\'s kept context gets no DMA', async () => {
  const hangs = await device(() => {
    for (;;) {
      // A vendor's bug.
    }
  }, 300);
  assert.deepEqual(hangs.faults, ['watchdog: its create ran longer than 300 ms; stopped']);
  assert.equal(hangs.device.barAccess(0).read(0, 4), 0xffff_ffff);

  let resets = 0;
  const resetHangs = await device(() => ({
    reset: () => {
      if (resets++ === 0) return;
      for (;;) {
        // Hangs on the second reset only.
      }
    },
  }), 300);
  assert.deepEqual(resetHangs.faults, []);
  resetHangs.device.reset();
  assert.deepEqual(resetHangs.faults, ['watchdog: its reset ran longer than 300 ms; stopped']);

  let kept: DeviceContext | undefined;
  const thrower = await device((ctx) => {
    kept = ctx;
    return { bars: { 0: { read: () => { throw new RangeError('bug'); }, write: () => {} } } };
  });
  thrower.device.fn.write(COMMAND, 2, 0x0006);
  assert.equal(kept!.dma.read(0x1000n, 4).length, 4, 'DMA works while the device is well');
  thrower.device.barAccess(0).read(0, 4);
  assert.deepEqual(thrower.faults, ['bug']);
  assert.throws(() => kept!.dma.read(0x1000n, 4), (e: unknown) => e instanceof DmaError && /the device has failed/.test(e.message));
});

test('a refused DMA the plug-in catches (isDmaRefused) is its to answer: virtio-blk with its avail ring outside RAM sets DEVICE_NEEDS_RESET and interrupts, and is not failed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-virtio-refused-'));
  try {
    const image = join(dir, 'disk.img');
    writeFileSync(image, new Uint8Array(8192));
    const def = (await importPlugin(pathToFileURL(join(REPO_ROOT, 'examples', 'plugins', 'virtio-blk.js')).href, undefined, 'device')) as PciDeviceDefinition;
    const options = { image, readOnly: false, serial: 'x' };
    const layout = def.layout(options);
    const fn = buildEmulatedFunction(layoutSpec(layout, 'vblk')).fn;
    const faults: string[] = [];
    const events: string[] = [];
    const ram = (a: bigint, n: number): boolean => a >= 0x10000n && a + BigInt(n) <= 0x20000n;
    const d = new PluginDevice(def, options, fn, layout, {
      setIntx: (level) => void events.push(`intx ${level ? 1 : 0}`),
      signalMessage: () => {},
      memory: { covers: ram, read: (a, n) => (ram(a, n) ? new Uint8Array(n) : undefined), write: (a, b) => ram(a, b.length) },
      barMemory: (_b, n) => new Uint8Array(n),
      note: (t) => void events.push(t),
      fault: (m) => void faults.push(m),
    });
    d.reset();
    fn.write(COMMAND, 2, 0x0006);
    const common = d.barAccess(4);
    common.write(0x14, 1, 0x03);
    common.write(0x08, 4, 1);
    common.write(0x0c, 4, 1); // VERSION_1, feature bit 32
    common.write(0x14, 1, 0x0b);
    common.write(0x20, 4, 0x10000);
    common.write(0x28, 4, 0x90_0000); // the avail ring, outside the guest's RAM
    common.write(0x30, 4, 0x11000);
    common.write(0x1c, 2, 1);
    common.write(0x14, 1, 0x0f);
    assert.equal(common.read(0x14, 1), 0x0f);
    common.write(0x3000, 2, 0); // notify queue 0
    assert.equal(common.read(0x14, 1), 0x4f, 'DEVICE_NEEDS_RESET set beside what the driver wrote');
    assert.deepEqual(faults, [], 'the device is not failed');
    assert.equal(d.failed, undefined);
    assert.deepEqual(d.dmaRefusals.map((r) => [r.address, r.reason]), [[0x90_0002n, 'not the guest\'s RAM']]);
    assert.ok(events.includes('vblk: virtqueue DMA refused (not the guest\'s RAM): the device needs a reset'), events.join('; '));
    assert.ok(events.includes('intx 1'), 'a configuration change interrupt (INTx: no MSI-X enabled)');
    assert.equal(common.read(0x1000, 1), 2, 'ISR: configuration change');
    common.write(0x14, 1, 0);
    assert.equal(common.read(0x14, 1), 0, 'a driver reset clears it');
    assert.equal(isDmaRefused(new Error('other')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
