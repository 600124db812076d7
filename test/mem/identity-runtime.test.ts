/**
 * The identity runtime's pieces that need no lab: the carve read back from a kernel command
 * line and /proc/iomem, the live-host checks and range locks on a made-up /proc, the kernel
 * moved into identity RAM, and the Interrupt Disable bit a uio guest sees. The lab test
 * (test/passthrough/identity-lab.test.ts) runs them for real.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { intxSharers } from '../../src/host/backends/open.js';
import { FW_CFG } from '../../src/hw/chipset/fw-cfg.js';
import { KernelImageError, linuxBootItems } from '../../src/hw/chipset/linux-boot.js';
import { parseIomem, reservedCovers, systemRamIn } from '../../src/hw/mem/iomem.js';
import { memparse, reservedByCmdline } from '../../src/hw/mem/kernel-params.js';
import { claimIdentityRanges, IdentityHostError } from '../../src/host/mem/identity-host.js';
import { IntxState } from '../../src/host/uio/intx-state.js';
import type { Sys } from '../../src/native/sys.js';
import { resolvePlatformInputs } from '../../src/host/plan/inputs.js';
import { loadPlan } from '../../src/plan/schema.js';
import { composeMachine } from '../../src/platform/compose.js';

test('memparse and memmap=SIZE$START as the kernel reads them', () => {
  assert.equal(memparse('256M'), 256n << 20n);
  assert.equal(memparse('0x40000000'), 0x4000_0000n);
  assert.equal(memparse('4k'), 4096n);
  assert.equal(memparse('1G'), 1n << 30n);
  assert.equal(memparse('010'), 8n);
  assert.equal(memparse('lots'), undefined);
  assert.deepEqual(reservedByCmdline('console=ttyS0 memmap=256M$0x40000000 quiet memmap=4K$0x54000000,1M$0x60000000 memmap=1G@0x0'), [
    { start: 0x4000_0000n, end: 0x5000_0000n },
    { start: 0x5400_0000n, end: 0x5400_1000n },
    { start: 0x6000_0000n, end: 0x6010_0000n },
  ]);
  assert.deepEqual(reservedByCmdline('console=ttyS0'), []);
});

const IOMEM = `00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-3fffffff : System RAM
  01000000-01ffffff : Kernel code
40000000-4fffffff : Reserved
50000000-7ffdffff : System RAM
b0000000-bfffffff : PCI MMCONFIG 0000 [bus 00-ff]
  b0000000-bfffffff : Reserved
`;

test('/proc/iomem: System RAM and Reserved coverage; a non-root reader sees no addresses', () => {
  const e = parseIomem(IOMEM)!;
  assert.equal(e.length, 8);
  assert.deepEqual(systemRamIn(e, { start: 0x4000_0000n, end: 0x5000_0000n }), []);
  assert.ok(reservedCovers(e, { start: 0x4000_0000n, end: 0x5000_0000n }));
  assert.ok(!reservedCovers(e, { start: 0x4000_0000n, end: 0x5000_1000n }));
  assert.equal(systemRamIn(e, { start: 0x4ff0_0000n, end: 0x5010_0000n }).length, 1);
  // Nested Reserved lines (under a PCI window) do not count as a carve.
  assert.ok(!reservedCovers(e, { start: 0xb000_0000n, end: 0xb010_0000n }));
  assert.equal(parseIomem('00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n'), undefined);
});

function fakeProc(dir: string, cmdline: string, iomem: string): string {
  const proc = join(dir, 'proc');
  mkdirSync(proc, { recursive: true });
  writeFileSync(join(proc, 'cmdline'), cmdline);
  writeFileSync(join(proc, 'iomem'), iomem);
  return proc;
}

test('the live host: the carve booted and Reserved, one lock per range, and every refusal names the parameter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-idhost-'));
  try {
    const range = [{ start: 0x4000_0000n, end: 0x5000_0000n }];
    const params = ['memmap=256M$1G'];
    const lockDir = join(dir, 'locks');
    const good = fakeProc(join(dir, 'good'), 'console=ttyS0 memmap=256M$0x40000000\n', IOMEM);
    const claim = claimIdentityRanges(range, params, { procRoot: good, lockDir });
    assert.equal(claim.locks.length, 1);
    assert.equal(readFileSync(claim.locks[0]!, 'utf8').trim(), String(process.pid));
    // A second guest asking for the same range is refused while the first holds it (this process is alive).
    assert.throws(() => claimIdentityRanges(range, params, { procRoot: good, lockDir }), (e: unknown) => e instanceof IdentityHostError && /identity RAM \[0x40000000, 0x50000000\) is held by another guest \(hvmpt process \d+/.test(e.message));
    claim.release();
    // A lock its process left behind is taken over.
    writeFileSync(claim.locks[0] ?? join(lockDir, 'identity-0x40000000-0x50000000.lock'), '2147483646\n');
    const again = claimIdentityRanges(range, params, { procRoot: good, lockDir });
    again.release();

    const bare = fakeProc(join(dir, 'bare'), 'console=ttyS0\n', IOMEM.replace('40000000-4fffffff : Reserved\n50000000-7ffdffff', '40000000-7ffdffff'));
    assert.throws(
      () => claimIdentityRanges(range, params, { procRoot: bare, lockDir }),
      (e: unknown) =>
        e instanceof IdentityHostError &&
        e.message.includes('the host was not booted with the carve: its command line reserves no [0x40000000, 0x50000000) with memmap=; add memmap=256M$1G to the host kernel\'s command line (in grub.cfg: memmap=256M\\$1G) and reboot') &&
        e.message.includes('[0x40000000, 0x50000000) is System RAM in /proc/iomem'),
    );
    const nonRoot = fakeProc(join(dir, 'nonroot'), 'memmap=256M$0x40000000\n', IOMEM.replace(/[0-9a-f]{8}-[0-9a-f]{8}/g, '00000000-00000000'));
    assert.throws(() => claimIdentityRanges(range, params, { procRoot: nonRoot, lockDir }), /shows no addresses \(read as a non-root user\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A relocatable bzImage header (protocol 2.15) with `setup_sects` 4 and a kernel of `kernel` bytes. */
function bzImage(kernel: number, relocatable = true): Uint8Array {
  const k = new Uint8Array(5 * 512 + kernel);
  const v = new DataView(k.buffer);
  k[0x1f1] = 4;
  v.setUint32(0x202, 0x5372_6448, true);
  v.setUint16(0x206, 0x20f, true);
  k[0x211] = 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, 0x7fff_ffff, true);
  v.setUint32(0x230, 0x20_0000, true);
  k[0x234] = relocatable ? 1 : 0;
  v.setUint32(0x260, 0x200_0000, true);
  return k;
}

test('linuxboot in an identity layout: the kernel goes to the identity region, code32_start says so; ordinary layouts keep 1 MiB', () => {
  const u32 = (items: Map<number, Uint8Array>, key: number): number => new DataView(items.get(key)!.buffer).getUint32(0, true);
  const ram = [
    { start: 0n, end: 0x9f000n },
    { start: 0x4000_0000n, end: 0x5000_0000n },
  ];
  const items = linuxBootItems({ kernel: bzImage(0x10000), initrd: new Uint8Array(0x1000), cmdline: 'x', ramBelow4G: 0x5000_0000, ram, name: 'vmlinuz' });
  assert.equal(u32(items, FW_CFG.KERNEL_ADDR), 0x4000_0000);
  assert.equal(new DataView(items.get(FW_CFG.SETUP_DATA)!.buffer).getUint32(0x214, true), 0x4000_0000, 'code32_start');
  assert.equal(u32(items, FW_CFG.INITRD_ADDR), 0x4fff_e000);
  assert.equal(u32(items, FW_CFG.SETUP_ADDR), 0x10000, 'setup in the private low RAM');
  const plain = linuxBootItems({ kernel: bzImage(0x10000), cmdline: 'x', ramBelow4G: 0x1000_0000, ram: [{ start: 0n, end: 0x1000_0000n }], name: 'vmlinuz' });
  assert.equal(u32(plain, FW_CFG.KERNEL_ADDR), 0x100000);
  assert.equal(new DataView(plain.get(FW_CFG.SETUP_DATA)!.buffer).getUint32(0x214, true), 0x100000);
  assert.throws(() => linuxBootItems({ kernel: bzImage(0x10000, false), cmdline: 'x', ramBelow4G: 0x5000_0000, ram, name: 'old' }), (e: unknown) => e instanceof KernelImageError && /not relocatable/.test(e.message));
  assert.throws(() => linuxBootItems({ kernel: bzImage(0x10000), cmdline: 'x', ramBelow4G: 0x4080_0000, ram: [ram[0]!, { start: 0x4000_0000n, end: 0x4080_0000n }], name: 'big' }), /no RAM range above 1 MiB/);
});

/** Config space bytes behind pread/pwrite: what uio's sysfs `config` would be. */
function fakeConfig(): { sys: Sys; bytes: Uint8Array; triggers: number[] } {
  const bytes = new Uint8Array(256);
  const triggers: number[] = [];
  const sys = {
    pread: (_fd: number, buf: Uint8Array, offset: number) => (buf.set(bytes.subarray(offset, offset + buf.length)), buf.length),
    pwrite: (_fd: number, buf: Uint8Array, offset: number) => (bytes.set(buf, offset), buf.length),
    eventfdWrite: (fd: number) => void triggers.push(fd),
  } as unknown as Sys;
  return { sys, bytes, triggers };
}

test('uio INTx: the guest keeps its own Interrupt Disable bit and never clears the host\'s mask; the device is unmasked on the EOI only when the guest wants INTx', () => {
  const { sys, bytes, triggers } = fakeConfig();
  const s = new IntxState(sys, 3, IntxState.buffer());
  s.trigger = 9;
  const masked = (): boolean => (bytes[5]! & 0x04) !== 0;
  s.reset();
  assert.ok(!masked());
  // The host's handler masked the device; the bridge tells the guest: masked until its EOI.
  bytes[5] = 0x04;
  s.triggered();
  assert.ok(masked());
  // The guest rewrites Command with bit 10 clear (a driver enabling INTx): the host's mask stays.
  assert.equal(s.guestWrote(0x00), 0x04);
  assert.equal(s.guestDisable, false);
  // Its uio driver masks (bit 10 set) while handling; the EOI comes: still masked, the guest wants it so.
  assert.equal(s.guestWrote(0x04), 0x04);
  assert.equal(s.guestDisable, true);
  s.resampled();
  assert.ok(masked());
  // The guest unmasks: nothing in flight, so the device is unmasked with its write.
  assert.equal(s.guestWrote(0x00), 0x00);
  // Without the guest's bit, the EOI itself unmasks.
  bytes[5] = 0x04;
  s.triggered();
  s.resampled();
  assert.ok(!masked());
  // Unmasking a device that already has an interrupt pending: it stays masked and the guest gets a new interrupt instead.
  bytes[5] = 0x04;
  s.triggered();
  bytes[6] = 0x08;
  assert.deepEqual(triggers, []);
  s.resampled();
  assert.ok(masked());
  assert.deepEqual(triggers, [9]);
  assert.equal(s.guestWrote(0x00), 0x04, 'still in flight');
  bytes[6] = 0x00;
  s.resampled();
  assert.ok(!masked());
  s.stop();
  assert.ok(s.stopped);
});

test('a uio function whose host IRQ another driver takes on INTx is found; uio, vfio-pci and MSI users are not sharers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-sharers-'));
  try {
    const dev = (name: string, irq: number, driver?: string, msi = 0): void => {
      const d = join(dir, 'bus', 'pci', 'devices', name);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'irq'), `${irq}\n`);
      if (driver !== undefined) {
        mkdirSync(join(dir, 'drivers', driver), { recursive: true });
        symlinkSync(join(dir, 'drivers', driver), join(d, 'driver'));
      }
      if (msi > 0) {
        mkdirSync(join(d, 'msi_irqs'));
        for (let i = 0; i < msi; i++) writeFileSync(join(d, 'msi_irqs', String(30 + i)), 'msi\n');
      }
    };
    dev('0000:00:01.0', 21, 'uio_pci_generic');
    dev('0000:00:02.0', 21, 'uio_pci_generic');
    dev('0000:00:03.0', 21, 'e1000e', 3);
    dev('0000:00:04.0', 22, 'virtio-pci');
    dev('0000:00:05.0', 21);
    assert.deepEqual(intxSharers(dir, '0000:00:01.0'), []);
    dev('0000:00:06.0', 21, 'virtio-pci');
    assert.deepEqual(intxSharers(dir, '0000:00:01.0'), [{ address: '0000:00:06.0', driver: 'virtio-pci', irq: 21 }]);
    assert.deepEqual(intxSharers(dir, '0000:00:04.0'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('identity RAM is the host\'s only for a carve of this machine\'s own map: a plan naming another host\'s map (examples/desktop.yaml) rehearses the layout in the monitor\'s memory, and says so', () => {
  const plan = loadPlan(join(REPO_ROOT, 'examples', 'desktop.yaml'));
  const inputs = resolvePlatformInputs(plan, join(REPO_ROOT, 'examples', 'desktop.yaml'));
  assert.equal(inputs.hostMap?.live, undefined, 'machine.hostMap is a file, not this machine');
  const rehearsed = composeMachine(plan, inputs);
  assert.equal(rehearsed.config.identityRam, undefined);
  assert.ok(rehearsed.summary.some((l) => /is not this machine's own map \(machine\.hostMap\): the guest's RAM is the monitor's own memory at the planned addresses/.test(l)), rehearsed.summary.join('\n'));
  // The same map read as this machine's own: the carve is real, and its ranges are the guest's identity RAM.
  const live = composeMachine(plan, { ...inputs, hostMap: { ...inputs.hostMap!, live: true } });
  assert.deepEqual(live.config.identityRam, live.identity!.guests[0]!.identity);
  assert.ok(!live.summary.some((l) => /is not this machine's own map/.test(l)));
});
