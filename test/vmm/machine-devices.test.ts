import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSys } from '../../src/native/index.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { Asm } from '../../tools/guest/asm.js';
import { microConfig } from '../../tools/guest/micro.js';
import { join } from 'node:path';
import { loadPlan } from '../../src/plan/schema.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { Machine } from '../../src/vmm/machine.js';
import { DEFAULT_ECAM_BASE } from '../../src/platform/pci-platform.js';
import { runMachine } from '../../src/vmm/runner.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { controlBuffer } from '../../src/vmm/vcpu-control.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitMs } from '../helpers/limits.js';

test('a device that throws inside a running guest is failed and reported; the guest goes on', (t) => {
  if (!skipUnlessKvm(t)) return;
  // The guest reads the faulty device twice (the second read must see all ones without
  // calling it again), prints both values and a byte from a healthy device, then exits.
  const a = new Asm(16);
  for (let i = 0; i < 2; i++) a.movImm('edx', 0x700, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0x71, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x11, 1).outDx(1).cli().hlt();
  const serial = new ByteRing(1 << 12);
  const machine = new Machine(loadSys(), microConfig(a.bytes()), { serial, debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)));
  let calls = 0;
  machine.ports.register('faulty', 0x700, 2, {
    readPort: () => {
      calls++;
      throw new Error('model bug: index out of range');
    },
    writePort: () => {},
  });
  try {
    const reason = runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control);
    assert.deepEqual(reason, { kind: 'debug-exit', code: (0x11 << 1) | 1 });
    const out = serial.drain();
    assert.deepEqual([out[0], out[1]], [0xff, 0xff]);
    assert.equal(out.length, 3);
    assert.equal(calls, 1, 'a failed device is not called again');
    assert.deepEqual(machine.report().deviceFaults, [{ device: 'faulty', message: 'model bug: index out of range' }]);
  } finally {
    machine.close();
  }
});

test('a PCI device\'s INTx reaches the guest through the PIIX3 PIRQ register the guest programmed', (t) => {
  if (!skipUnlessKvm(t)) return;
  // Slot 3 INTA is PIRQC on PIIX (register 0x62 of 00:01.0); the guest routes it to IRQ 5.
  const a = new Asm(16);
  const out8 = (port: number, v: number): void => void a.movImm('edx', port, 2).movImm('eax', v, 1).outDx(1);
  a.cli().zeroDs();
  a.storeImm(0x0d * 4, 0xdead, 2);
  const fix = a.offset - 2;
  a.storeImm(0x0d * 4 + 2, 0xf000, 2);
  out8(0x20, 0x11);
  out8(0x21, 0x08);
  out8(0x21, 0x04);
  out8(0x21, 0x01);
  out8(0x21, 0xdf);
  out8(0x4d0, 0x20); // ELCR: IRQ5 level-triggered, as PCI lines are
  a.movImm('edx', 0xcf8, 2).movImm('eax', 0x8000_0860, 4).outDx(4); // 00:01.0 register 0x60
  out8(0xcfe, 5); // PIRQC -> IRQ 5
  out8(0x700, 1); // the test device asserts INTA
  a.sti().label('idle').hlt().jmp('idle');
  const handler = a.offset;
  out8(0x701, 0); // de-assert, then EOI
  out8(0x20, 0x20);
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x5a, 1).outDx(1).cli().hlt();
  const code = a.bytes();
  code[fix] = handler & 0xff;
  code[fix + 1] = handler >> 8;
  const config = microConfig(code, {
    pci: {
      planFile: 'test',
      ecamBase: 0xb000_0000n,
      roms: [],
      input: { emulated: [{ name: 'dev', at: { kind: 'root', segment: 0, bus: 0, device: 3, fn: 0 }, spec: { id: 'dev', vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000, interruptPin: 1 }, path: 'test' }] },
    },
  });
  const machine = new Machine(loadSys(), config, { serial: new ByteRing(1 << 12), debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)));
  machine.ports.register('intx-trigger', 0x700, 2, { readPort: () => 0, writePort: (port) => machine.setIntx('dev', port === 0x700) });
  try {
    assert.deepEqual(runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control), { kind: 'debug-exit', code: (0x5a << 1) | 1 });
    assert.equal(machine.pirq.isaIrq(2), 5);
  } finally {
    machine.close();
  }
});

test('the desktop plan\'s hidden host device is on no bus a guest can reach, through CF8 or ECAM', async (t) => {
  if (!skipUnlessKvm(t)) return;
  const planFile = join(REPO_ROOT, 'examples', 'desktop.yaml');
  const composed = composePlanFile(planFile);
  const hidden = composed.pci.hidden[0]!.fn;
  const hiddenId = (hidden.read(0, 2) | (hidden.read(2, 2) << 16)) >>> 0;
  // A flat 32-bit guest reads the ID of all 65536 functions of segment 0 through ECAM, then
  // through CF8/CFC, counting functions present (esi) and matches of the hidden ID (ebx).
  const a = new Asm(32);
  a.raw(0x31, 0xdb, 0x31, 0xf6); // xor ebx, ebx; xor esi, esi
  const scan = (name: string, setup: () => void, read: () => void, step: number): void => {
    setup();
    a.movImm('ecx', 0x10000, 4).label(`${name}-top`);
    read();
    a.raw(0x83, 0xf8, 0xff).jz(`${name}-next`); // cmp eax, -1
    a.raw(0x46).raw(0x3d).raw(...[0, 8, 16, 24].map((s) => (hiddenId >>> s) & 0xff)).jnz(`${name}-next`); // inc esi; cmp eax, id
    a.raw(0x43); // inc ebx
    a.label(`${name}-next`).raw(0x81, 0xc7, ...[0, 8, 16, 24].map((s) => (step >>> s) & 0xff)); // add edi, step
    a.decEcx().jnz(`${name}-top`);
  };
  const ecam = Number(DEFAULT_ECAM_BASE);
  scan('ecam', () => void a.raw(0xbf, ...[0, 8, 16, 24].map((s) => (ecam >>> s) & 0xff)), () => void a.raw(0x8b, 0x07), 0x1000);
  scan(
    'cf8',
    () => void a.raw(0xbf, 0, 0, 0, 0x80),
    () => void a.raw(0x89, 0xf8).movImm('edx', 0xcf8, 2).outDx(4).movImm('edx', 0xcfc, 2).inDx(4),
    0x100,
  );
  a.movEaxEbx().movImm('edx', 0x3f8, 2).outDx(1).raw(0x89, 0xf0).outDx(1); // ebx, then esi, low bytes
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x33, 1).outDx(1).cli().hlt();
  const config = { ...microConfig(a.bytes(), { flat32: true }), pci: composed.config.pci };
  const serial: number[] = [];
  const result = await runMachine(config, { onSerial: (b) => serial.push(...b), timeoutMs: limitMs(120_000) });
  assert.deepEqual(result.reason, { kind: 'debug-exit', code: (0x33 << 1) | 1 });
  const rootFunctions = composed.pci.topology.reachable().filter(({ bdf }) => bdf.bus === 0).length;
  assert.deepEqual(serial, [0, 2 * rootFunctions], 'the hidden ID is never read; both mechanisms see the same root-bus functions');
});
