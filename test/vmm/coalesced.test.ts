import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccessSize } from '../../src/hw/io.js';
import { CoalescedRing, RING_PAGE } from '../../src/vmm/coalesced.js';
import { IoLedger, MmioBus, PortBus } from '../../src/vmm/io-bus.js';

/** A ring page as KVM fills it: `first`, `last`, then 24-byte entries (linux/kvm.h). */
function page(): DataView {
  return new DataView(new ArrayBuffer(RING_PAGE));
}

function queue(v: DataView, capacity: number, w: { address: number; len: number; pio: boolean; data: readonly number[] }): void {
  const last = v.getUint32(4, true);
  const e = 8 + last * 24;
  v.setBigUint64(e, BigInt(w.address), true);
  v.setUint32(e + 8, w.len, true);
  v.setUint32(e + 12, w.pio ? 1 : 0, true);
  w.data.forEach((b, i) => v.setUint8(e + 16 + i, b));
  v.setUint32(4, (last + 1) % capacity, true);
}

function buses(): { ports: PortBus; mmio: MmioBus; seen: string[] } {
  const seen: string[] = [];
  const ledger = new IoLedger();
  const ports = new PortBus(ledger);
  const mmio = new MmioBus(ledger);
  const record = (space: string) => ({
    read: () => 0,
    write: (at: number, size: AccessSize, value: number) => void seen.push(`${space} ${at.toString(16)} ${size} ${value.toString(16)}`),
  });
  const p = record('pio');
  const m = record('mmio');
  ports.register('cf8', 0xcf8, 8, { readPort: p.read, writePort: p.write });
  mmio.register('dev', 0xfee0_0000, 0x1000, { readMmio: m.read, writeMmio: m.write });
  return { ports, mmio, seen };
}

test('queued writes are applied oldest first, each slot freed as it is, across the ring\'s wrap', () => {
  const v = page();
  const ring = new CoalescedRing(v);
  // KVM_COALESCED_MMIO_MAX for a 4 KiB page: (4096 - 8) / 24.
  assert.equal(ring.capacity, 170);
  const { ports, mmio, seen } = buses();
  // Start near the end so the queue wraps past slot 169 to 0.
  v.setUint32(0, 168, true);
  v.setUint32(4, 168, true);
  queue(v, ring.capacity, { address: 0xcf8, len: 4, pio: true, data: [0x00, 0x10, 0x00, 0x80] });
  queue(v, ring.capacity, { address: 0xcf9, len: 1, pio: true, data: [0x06] });
  queue(v, ring.capacity, { address: 0xfee0_0010, len: 2, pio: false, data: [0x34, 0x12] });
  queue(v, ring.capacity, { address: 0xfee0_0020, len: 8, pio: false, data: [1, 2, 3, 4, 5, 6, 7, 8] });
  assert.equal(v.getUint32(4, true), 2);
  ring.drain(ports, mmio);
  assert.deepEqual(seen.slice(0, 3), ['pio cf8 4 80001000', 'pio cf9 1 6', 'mmio 10 2 1234']);
  // MMIO handlers see offsets in their range. An 8-byte write goes out as an exit's would: two dwords, low half first.
  assert.deepEqual(seen.slice(3), ['mmio 20 4 4030201', 'mmio 24 4 8070605']);
  assert.equal(v.getUint32(0, true), 2, 'first caught up with last');
  assert.equal(ring.applied, 4);
  // An empty ring costs two reads and does nothing.
  ring.drain(ports, mmio);
  assert.equal(seen.length, 5);
});
