import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Asm } from '../../tools/guest/asm.js';
import { microConfig, smpLoopImage } from '../../tools/guest/micro.js';
import { runMachine, startMachine } from '../../src/vmm/runner.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitMs } from '../helpers/limits.js';

const COM1 = 0x3f8;
const LAPIC = 0xfee0_0000;
/** Where the application processors start: SIPI vector 0xF8 is 0xF8000, the ROM alias of image offset 0x8000. */
const AP_VECTOR = 0xf8;
const AP_CODE_OFFSET = 0x8000;
/** A RAM word each AP increments once it has printed. */
const CHECKED_IN = 0x500;

function say(a: Asm, text: string): Asm {
  a.movImm('edx', COM1, 2);
  for (const ch of new TextEncoder().encode(text)) a.movImm('eax', ch, 1).outDx(1);
  return a;
}

/**
 * The boot vCPU (flat 32-bit) wakes every other vCPU with INIT and two SIPIs through its
 * in-kernel LAPIC's ICR, as firmware does, waits until `cpus - 1` have checked in, prints
 * `last` and runs `end`. Each application processor starts in real mode at the SIPI vector,
 * prints `ap` on COM1 (port exits its thread hands to the boot vCPU's), checks in with a
 * locked increment, and runs `apEnd`.
 */
function smpGuest(cpus: number, o: { ap: string; last: string; end: (a: Asm) => Asm; apEnd: (a: Asm) => Asm }): ReturnType<typeof microConfig> {
  const boot = new Asm(32);
  boot.storeImm(LAPIC + 0xf0, 0x1ff, 4); // SVR: APIC on
  boot.storeImm(LAPIC + 0x310, 0, 4);
  boot.storeImm(LAPIC + 0x300, 0x000c_4500, 4); // INIT, all but self
  boot.storeImm(LAPIC + 0x300, 0x000c_4600 | AP_VECTOR, 4); // SIPI, all but self
  boot.storeImm(LAPIC + 0x300, 0x000c_4600 | AP_VECTOR, 4);
  boot.label('wait').loadAbs(CHECKED_IN, 1).raw(0x3c, cpus - 1).jnz('wait'); // cmp al, cpus-1
  o.end(say(boot, o.last));
  const ap = new Asm(16);
  say(ap, o.ap).zeroDs();
  ap.raw(0xf0, 0xfe, 0x06, CHECKED_IN & 0xff, CHECKED_IN >> 8); // lock inc byte [CHECKED_IN]
  o.apEnd(ap);
  return microConfig(boot.bytes(), { flat32: true, cpus, data: [{ offset: AP_CODE_OFFSET, bytes: ap.bytes() }] });
}

const deadEnd = (a: Asm): Asm => a.cli().label('dead').hlt().jmp('dead');

test('SMP: the boot vCPU starts the others with INIT/SIPI through the in-kernel LAPIC; their port exits reach the devices; all halted is a halt', async (t) => {
  if (!skipUnlessKvm(t)) return;
  for (const cpus of [2, 4]) {
    const serial: number[] = [];
    const result = await runMachine(smpGuest(cpus, { ap: 'ap', last: '!', end: deadEnd, apEnd: deadEnd }), { onSerial: (b) => serial.push(...b), timeoutMs: limitMs(30_000) });
    const text = Buffer.from(serial).toString('latin1');
    assert.deepEqual(result.reason, { kind: 'halt' }, `${cpus} vCPUs: ${text}`);
    // Every AP printed (its bytes may interleave with another's), then the boot vCPU.
    assert.equal(text.length, 2 * (cpus - 1) + 1, text);
    assert.equal([...text.slice(0, -1)].filter((c) => c === 'a').length, cpus - 1);
    assert.ok(text.endsWith('!'));
    assert.equal(result.report.vcpuExits.length, cpus);
    // Each AP made its own exits (two port writes at least), and the total counts them.
    assert.ok(result.report.vcpuExits.slice(1).every((n) => n >= 2), String(result.report.vcpuExits));
    assert.equal(result.report.exits, result.report.vcpuExits.reduce((a, b) => a + b, 0));
  }
});

test('SMP: a machine with one vCPU still running is not halted; a stop ends every vCPU thread', async (t) => {
  if (!skipUnlessKvm(t)) return;
  // The APs spin in the guest (no exits) while the boot vCPU sits in HLT with interrupts off.
  const spinning = startMachine(smpGuest(2, { ap: 's', last: 'b', end: deadEnd, apEnd: (a) => a.label('spin').jmp('spin') }), { haltProbeMs: 50 });
  // An AP that ends in HLT with interrupts on waits for an interrupt: not dead either.
  const waiting = startMachine(smpGuest(3, { ap: 'w', last: 'b', end: deadEnd, apEnd: (a) => a.sti().label('w').hlt().jmp('w') }), { haltProbeMs: 50 });
  await new Promise((r) => setTimeout(r, 1500));
  spinning.stop('test asked');
  waiting.stop('test asked');
  for (const m of [spinning, waiting]) {
    const r = await m.done;
    assert.deepEqual(r.reason, { kind: 'stopped', why: 'test asked' });
  }
});

test('SMP: every device exit the other vCPU hands over is served at once, the boot vCPU halted, with no probe to wake it', async (t) => {
  if (!skipUnlessKvm(t)) return;
  // 20,000 config-space round trips (40,000 port exits) from the AP while the boot vCPU sits in
  // HLT with interrupts off: only the AP's kicks bring its thread out of KVM_RUN. A kick lost
  // to a race would leave the AP waiting for good (the halt probe, which would also wake it,
  // is off), and the run would end by the timeout instead.
  const config = { ...microConfig(new Uint8Array(0)), firmware: { name: 'smp-loop', image: smpLoopImage(20_000, 'ap') }, cpus: 2 };
  const r = await runMachine(config, { haltProbeMs: 0, timeoutMs: limitMs(300_000) });
  assert.deepEqual(r.reason, { kind: 'debug-exit', code: 1 });
  // Where KVM queues CF8 writes (docs/vmm.md), only the data-port reads exit; the writes are
  // applied from the ring, each before the read that follows it.
  assert.ok(r.report.vcpuExits[1]! + r.report.coalescedWrites >= 40_001, `${r.report.vcpuExits} exits, ${r.report.coalescedWrites} queued writes`);
});
