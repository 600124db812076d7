import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGrubImage, GRUB_BEGIN_MARK, GRUB_END_MARK } from '../../src/host/firmware/grub.js';
import { haveFirmware, readFirmware } from '../../src/host/firmware/locate.js';
import { ordinaryLayout } from '../../src/vmm/guest-memory.js';
import { startMachine } from '../../src/vmm/runner.js';
import { haveCommand } from '../helpers/require.js';
import { skipUnlessKvm } from './kvm-helpers.js';

/**
 * Firmware nobody here wrote, end to end: Debian's SeaBIOS finds fw_cfg (DMA), our E820 and
 * the linuxboot_dma option ROM, which loads a GRUB image built from Debian's grub-pc-bin;
 * GRUB lists the PCI bus and memory map on COM1. Takes tens of seconds under nested KVM.
 */
test('SeaBIOS boots GRUB through fw_cfg: 0x402 log and serial output', { timeout: 240_000 }, async (t) => {
  if (!skipUnlessKvm(t)) return;
  for (const fw of ['seabios', 'linuxbootDma', 'lnxboot'] as const) {
    if (!haveFirmware(fw)) {
      const line = `SKIPPED (firmware ${fw} not installed; run scripts/setup.sh): ${t.name}`;
      process.stdout.write(line + '\n');
      t.skip(line);
      return;
    }
  }
  if (!haveCommand('grub-mkimage')) {
    const line = `SKIPPED (no grub-mkimage; install Debian package grub-common): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return;
  }
  const grub = buildGrubImage();
  let serial = '';
  let debug = '';
  const machine = startMachine(
    {
      ram: ordinaryLayout(128n << 20n),
      firmware: { name: 'bios-256k.bin', image: readFirmware('seabios').bytes },
      linuxBoot: { name: 'grub.img', kernel: grub, cmdline: '', optionRom: readFirmware('linuxbootDma').bytes },
    },
    {
      onSerial: (b) => {
        serial += Buffer.from(b).toString('latin1');
      },
      onDebug: (b) => {
        debug += Buffer.from(b).toString('latin1');
      },
      timeoutMs: 200_000,
    },
  );
  const result = await machine.done;
  // Without ACPI tables GRUB's halt falls back to SeaBIOS's APM, which halts with interrupts off.
  assert.deepEqual(result.reason, { kind: 'halt' }, `serial:\n${serial}\n\ndebug:\n${debug}`);
  // SeaBIOS's own account (its log on port 0x402).
  for (const line of [
    'Running on QEMU (i440fx)',
    'Found QEMU fw_cfg',
    'QEMU fw_cfg DMA interface supported',
    'qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]',
    'Searching bootorder for: /rom@genroms/linuxboot_dma.bin',
    'Booting from ROM...',
  ]) {
    assert.ok(debug.includes(line), `SeaBIOS log lacks "${line}":\n${debug}`);
  }
  assert.match(debug, /Running option rom at c[0-9a-f]00:0003/);
  assert.doesNotMatch(debug, /WARNING|timeout|Unable to|panic/i);
  // GRUB's account on COM1.
  const body = serial.slice(serial.indexOf(GRUB_BEGIN_MARK), serial.indexOf(GRUB_END_MARK)).replace(/\r/g, '');
  assert.match(body, /^00:00\.0 8086:1237 \[0600\] Host Bridge$/m);
  assert.match(body, /^00:01\.0 8086:7000 \[0601\] ISA Bridge$/m);
  assert.match(body, /^base_addr = 0x100000, length = 0x7f00000, available RAM$/m);
  assert.equal(result.report.deviceFaults.length, 0);
});
