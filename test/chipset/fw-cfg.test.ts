import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { FW_CFG, FwCfg, type DmaMemory } from '../../src/hw/chipset/fw-cfg.js';
import { KernelImageError, linuxBootItems } from '../../src/hw/chipset/linux-boot.js';
import { haveFirmware, FIRMWARE } from '../../src/host/firmware/locate.js';

/** 1 MiB of fake guest RAM at 0; every access is bounds-checked and counted. */
class FakeRam implements DmaMemory {
  readonly bytes = new Uint8Array(1 << 20);
  outOfBounds = 0;
  covers(address: bigint, length: number): boolean {
    return address >= 0n && length >= 0 && address + BigInt(length) <= BigInt(this.bytes.length);
  }
  read(address: bigint, length: number): Uint8Array | undefined {
    return this.covers(address, length) ? this.bytes.slice(Number(address), Number(address) + length) : undefined;
  }
  write(address: bigint, data: Uint8Array): boolean {
    if (!this.covers(address, data.length)) {
      this.outOfBounds++;
      return false;
    }
    this.bytes.set(data, Number(address));
    return true;
  }
}

const be32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

function dma(dev: FwCfg, ram: FakeRam, at: number, control: number, length: number, address: number): number {
  const v = new DataView(ram.bytes.buffer);
  v.setUint32(at, control, false);
  v.setUint32(at + 4, length, false);
  v.setBigUint64(at + 8, BigInt(address), false);
  dev.writePort(0x514, 4, 0);
  dev.writePort(0x518, 4, be32(at));
  return v.getUint32(at, false);
}

test('fw_cfg: signature and ID over the data port, DMA signature, file directory in QEMU format', () => {
  const ram = new FakeRam();
  const dev = new FwCfg(ram, new Map([[FW_CFG.RAM_SIZE, Uint8Array.of(0, 0, 0, 8, 0, 0, 0, 0)]]));
  dev.addFile({ name: 'etc/e820', data: new Uint8Array(40) });
  dev.addFile({ name: 'bootorder', data: new TextEncoder().encode('/rom@genroms/x.bin\n') });
  dev.writePort(0x510, 2, FW_CFG.SIGNATURE);
  assert.equal(String.fromCharCode(...[0, 1, 2, 3].map(() => dev.readPort(0x511, 1))), 'QEMU');
  dev.writePort(0x510, 2, FW_CFG.ID);
  assert.equal(dev.readPort(0x511, 1) & 3, 3, 'traditional and DMA interfaces');
  // "QEMU CFG" read from the DMA register, lowest port first.
  assert.equal(Buffer.from(new Uint32Array([dev.readPort(0x514, 4), dev.readPort(0x518, 4)]).buffer).toString(), 'QEMU CFG');
  dev.writePort(0x510, 2, FW_CFG.FILE_DIR);
  const dir = Uint8Array.from({ length: 4 + 2 * 64 }, () => dev.readPort(0x511, 1));
  const v = new DataView(dir.buffer);
  assert.equal(v.getUint32(0, false), 2);
  const entries = [0, 1].map((i) => ({
    size: v.getUint32(4 + i * 64, false),
    select: v.getUint16(8 + i * 64, false),
    name: Buffer.from(dir.subarray(12 + i * 64, 12 + i * 64 + 56)).toString().replace(/\0+$/, ''),
  }));
  assert.deepEqual(entries, [
    { size: 19, select: 0x20, name: 'bootorder' },
    { size: 40, select: 0x21, name: 'etc/e820' },
  ]);
  // Past the end of an item the data port reads zeros.
  dev.writePort(0x510, 2, 0x20);
  for (let i = 0; i < 19; i++) dev.readPort(0x511, 1);
  assert.equal(dev.readPort(0x511, 1), 0);
});

test('fw_cfg DMA: select+read into RAM, skip, zero fill, and refusals for ROM/outside RAM and read-only writes', () => {
  const ram = new FakeRam();
  const dev = new FwCfg(ram);
  dev.addFile({ name: 'a', data: Uint8Array.of(1, 2, 3, 4, 5, 6) });
  dev.addFile({ name: 'w', data: new Uint8Array(4), writable: true });
  assert.equal(dma(dev, ram, 0x100, (0x20 << 16) | 0x08 | 0x02, 2, 0x2000), 0);
  assert.deepEqual([...ram.bytes.subarray(0x2000, 0x2002)], [1, 2]);
  assert.equal(dma(dev, ram, 0x100, 0x04, 2, 0), 0); // skip two
  assert.equal(dma(dev, ram, 0x100, 0x02, 4, 0x3000), 0); // 5, 6, then zeros
  assert.deepEqual([...ram.bytes.subarray(0x3000, 0x3004)], [5, 6, 0, 0]);
  // Destination outside RAM: error bit, nothing written anywhere.
  assert.equal(dma(dev, ram, 0x100, (0x20 << 16) | 0x0a, 16, 0xffff_0000), 1);
  assert.equal(ram.outOfBounds, 0);
  // Destination straddling the end of RAM: refused whole, not half-written.
  ram.bytes.fill(0xee, (1 << 20) - 8);
  assert.equal(dma(dev, ram, 0x100, (0x20 << 16) | 0x0a, 16, (1 << 20) - 8), 1);
  assert.ok(ram.bytes.subarray((1 << 20) - 8).every((b) => b === 0xee));
  // Writes: refused to a read-only file, accepted into a writable one.
  ram.bytes.set([9, 8, 7, 6], 0x4000);
  assert.equal(dma(dev, ram, 0x100, (0x20 << 16) | 0x18, 4, 0x4000), 1);
  assert.equal(dma(dev, ram, 0x100, (0x21 << 16) | 0x18, 4, 0x4000), 0);
  assert.deepEqual([...(dev.file('w') ?? [])], [9, 8, 7, 6]);
  // Descriptor itself outside RAM: refused, nothing happens.
  dev.writePort(0x514, 4, be32(0x1));
  dev.writePort(0x518, 4, 0);
  assert.ok(dev.refusals.some((r) => r.what === 'DMA descriptor'));
  assert.ok(dev.refusals.filter((r) => /not guest RAM/.test(r.detail)).length >= 2);
});

test('fw_cfg never writes outside guest RAM, whatever the guest does (property)', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('port' as const), port: fc.integer({ min: 0x510, max: 0x51b }), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.nat(), write: fc.boolean() }),
          fc.record({ kind: fc.constant('dma' as const), control: fc.nat(), length: fc.nat(), address: fc.nat(), at: fc.integer({ min: 0, max: (1 << 20) - 16 }) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        const ram = new FakeRam();
        const dev = new FwCfg(ram);
        dev.addFile({ name: 'etc/x', data: new Uint8Array(300).fill(7) });
        for (const op of ops) {
          if (op.kind === 'port') {
            if (op.write) dev.writePort(op.port, op.size, op.value);
            else dev.readPort(op.port, op.size);
          } else {
            dma(dev, ram, op.at & ~3, op.control, op.length % 0x20000, op.address);
          }
        }
        assert.equal(ram.outOfBounds, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('linux boot items from GRUB\'s lnxboot.img header: QEMU\'s addresses for protocol >= 2.02', (t) => {
  if (!haveFirmware('lnxboot')) {
    const line = `SKIPPED (no ${FIRMWARE.lnxboot.path}; install Debian package grub-pc-bin): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return;
  }
  const lnxboot = new Uint8Array(readFileSync(FIRMWARE.lnxboot.path));
  const image = new Uint8Array(lnxboot.length + 4096);
  image.set(lnxboot);
  const items = linuxBootItems({ kernel: image, cmdline: 'console=ttyS0', ramBelow4G: 128 << 20, name: 'grub.img' });
  const u32 = (k: number): number => new DataView(items.get(k)!.buffer).getUint32(0, true);
  const setup = items.get(FW_CFG.SETUP_DATA)!;
  const sv = new DataView(setup.buffer);
  const protocol = sv.getUint16(0x206, true);
  assert.ok(protocol >= 0x202, `lnxboot protocol ${protocol.toString(16)}`);
  assert.equal(u32(FW_CFG.SETUP_ADDR), 0x10000);
  assert.equal(u32(FW_CFG.KERNEL_ADDR), 0x100000);
  assert.equal(u32(FW_CFG.CMDLINE_ADDR), 0x20000);
  assert.equal(u32(FW_CFG.SETUP_SIZE), (lnxboot[0x1f1]! + 1) * 512);
  assert.equal(u32(FW_CFG.SETUP_SIZE) + u32(FW_CFG.KERNEL_SIZE), image.length);
  assert.equal(sv.getUint32(0x228, true), 0x20000, 'cmd_line_ptr patched');
  assert.equal(setup[0x210], 0xb0, 'type_of_loader');
  assert.equal(setup[0x211]! & 0x80, 0x80, 'CAN_USE_HEAP');
  assert.equal(sv.getUint16(0x224, true), 0x20000 - 0x10000 - 0x200, 'heap_end_ptr');
  assert.equal(Buffer.from(items.get(FW_CFG.CMDLINE_DATA)!).toString(), 'console=ttyS0\0');
  assert.throws(
    () => linuxBootItems({ kernel: new Uint8Array(0x1000), cmdline: '', ramBelow4G: 1 << 24, name: 'zeros.img' }),
    (e: unknown) => e instanceof KernelImageError && e.message === 'zeros.img: offset 0x202: no "HdrS" boot-protocol signature (not a bzImage or lnxboot image)',
  );
});
