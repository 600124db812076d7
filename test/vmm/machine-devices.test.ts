import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSys } from '../../src/native/index.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { Asm } from '../../src/vmm/guest/asm.js';
import { microConfig } from '../../src/vmm/guest/micro.js';
import { Machine } from '../../src/vmm/machine.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { skipUnlessKvm } from './kvm-helpers.js';

test('a device that throws inside a running guest is failed and reported; the guest goes on', (t) => {
  if (!skipUnlessKvm(t)) return;
  // The guest reads the faulty device twice (the second read must see all ones without
  // calling it again), prints both values and a byte from a healthy device, then exits.
  const a = new Asm(16);
  for (let i = 0; i < 2; i++) a.movImm('edx', 0x700, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0x71, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x11, 1).outDx(1).cli().hlt();
  const serial = new ByteRing(1 << 12);
  const machine = new Machine(loadSys(), microConfig(a.bytes()), { serial, debug: new ByteRing(1 << 12) }, new Int32Array(new SharedArrayBuffer(4)));
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
  const machine = new Machine(loadSys(), config, { serial: new ByteRing(1 << 12), debug: new ByteRing(1 << 12) }, new Int32Array(new SharedArrayBuffer(4)));
  machine.ports.register('intx-trigger', 0x700, 2, { readPort: () => 0, writePort: (port) => machine.setIntx('dev', port === 0x700) });
  try {
    assert.deepEqual(runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control), { kind: 'debug-exit', code: (0x5a << 1) | 1 });
    assert.equal(machine.pirq.isaIrq(2), 5);
  } finally {
    machine.close();
  }
});
