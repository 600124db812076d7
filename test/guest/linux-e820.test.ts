/**
 * Linux as the oracle for hvmpt's memory maps. Two boots of Debian's kernel under QEMU (TCG):
 *  A. through GRUB, with the host carve parameter exactly as hvmpt prints it for a grub.cfg:
 *     GRUB must hand the kernel `memmap=SIZE$START`, the kernel's "user-defined physical RAM
 *     map" must equal hvmpt's host-after map, and /proc/iomem must show the range reserved.
 *  B. directly, with `memmap=exactmap` plus hvmpt's guest map: the kernel's user-defined map
 *     must equal the plan line for line. The same boot checks the harness's other features
 *     (an early cpio with an ACPI table for the initrd table upgrade, modules with dependencies).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeE820, type E820Entry, type E820Map } from '../../src/hw/mem/e820.js';
import { formatLinux } from '../../src/hw/mem/e820-format.js';
import { parseE820Text, selectMap } from '../../src/hw/mem/e820-parse.js';
import { planIdentity, type IdentityRequest } from '../../src/hw/mem/identity.js';
import { exactmapParams } from '../../src/hw/mem/kernel-params.js';
import { MiB } from '../../src/hw/mem/range.js';
import { bootGuest, buildInitrd, ensureDebianKernel } from '../../src/host/guest/index.js';
import { skipUnlessCommand } from '../helpers/require.js';

/**
 * QEMU's firmware map for `-machine pc -m 512M` (SeaBIOS). The plan is made from this before
 * booting; boot A reads the real one from /sys/firmware/memmap and checks it is the same, so a
 * QEMU that changes its map fails here with a clear message rather than testing the wrong thing.
 */
const QEMU_PC_512M: E820Map = normalizeE820([
  { start: 0n, end: 0x9fc00n, type: 'usable' },
  { start: 0x9fc00n, end: 0xa0000n, type: 'reserved' },
  { start: 0xf0000n, end: 0x100000n, type: 'reserved' },
  { start: 0x100000n, end: 0x1ffe0000n, type: 'usable' },
  { start: 0x1ffe0000n, end: 0x20000000n, type: 'reserved' },
  { start: 0xfffc0000n, end: 0x100000000n, type: 'reserved' },
  { start: 0xfd00000000n, end: 0x10000000000n, type: 'reserved' },
]).map;

function kernelMap(dmesg: string, label: string): string[] {
  return dmesg
    .split('\n')
    .map((l) => l.match(new RegExp(`${label}: \\[mem .*$`))?.[0])
    .filter((l): l is string => l !== undefined);
}

const hexAddr = (v: bigint): string => v.toString(16).padStart(8, '0');

test('A: the host carve, passed through GRUB as hvmpt prints it, is reserved by Linux exactly as planned', async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessCommand(t, 'grub-mkrescue', 'grub-common, grub-pc-bin and xorriso')) return;
  const request: IdentityRequest = { size: 64n * MiB, above: 128n * MiB, hostKeep: 128n * MiB };
  const plan = planIdentity(QEMU_PC_512M, request);
  assert.deepEqual(plan.kernelParamsGrub, ['memmap=64M\\$128M']);
  const kernel = ensureDebianKernel((m) => process.stderr.write(`guest: ${m}\n`));
  const initrd = buildInitrd({
    script: ['section cmdline cat /proc/cmdline', 'section memmap grep . /sys/firmware/memmap/*/*', 'section iomem cat /proc/iomem', 'section dmesg dmesg'].join('\n'),
  });
  const run = await bootGuest({ kernel: kernel.vmlinuz, initrd, via: 'grub', append: plan.kernelParamsGrub });
  assert.equal(run.rc, 0);
  // GRUB turned `\$` back into `$`.
  assert.match(run.section('cmdline'), / memmap=64M\$128M$/m);
  // The firmware map the plan assumed is the one the guest had.
  const firmware = normalizeE820(selectMap(parseE820Text(run.section('memmap'), 'guest /sys/firmware/memmap'), 'memmap').entries).map;
  assert.deepEqual(firmware, QEMU_PC_512M, 'QEMU\'s firmware map changed: update QEMU_PC_512M');
  // Linux's own map after our parameter is hvmpt's host-after map (1:1 is reserved to Linux).
  assert.deepEqual(kernelMap(run.section('dmesg'), 'user'), formatLinux(plan.hostAfter, 'user').trimEnd().split('\n'));
  // And /proc/iomem holds the carved range, reserved, at the top level.
  const [region] = plan.guests[0]!.identity;
  assert.ok(region !== undefined);
  assert.match(run.section('iomem'), new RegExp(`^${hexAddr(region.start)}-${hexAddr(region.end - 1n)} : Reserved$`, 'm'));
  assert.doesNotMatch(run.section('iomem'), new RegExp(`^${hexAddr(region.start)}-[0-9a-f]+ : System RAM$`, 'm'));
});

/** A minimal ACPI SSDT (header only, valid checksum) for the initrd table upgrade. */
function emptySsdt(): Uint8Array {
  const t = new Uint8Array(36);
  const dv = new DataView(t.buffer);
  t.set(new TextEncoder().encode('SSDT'), 0);
  dv.setUint32(4, 36, true);
  t[8] = 2;
  t.set(new TextEncoder().encode('HVMPT '), 10);
  t.set(new TextEncoder().encode('E820TEST'), 16);
  dv.setUint32(24, 1, true);
  t.set(new TextEncoder().encode('HVMP'), 28);
  dv.setUint32(32, 1, true);
  t[9] = (256 - (t.reduce((s, b) => s + b, 0) % 256)) % 256;
  return t;
}

test('B: a guest booted with memmap=exactmap and hvmpt\'s guest map prints that map as its user-defined RAM map', async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  // The "host" is QEMU's map plus firmware ranges of the kinds real machines have, so every
  // E820 type the guest map mirrors goes through Linux's parser (QEMU has RAM beneath them).
  const extra: E820Entry[] = [
    { start: 0x1e000000n, end: 0x1e100000n, type: 'reserved' },
    { start: 0x1f000000n, end: 0x1f010000n, type: 'acpi' },
    { start: 0x1f010000n, end: 0x1f020000n, type: 'nvs' },
  ];
  const host = normalizeE820([...QEMU_PC_512M.entries, ...extra]).map;
  // The kernel runs at 16 MiB (nokaslr), inside the identity region; QEMU puts the initrd high,
  // outside it, where Linux must copy it from (it does).
  const plan = planIdentity(host, { size: 256n * MiB, above: 16n * MiB, hostKeep: 64n * MiB });
  const guest = plan.guests[0]!;
  assert.deepEqual(guest.identity, [{ start: 16n * MiB, end: 272n * MiB }]);
  const params = exactmapParams(guest.e820);
  assert.ok(params.some((p) => p.includes('%') && p.endsWith('+4')), 'the NVS range is in the parameters');
  const kernel = ensureDebianKernel((m) => process.stderr.write(`guest: ${m}\n`));
  const initrd = buildInitrd({
    kernel,
    modules: ['vfio_pci', '9p', '9pnet_virtio'],
    early: [{ path: 'kernel/firmware/acpi/ssdt-hvmpt.aml', data: emptySsdt() }],
    script: ['section dmesg dmesg', 'section iomem cat /proc/iomem', 'section modules sh -c "ls /sys/module | grep -E \'^(vfio_pci|9p|9pnet_virtio|vfio)$\'"'].join('\n'),
  });
  const run = await bootGuest({ kernel: kernel.vmlinuz, initrd, append: ['nokaslr', ...params] });
  assert.equal(run.rc, 0);
  const dmesg = run.section('dmesg');
  assert.deepEqual(kernelMap(dmesg, 'user'), formatLinux(guest.e820, 'user').trimEnd().split('\n'));
  // Linux's RAM is only the guest's: its identity region and low memory.
  const ram = run
    .section('iomem')
    .split('\n')
    .map((l) => /^([0-9a-f]+)-([0-9a-f]+) : System RAM$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) + 1n }));
  assert.ok(ram.length > 0);
  for (const r of ram) {
    assert.ok(
      [...guest.identity, ...guest.lowMemory].some((g) => g.start <= r.start && r.end <= g.end),
      `System RAM [${r.start.toString(16)}, ${r.end.toString(16)}) is outside the guest's RAM`,
    );
  }
  // The harness's other duties: the early cpio reached the ACPI table upgrade, modules loaded in order.
  assert.match(dmesg, /ACPI: Table Upgrade: install \[SSDT-HVMPT -E820TEST\]/);
  assert.doesNotMatch(run.output, /@@hvmpt-insmod-failed/);
  assert.deepEqual(run.section('modules').trim().split('\n').sort(), ['9p', '9pnet_virtio', 'vfio', 'vfio_pci']);
});
