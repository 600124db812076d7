import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MiB } from '../../src/hw/mem/range.js';
import { PlanError, validate } from '../../src/plan/load.js';
import { identityRequestFromPlan, planMemorySchema } from '../../src/plan/memory.js';

test('the memory section: sizes as numbers or strings, defaults, other sections ignored', () => {
  const plan = validate(
    planMemorySchema,
    {
      memory: {
        size: '1663M',
        layout: 'identity',
        identity: { align: 2097152, above: '0x7400000', below: '4G', maxRegions: 2 },
        reservations: [{ start: '16M', size: '64M', name: 'heap' }, { start: 0, end: 4096, owner: 'host' }],
      },
      pci: { devices: [] },
    },
    'plan.yaml',
  );
  const req = identityRequestFromPlan(plan.memory!);
  assert.equal(req.size, 1663n * MiB);
  assert.equal(req.align, 2n * MiB);
  assert.equal(req.above, 0x7400000n);
  assert.equal(req.below, 1n << 32n);
  assert.equal(req.maxRegionsPerGuest, 2);
  assert.equal(req.lowMemory, 'private');
  assert.deepEqual(req.reservations, [
    { start: 16n * MiB, end: 80n * MiB, owner: 'hypervisor', name: 'heap' },
    { start: 0n, end: 4096n, owner: 'host', name: 'reserved' },
  ]);
  assert.equal(validate(planMemorySchema, { memory: { size: 4096 } }, 'p').memory!.layout, 'ordinary');
});

test('bad memory sections name every bad field', () => {
  assert.throws(
    () =>
      validate(
        planMemorySchema,
        { memory: { size: 1000, layout: 'flat', lowMemory: 'some', identity: { above: 2 ** 60, extra: 1 }, reservations: [{ start: '0x20000000000000000', size: 1 }] } },
        'plan.yaml',
      ),
    (err: unknown) => {
      assert.ok(err instanceof PlanError);
      const paths = err.problems.map((p) => p.path);
      for (const p of ['memory.size', 'memory.layout', 'memory.lowMemory', 'memory.identity.above', 'memory.identity', 'memory.reservations[0].start']) {
        assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
      }
      return true;
    },
  );
});
