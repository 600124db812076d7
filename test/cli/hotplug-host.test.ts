import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControlRefusal, HotplugHost } from '../../src/cli/hotplug-host.js';
import type { DeviceUse } from '../../src/platform/device-use.js';
import type { ControlRequest, ControlResult, MachineStatus, Removal } from '../../src/vmm/control-protocol.js';
import { MachineError, type RunningMachine } from '../../src/vmm/runner.js';

/**
 * The main thread's detach logic against a machine that answers from a script: which devices
 * may be detached, targets by name or guest address, the wait for the guest's eject, and
 * --force-after, including a guest that ejects just as the force is sent (one removal, once).
 */
const uses: DeviceUse[] = [
  { device: 'edu', kind: 'real', allocation: 'dedicated', sharing: 'exclusive', path: undefined },
  { device: 'nic', kind: 'real', allocation: 'dynamic', sharing: 'exclusive', path: 'pci.passthrough[1].use' },
];

const status: MachineStatus = {
  exits: 1,
  memorySlots: 7,
  irqfds: 1,
  msiGsis: 0,
  passthrough: 2,
  hotplug: { slots: [2, 5], occupied: [5], free: [2] },
  devices: [{ name: 'nic', bdf: '00:05.0', ids: '8086:10d3', kind: 'real', removable: true, state: 'present' }],
};

type Request = Omit<ControlRequest, 'id'>;

function rig(answer: (r: Request, host: HotplugHost) => ControlResult) {
  const seen: Request[] = [];
  let host: HotplugHost | undefined;
  const machine = {
    request: async (r: Request) => {
      seen.push(r);
      return answer(r, host!);
    },
  } as unknown as RunningMachine;
  host = new HotplugHost({ plan: { memory: {} } as never, sys: undefined as never, inputs: undefined as never, uses, machine: () => machine, note: () => {} });
  return { host, seen };
}

const removal = (how: Removal['how']): Removal => ({ name: 'nic', slot: 5, how, problems: [] });

test('a dedicated device is refused with where its category comes from; an unknown target is named', async () => {
  const { host, seen } = rig(() => ({ op: 'status', status }));
  await assert.rejects(host.detach('edu', undefined), (e: unknown) => e instanceof ControlRefusal && /^edu is dedicated \(a real device is dedicated unless its plan entry says use: \{ allocation: dynamic \}\): it stays with the guest for the run$/.test(e.message));
  await assert.rejects(host.detach('00:1f.0', undefined), /00:1f\.0: no device of that name or guest address on the machine/);
  assert.deepEqual(seen.map((r) => r.op), ['status'], 'nothing but a status was asked of the machine');
});

test('detach by guest address waits for the guest\'s eject and says what happened', async () => {
  const { host, seen } = rig((r, h) => {
    if (r.op === 'status') return { op: 'status', status };
    if (r.op === 'detach') {
      setTimeout(() => h.removed(removal('ejected')), 20);
      return { op: 'detach', name: 'nic', slot: 5, state: 'eject-requested' };
    }
    throw new Error(`unexpected ${r.op}`);
  });
  const d = await host.detach('00:05.0', 10);
  assert.deepEqual([d.detached, d.how, d.slot], ['nic', 'ejected by the guest', 5]);
  assert.match('note' in d.host ? d.host.note : '', /a device of the plan: it stays with its pass-through driver until the run ends/);
  assert.deepEqual(seen.map((r) => r.op), ['status', 'detach']);
});

test('--force-after takes the device when the guest does not eject; a refused force after the guest\'s eject still reports the eject', async () => {
  const forced = rig((r) => (r.op === 'detach' ? { op: 'detach', name: 'nic', slot: 5, state: 'eject-requested' } : r.op === 'force-detach' ? { op: 'force-detach', removal: removal('forced') } : { op: 'status', status }));
  const t0 = Date.now();
  const d = await forced.host.detach('nic', 0.2);
  assert.equal(d.how, 'forced');
  assert.ok(Date.now() - t0 >= 190, 'it waited first');
  assert.deepEqual(forced.seen.map((r) => r.op), ['detach', 'force-detach']);

  // The guest's eject lands while the force is on its way: the machine refuses the force (no such device), the eject stands.
  const race = rig((r, h) => {
    if (r.op === 'detach') return { op: 'detach', name: 'nic', slot: 5, state: 'eject-requested' };
    if (r.op === 'force-detach') {
      h.removed(removal('ejected'));
      throw new MachineError('no device nic on the running machine\'s hot-plug slots');
    }
    return { op: 'status', status };
  });
  const e = await race.host.detach('nic', 0.05);
  assert.equal(e.how, 'ejected by the guest');
});

test('a uio attach is refused, before anything is asked or bound, unless the machine\'s RAM is this host\'s carve at the same addresses', async () => {
  const entry = { host: '0000:00:03.0', backend: 'uio' };
  const cases: Array<{ plan: unknown; inputs: unknown; why: RegExp }> = [
    { plan: { memory: { layout: 'ordinary' } }, inputs: {}, why: /entry\.backend: uio: the machine's RAM is not identity-mapped \(memory\.layout is not identity\); without an IOMMU the device would DMA to host memory that is not the guest's/ },
    { plan: { memory: { layout: 'identity' } }, inputs: { hostMap: { live: false } }, why: /entry\.backend: uio: its identity layout is a rehearsal on a named map \(machine\.hostMap\)/ },
  ];
  for (const c of cases) {
    const seen: Request[] = [];
    const machine = { request: async (r: Request) => void seen.push(r) } as unknown as RunningMachine;
    const host = new HotplugHost({ plan: c.plan as never, sys: undefined as never, inputs: c.inputs as never, uses, machine: () => machine, note: () => {} });
    await assert.rejects(host.attach(entry), (e: unknown) => e instanceof ControlRefusal && c.why.test(e.message));
    assert.deepEqual(seen, [], 'the machine was not asked anything');
  }
});
