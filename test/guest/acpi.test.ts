/**
 * Linux as the oracle for hvmpt's generated tables: one boot of Debian's kernel under QEMU's pc
 * machine (i440FX + PIIX3, the chipset hvmpt's monitor emulates) with hvmpt's DSDT and an added
 * SSDT in the initrd's early cpio. Linux must upgrade its DSDT to ours and install our SSDT
 * with no ACPI error; the SSDT's device must appear under /sys/bus/acpi/devices; and a PCI
 * device driven by INTx (virtio-rng with MSI-X off) must get the IRQ our _PRT gives its slot
 * in APIC mode, and its interrupts must arrive (the rng answers). About 6-10 s.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateGuestTables } from '../../src/hw/acpi/generate/generate.js';
import { bootGuest, buildInitrd, ensureDebianKernel } from '../../src/host/guest/index.js';
import { skipUnlessCommand } from '../helpers/require.js';

/** The slot QEMU puts the test device in, and the pin virtio uses. */
const SLOT = 3;

test('Linux takes hvmpt\'s DSDT and SSDT: no ACPI errors, the SSDT\'s device exists, a PCI device gets its _PRT IRQ', async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const generated = generateGuestTables({
    cpus: 1,
    // Linux upgrades a table from the initrd only when signature, OEM ID and table ID match
    // the firmware's (QEMU's are BOCHS / BXPC) and the OEM revision is higher (QEMU's is 1).
    oem: { oemId: 'BOCHS', dsdtTableId: 'BXPC', oemRevision: 2 },
    hpet: { address: 0xfed0_0000n },
    pci: {
      devices: [
        { device: 0, fn: 0, kind: 'host-bridge' },
        { device: 1, fn: 0, kind: 'isa-bridge' },
        { device: SLOT, fn: 0, name: 'rng' },
      ],
      routes: [{ device: SLOT, pin: 1 }],
    },
    ssdts: [
      {
        kind: 'spec',
        oemTableId: 'HVMDEV',
        body: [{ scope: '\\_SB', body: [{ device: 'HVM0', hid: 'HVM0001', uid: 0, sta: 0x0f, crs: [{ io: { min: 0x510, length: 2 } }] }] }],
      },
    ],
  });
  const dsdt = generated.tables.find((x) => x.signature === 'DSDT')!;
  const ssdt = generated.tables.find((x) => x.signature === 'SSDT')!;
  const route = generated.routes.find((r) => r.device === SLOT && r.pin === 0)!;
  assert.equal(route.gsi, 11, 'slot 3 INTA is PIRQC, which SeaBIOS and our _PIC route to IRQ 11');

  const kernel = ensureDebianKernel((m) => process.stderr.write(`guest: ${m}\n`));
  const initrd = buildInitrd({
    kernel,
    modules: ['virtio_pci', 'virtio_rng'],
    early: [
      { path: 'kernel/firmware/acpi/dsdt.aml', data: dsdt.bytes },
      { path: 'kernel/firmware/acpi/ssdt-hvmpt.aml', data: ssdt.bytes },
    ],
    script: [
      'section dmesg dmesg',
      'section dsdt od -An -tx1 -v /sys/firmware/acpi/tables/DSDT',
      'section acpi ls -1 /sys/bus/acpi/devices',
      'section hid cat /sys/bus/acpi/devices/HVM0001:00/hid /sys/bus/acpi/devices/HVM0001:00/status',
      `section irq cat /sys/bus/pci/devices/0000:00:0${SLOT}.0/irq`,
      'section rng sh -c "timeout 20 dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1"',
      'section pirq od -An -tx1 -j96 -N4 /sys/bus/pci/devices/0000:00:01.0/config',
      'section interrupts cat /proc/interrupts',
    ].join('\n'),
  });
  const run = await bootGuest({
    kernel: kernel.vmlinuz,
    initrd,
    qemuArgs: ['-device', `virtio-rng-pci,addr=0${SLOT}.0,vectors=0`],
  });
  assert.equal(run.rc, 0, run.output.slice(-3000));
  const dmesg = run.section('dmesg');
  assert.match(dmesg, /ACPI: Table Upgrade: override \[DSDT-BOCHS -BXPC {4}\]/, dmesg);
  assert.match(dmesg, /ACPI: Table Upgrade: install \[SSDT-BOCHS -HVMDEV {2}\]/, dmesg);
  assert.doesNotMatch(dmesg, /ACPI Error|ACPI BIOS Error|AE_[A-Z_]+/, dmesg);
  // The DSDT the kernel runs is ours, byte for byte.
  const dsdtSeen = Uint8Array.from(run.section('dsdt').trim().split(/\s+/).map((h) => parseInt(h, 16)));
  assert.deepEqual(dsdtSeen, dsdt.bytes);
  // Linux found the upgraded DSDT's objects: our host bridge and devices, and the SSDT's.
  const acpi = run.section('acpi');
  for (const id of ['PNP0A08:00', 'PNP0C0F:00', 'PNP0C0F:03', 'PNP0501:00', 'PNP0B00:00', 'PNP0303:00', 'ACPI0007:00', 'PNP0103:00', 'HVM0001:00']) {
    assert.ok(acpi.split('\n').includes(id), `${id} in /sys/bus/acpi/devices:\n${acpi}`);
  }
  assert.deepEqual(run.section('hid').trim().split('\n'), ['HVM0001', '15']);
  // APIC mode: the device's IRQ is the GSI our _PRT gives its slot, and interrupts arrive there:
  // the PIIX3 routes PIRQ A-D as _PIC (1) wrote them, still enabled after Linux ran every
  // link's _DIS at scan time.
  assert.equal(run.section('irq').trim(), String(route.gsi));
  assert.deepEqual(run.section('pirq').trim().split(/\s+/), generated.facts.pirqIrqs.map((irq) => irq.toString(16).padStart(2, '0')));
  assert.match(run.section('rng'), /^\s*([0-9a-f]{2} ){15}[0-9a-f]{2}\s*$/, 'virtio-rng answered (its INTx was delivered)');
  assert.match(run.section('interrupts'), new RegExp(`^\\s*${route.gsi}:\\s+[1-9]\\d*\\s+IO-APIC\\s+${route.gsi}-fasteoi\\s+virtio`, 'm'), run.section('interrupts'));
});
