import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { PlanError } from '../../src/plan/load.js';
import { loadPlan } from '../../src/plan/schema.js';
import type { ComposedMachine } from '../../src/platform/compose.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware } from '../helpers/require.js';

/**
 * Device categories (real / emulated / fake, dedicated / dynamic, exclusive / shared): the
 * plan records them, the monitor reports them, and refuses the one combination it can judge
 * now — a real device shared with others in an identity layout, where no IOMMU contains its DMA.
 */

const DESKTOP = readFileSync(join(REPO_ROOT, 'examples', 'desktop.yaml'), 'utf8').replaceAll('../../shared', resolve(REPO_ROOT, '..', 'shared'));

function compose(t: TestContext, edit: (plan: string) => string): ComposedMachine | PlanError | undefined {
  if (!skipUnlessBootFirmware(t)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-device-use-'));
  try {
    const file = join(dir, 'plan.yaml');
    writeFileSync(file, edit(DESKTOP));
    try {
      return composePlanFile(file);
    } catch (err) {
      if (err instanceof PlanError) return err;
      throw err;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rtl = (use: string) => (p: string): string => p.replace('- target: "08:00.0"', `- target: "08:00.0"\n      use: ${use}`);

test('defaults: host functions real, dedicated and exclusive; plan-made ones dynamic; chipset and hidden functions not listed', (t) => {
  const c = compose(t, (p) => p);
  if (c === undefined) return;
  assert.ok(!(c instanceof PlanError), String(c));
  assert.deepEqual(
    c.devices.map((d) => `${d.device} ${d.kind} ${d.allocation} ${d.sharing}`),
    ['00:1c.0 real dedicated exclusive', '00:1c.1 real dedicated exclusive', '08:00.0 real dedicated exclusive', 'guestbr fake dynamic exclusive', 'nic fake dynamic exclusive', 'edu fake dynamic exclusive'],
  );
  assert.ok(c.summary.some((l) => l.startsWith('pci: devices: 00:1c.0 real dedicated/exclusive')));
});

test('a real device shared with others is refused in an identity layout, by the path of its use, and allowed in an ordinary one', (t) => {
  const refused = compose(t, rtl('{ sharing: shared }'));
  if (refused === undefined) return;
  assert.ok(refused instanceof PlanError);
  assert.deepEqual(refused.problems.map((p) => p.path), ['pci.functions[0].use.sharing']);
  assert.match(refused.message, /08:00\.0 is a real device: shared .* needs an IOMMU .* identity layout/);

  const ordinary = compose(t, (p) => rtl('{ allocation: dynamic, sharing: shared }')(p).replace('  layout: identity\n  identity: { align: 1M }\n', ''));
  assert.ok(ordinary !== undefined && !(ordinary instanceof PlanError), String(ordinary));
  const d = ordinary.devices.find((x) => x.device === '08:00.0');
  assert.deepEqual(d, { device: '08:00.0', kind: 'real', allocation: 'dynamic', sharing: 'shared', path: 'pci.functions[0].use' });
});

test('an emulated device\'s use is recorded; a bad value is refused by path', (t) => {
  const c = compose(t, (p) => p.replace('    - name: nic\n      at: "00:03.0"\n', '    - name: nic\n      at: "00:03.0"\n      use: { allocation: dedicated, sharing: shared }\n'));
  if (c === undefined) return;
  assert.ok(!(c instanceof PlanError), String(c));
  assert.deepEqual(c.devices.find((x) => x.device === 'nic'), { device: 'nic', kind: 'fake', allocation: 'dedicated', sharing: 'shared', path: 'pci.emulated[0].use' });
  const bad = compose(t, (p) => p.replace('    - name: edu\n', '    - name: edu\n      use: { sharing: sometimes }\n'));
  assert.ok(bad instanceof PlanError);
  assert.ok(bad.problems.some((p) => p.path === 'pci.emulated[1].use.sharing'), bad.message);
});
