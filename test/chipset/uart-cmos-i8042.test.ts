import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AcpiPm } from '../../src/hw/chipset/acpi-pm.js';
import { Cmos, CMOS } from '../../src/hw/chipset/cmos.js';
import { I8042, SystemControlPortA } from '../../src/hw/chipset/i8042.js';
import { ResetControl } from '../../src/hw/chipset/reset-control.js';
import type { SystemControl } from '../../src/hw/chipset/system.js';
import { Uart8250 } from '../../src/hw/chipset/uart8250.js';
import type { IrqLine } from '../../src/hw/irq/line.js';

function probeLine(): IrqLine & { levels: boolean[] } {
  const levels: boolean[] = [];
  return { levels, set: (l) => void levels.push(l) };
}

function probeSystem(): SystemControl & { events: string[] } {
  const events: string[] = [];
  return { events, reset: (s) => void events.push(`reset: ${s}`), powerOff: (s) => void events.push(`off: ${s}`) };
}

test('UART: SeaBIOS detection sequence, THR to the sink, THRE interrupt gated by OUT2 and cleared by IIR read', () => {
  const out: number[] = [];
  const irq = probeLine();
  const u = new Uart8250(0x3f8, (b) => out.push(b), irq);
  // serialio.c detect_serial: IER=2 reads back 2, IIR reports THRE (0x02), then IER=0.
  u.writePort(0x3f9, 1, 0x02);
  assert.equal(u.readPort(0x3f9, 1), 0x02);
  assert.equal(u.readPort(0x3fa, 1) & 0x3f, 0x02);
  u.writePort(0x3f9, 1, 0x00);
  assert.equal(u.readPort(0x3fa, 1) & 0x0f, 0x01);
  // Divisor latch: DLAB=1 redirects offsets 0 and 1.
  u.writePort(0x3fb, 1, 0x83);
  u.writePort(0x3f8, 1, 0x01);
  u.writePort(0x3fb, 1, 0x03);
  assert.deepEqual(out, []);
  u.writePort(0x3f8, 1, 0x41);
  assert.deepEqual(out, [0x41]);
  assert.equal(u.readPort(0x3fd, 1) & 0x60, 0x60);
  // Interrupt line only with OUT2.
  u.writePort(0x3f9, 1, 0x02);
  assert.deepEqual(irq.levels, []);
  u.writePort(0x3fc, 1, 0x08);
  assert.deepEqual(irq.levels, [true]);
  assert.equal(u.readPort(0x3fa, 1) & 0x0f, 0x02);
  assert.deepEqual(irq.levels, [true, false]);
  // Received bytes raise RDI and set LSR.DR.
  u.writePort(0x3f9, 1, 0x01);
  u.receive(Uint8Array.of(0x61, 0x62));
  assert.equal(u.readPort(0x3fd, 1) & 1, 1);
  assert.equal(u.readPort(0x3fa, 1) & 0x0f, 0x04);
  assert.equal(u.readPort(0x3f8, 1), 0x61);
  assert.equal(u.readPort(0x3f8, 1), 0x62);
  assert.equal(u.readPort(0x3fd, 1) & 1, 0);
  // Loopback: THR comes back on RBR instead of the wire.
  u.writePort(0x3fc, 1, 0x18);
  u.writePort(0x3f8, 1, 0x7a);
  assert.deepEqual(out, [0x41]);
  assert.equal(u.readPort(0x3f8, 1), 0x7a);
});

test('CMOS: memory-size bytes as SeaBIOS reads them, BCD/binary clock, status registers', () => {
  const when = Date.UTC(2026, 10, 24, 23, 5, 9);
  const c = new Cmos({ ramBelow4G: 0xe000_0000, ramAbove4G: 0x1_2000_0000n, cpus: 2, now: () => when });
  const rd = (reg: number): number => {
    c.writePort(0x70, 1, reg);
    return c.readPort(0x71, 1);
  };
  // paravirt.c: rs = ((EXTMEM2_LOW << 16) | (EXTMEM2_HIGH << 24)) + 16 MiB
  assert.equal((((rd(CMOS.above16MLow) << 16) | (rd(CMOS.above16MHigh) << 24)) >>> 0) + 16 * 1024 * 1024, 0xe000_0000);
  assert.equal((rd(CMOS.above4GLow) << 16) + rd(CMOS.above4GMid) * 2 ** 24 + rd(CMOS.above4GHigh) * 2 ** 32, 0x1_2000_0000);
  assert.equal(rd(CMOS.extMemLow) | (rd(CMOS.extMemHigh) << 8), 0xffff);
  assert.equal(rd(CMOS.baseMemLow) | (rd(CMOS.baseMemHigh) << 8), 640);
  assert.equal(rd(CMOS.smpCount), 1);
  assert.equal(rd(CMOS.statusA) & 0x80, 0, 'never update-in-progress');
  assert.equal(rd(CMOS.statusD), 0x80);
  assert.deepEqual([rd(CMOS.hours), rd(CMOS.minutes), rd(CMOS.seconds), rd(CMOS.dayOfMonth), rd(CMOS.month), rd(CMOS.year), rd(CMOS.century)], [0x23, 0x05, 0x09, 0x24, 0x11, 0x26, 0x20]);
  c.writePort(0x70, 1, CMOS.statusB);
  c.writePort(0x71, 1, 0x06); // binary, 24h
  assert.equal(rd(CMOS.hours), 23);
  c.writePort(0x70, 1, CMOS.statusB);
  c.writePort(0x71, 1, 0x00); // BCD, 12h: 11 PM
  assert.equal(rd(CMOS.hours), 0x91);
  c.writePort(0x70, 1, 0x80 | 0x40);
  assert.equal(c.nmiMasked, true);
  c.writePort(0x71, 1, 0x5a);
  assert.equal(rd(0x40), 0x5a);
});

test('i8042: self-tests, keyboard reset/ID, command byte, reset line; port 0x92 fast reset', () => {
  const sys = probeSystem();
  const kbd = probeLine();
  const k = new I8042(sys, kbd, probeLine());
  const cmd = (v: number): void => k.writePort(0x64, 1, v);
  const data = (v: number): void => k.writePort(0x60, 1, v);
  const drain = (): number[] => {
    const out: number[] = [];
    while (k.readPort(0x64, 1) & 1) out.push(k.readPort(0x60, 1));
    return out;
  };
  cmd(0xaa);
  assert.deepEqual(drain(), [0x55]);
  cmd(0xab);
  assert.deepEqual(drain(), [0x00]);
  cmd(0x60);
  data(0x30); // interrupts off, both ports disabled
  cmd(0x20);
  assert.deepEqual(drain(), [0x30]);
  data(0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa]);
  data(0xf2);
  assert.deepEqual(drain(), [0xfa, 0xab, 0x83]);
  data(0xed);
  data(0x07);
  assert.deepEqual(drain(), [0xfa, 0xfa]);
  cmd(0xd4);
  data(0xf2);
  assert.equal(k.readPort(0x64, 1) & 0x21, 0x21, 'aux data flagged in status');
  assert.deepEqual(drain(), [0xfa, 0x00]);
  cmd(0x60);
  data(0x01);
  data(0xf4);
  assert.equal(kbd.levels.at(-1), true, 'IRQ1 rises when keyboard data arrives with interrupts on');
  assert.equal(k.readPort(0x60, 1), 0xfa);
  assert.equal(kbd.levels.at(-1), false, 'and falls once it is read');
  assert.equal(k.readPort(0x60, 1), 0xfa, 'an empty buffer reads the last byte again');
  assert.deepEqual(sys.events, []);
  cmd(0xfe);
  assert.match(sys.events[0] ?? '', /^reset: i8042/);
  const p92 = new SystemControlPortA(sys);
  p92.writePort(0x92, 1, 0x02);
  assert.equal(sys.events.length, 1);
  p92.writePort(0x92, 1, 0x03);
  assert.match(sys.events[1] ?? '', /0x92 fast reset/);
});

test('i8042: every byte of a reply is an interrupt of its own (a rising edge each), keyboard and mouse', () => {
  const kbd = probeLine();
  const aux = probeLine();
  const k = new I8042(probeSystem(), kbd, aux);
  const rises = (line: { levels: boolean[] }): number => line.levels.filter((l, i) => l && line.levels[i - 1] !== true).length;
  k.writePort(0x64, 1, 0x60);
  k.writePort(0x60, 1, 0x43); // translation, both interrupts on, both ports enabled
  // atkbd's probe: GET ID answers ACK, 0xAB, 0x41 (translated); Linux reads each byte in the
  // interrupt it raised.
  k.writePort(0x60, 1, 0xf2);
  const got: number[] = [];
  while (k.readPort(0x64, 1) & 1) {
    assert.equal(kbd.levels.at(-1), true, `IRQ1 is up for byte ${got.length}`);
    got.push(k.readPort(0x60, 1));
  }
  assert.deepEqual(got, [0xfa, 0xab, 0x41]);
  assert.equal(rises(kbd), 3);
  assert.equal(kbd.levels.at(-1), false);
  // psmouse's reset: ACK, BAT, ID, each on IRQ12.
  k.writePort(0x64, 1, 0xd4);
  k.writePort(0x60, 1, 0xff);
  while (k.readPort(0x64, 1) & 1) k.readPort(0x60, 1);
  assert.equal(rises(aux), 3);
  assert.equal(aux.levels.at(-1), false);
  assert.equal(rises(kbd), 3, 'no keyboard interrupt for mouse bytes');
});

test('0xCF9 resets only with RST_CPU; ACPI PM powers off on SLP_EN with the S5 type and refuses other sleep states', () => {
  const sys = probeSystem();
  const rc = new ResetControl(sys);
  rc.writePort(0xcf9, 1, 0x02);
  assert.deepEqual(sys.events, []);
  assert.equal(rc.readPort(0xcf9, 1), 0x02);
  // The other bytes of the CF8 dword are not the register: Linux's probe for configuration
  // mechanism #2 writes 0xF4 at 0xCF8 (function 2) and must not reset, nor find 0x00 there.
  rc.writePort(0xcf8, 1, 0xf4);
  rc.writePort(0xcfa, 1, 0x06);
  assert.deepEqual(sys.events, []);
  assert.deepEqual([rc.readPort(0xcf8, 1), rc.readPort(0xcfa, 1)], [0xff, 0xff]);
  rc.writePort(0xcf9, 1, 0x06);
  assert.match(sys.events[0] ?? '', /hard reset/);
  let ns = 0n;
  const pm = new AcpiPm(0x600, sys, { s5SleepType: 5, nowNs: () => ns });
  pm.writePort(0x604, 2, (1 << 10) | 0x2000); // S1: refused
  assert.deepEqual(pm.refusedSleepTypes, [1]);
  assert.equal(pm.readPort(0x600, 2) & 0x8000, 0x8000, 'WAK_STS set after a refused sleep');
  pm.writePort(0x600, 2, 0x8000);
  assert.equal(pm.readPort(0x600, 2) & 0x8000, 0, 'status bits are write-1-to-clear');
  ns = 1_000_000_000n;
  assert.equal(pm.readPort(0x608, 4), 3_579_545 & 0xff_ffff);
  assert.equal(sys.events.length, 1);
  pm.writePort(0x605, 1, (5 << 2) | 0x20); // byte write of the high half: SLP_TYP=5, SLP_EN
  assert.match(sys.events[1] ?? '', /^off: .*S5/);
});
