import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRUB_BEGIN_MARK, GRUB_END_MARK } from '../../src/host/firmware/grub.js';
import { loadAcpiSource } from '../../src/host/acpi/source.js';
import { haveFirmware } from '../../src/host/firmware/locate.js';
import type { SeenAcpi } from '../../src/vmm/acpi-readback.js';
import { fixture } from '../helpers/paths.js';
import { haveCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitMs, limitS } from '../helpers/limits.js';

/**
 * Firmware nobody here wrote, end to end: Debian's SeaBIOS finds fw_cfg (DMA), our E820 and
 * the linuxboot_dma option ROM, which loads a GRUB image built from Debian's grub-pc-bin;
 * GRUB lists the PCI bus and memory map on COM1. Takes tens of seconds under nested KVM.
 */
test('hvmpt run: SeaBIOS boots GRUB through fw_cfg with a host\'s ACPI tables as they are (acpi.tables: host); 0x402 log, lsacpi, exit 0 on ACPI power-off', { timeout: limitMs(240_000) }, async (t) => {
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
  // Through the CLI, as a user runs it: stdout is COM1, the firmware log goes to a file.
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-boot-'));
  const logFile = join(dir, 'seabios.log');
  const reportFile = join(dir, 'report.json');
  // Real ACPI tables nobody here wrote (a QEMU q35 dump) go to the guest as they are
  // (acpi.tables: host) through the table loader.
  const planFile = join(dir, 'plan.yaml');
  const dump = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');
  writeFileSync(planFile, `memory: { size: 256M }\nacpi: { tables: host }\nmachine:\n  cpus: 2\n  boot: { kind: grub-report }\n  acpiTables: ${dump}\n`);
  const r = hvmpt(['run', planFile, '--firmware-log', logFile, '--report', reportFile, '--timeout', String(limitS(200))]);
  const debug = readFileSync(logFile, 'latin1');
  const serial = r.stdout;
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { reason: { kind: string }; deviceFaults: unknown[]; acpi: SeenAcpi };
  rmSync(dir, { recursive: true, force: true });
  // GRUB's halt finds \\_S5 in the DSDT and writes SLP_EN to the FADT's PM1a_CNT: a clean power-off.
  assert.equal(r.status, 0, `stderr:\n${r.stderr}\nserial:\n${serial}\ndebug:\n${debug}`);
  assert.match(r.stderr, /guest powered off \(ACPI PM1a_CNT SLP_EN with SLP_TYP 0 \(S5\)\)/);
  assert.equal(report.reason.kind, 'poweroff');
  // SeaBIOS's own account (its log on port 0x402).
  for (const line of [
    'Running on QEMU (i440fx)',
    'Found QEMU fw_cfg',
    'QEMU fw_cfg DMA interface supported',
    'qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 [RAM]',
    'Searching bootorder for: /rom@genroms/linuxboot_dma.bin',
    'Booting from ROM...',
    'Moving pm_base to 0x600',
    'ACPI: parse DSDT at',
    // Two vCPUs: SeaBIOS woke the second with INIT/SIPI (KVM's in-kernel LAPIC) and it checked in.
    'Found 2 cpu(s) max supported 2 cpu(s)',
  ]) {
    assert.ok(debug.includes(line), `SeaBIOS log lacks "${line}":\n${debug}`);
  }
  assert.match(debug, /Running option rom at c[0-9a-f]00:0003/);
  assert.doesNotMatch(debug, /WARNING|timeout|Unable to|panic/i);
  // GRUB's account on COM1.
  const body = serial.slice(serial.indexOf(GRUB_BEGIN_MARK), serial.indexOf(GRUB_END_MARK)).replace(/\r/g, '');
  assert.match(body, /^00:00\.0 8086:1237 \[0600\] Host Bridge$/m);
  assert.match(body, /^00:01\.0 8086:7000 \[0601\] ISA Bridge$/m);
  assert.match(body, /^base_addr = 0x100000, length = 0x[0-9a-f]+, available RAM$/m);
  // lsacpi: the linked root tables and each table of the dump, every checksum valid.
  assert.match(body, /^RSDPv2 signature:RSD PTR  chksum:[0-9a-f]+ \(valid\)/m);
  const listed = [...body.matchAll(/^([A-Z]{4}) +\d+B rev=\d+ chksum=0x[0-9a-f]+ \((valid|invalid)\)/gm)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(listed, ['XSDT valid', 'FACP valid', 'MCFG valid', 'APIC valid', 'WAET valid']);
  assert.deepEqual(report.deviceFaults, []);
  // The guest's memory holds the dump's own tables, byte for byte (the FADT's pointers relocated).
  const seen = new Map(report.acpi.tables.map((x) => [x.signature, Buffer.from(x.bytes, 'base64')]));
  for (const t of loadAcpiSource(dump).tables) {
    if (t.signature === 'FACP') assert.equal(seen.get('FACP')?.length, t.data.length);
    else assert.ok(seen.get(t.signature)?.equals(Buffer.from(t.data)), `${t.signature} is the dump's`);
  }
});
