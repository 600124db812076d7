/**
 * The probe guest's report, read back by parseProbeReport, against what QEMU is known to
 * emulate: the probe initrd booted under QEMU (i440FX, two CPUs, QEMU's edu device) must report
 * QEMU's functions with their IDs and the edu's 1 MiB BAR, QEMU's ACPI tables with valid
 * checksums, both CPUs, an E820 hvmpt's own parser reads as 256 MiB of RAM, and the plan's
 * modules and script. The same report from hvmpt's monitor is checked in test/vmm/probe-boot.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeE820 } from '../../src/hw/mem/e820.js';
import { parseE820Text, selectMap } from '../../src/hw/mem/e820-parse.js';
import { bootGuest, buildProbeInitrd, ensureDebianKernel, parseProbeReport, PROBE_CMDLINE, PROBE_SECTIONS, readCpio } from '../../src/host/guest/index.js';
import { skipUnlessCommand } from '../helpers/require.js';

const MiB = 1n << 20n;

test('the probe guest reports what QEMU emulates, in sections parseProbeReport reads', async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const kernel = ensureDebianKernel((m) => process.stderr.write(`guest: ${m}\n`));
  const initrd = buildProbeInitrd({
    kernel,
    modules: ['uio_pci_generic'],
    script: 'section uio ls /sys/bus/pci/drivers/uio_pci_generic/module\nsection rc sh -c "exit 3"\nexit 5',
  });
  const run = await bootGuest({
    kernel: kernel.vmlinuz,
    initrd,
    append: PROBE_CMDLINE.split(' '),
    machine: 'pc',
    memory: '256M',
    cpus: 2,
    qemuArgs: ['-device', 'edu'],
    timeoutMs: 300_000,
  });
  const report = parseProbeReport(run.output);
  // What `hvmpt run` prints has carriage returns; the parser takes either.
  assert.deepEqual(parseProbeReport(run.output.replace(/\n/g, '\r\n')), report);

  assert.deepEqual([...report.sections.keys()], [...PROBE_SECTIONS, 'uio', 'rc']);
  assert.equal(report.rc, 5, 'the script\'s status');
  assert.equal(report.sections.get('rc')?.rc, 3);
  assert.match(report.sections.get('uio')!.output, /refcnt/, 'the module the plan named is loaded');
  assert.equal(report.cpusOnline, '0-1');

  const fn = (bdf: string) => report.pci.find((f) => f.bdf === bdf);
  assert.deepEqual([fn('0000:00:00.0')?.vendor, fn('0000:00:00.0')?.device, fn('0000:00:00.0')?.classCode], [0x8086, 0x1237, 0x060000]);
  assert.deepEqual([fn('0000:00:01.0')?.vendor, fn('0000:00:01.0')?.device, fn('0000:00:01.0')?.classCode], [0x8086, 0x7000, 0x060100]);
  assert.equal(fn('0000:00:01.3')?.device, 0x7113, 'PIIX4 ACPI');
  const edu = report.pci.find((f) => f.vendor === 0x1234 && f.device === 0x11e8);
  assert.ok(edu, 'the edu device');
  assert.equal(edu.classCode, 0x00ff00);
  assert.equal(edu.driver, undefined);
  assert.ok(edu.irq > 0, 'edu has INTx A and Linux routed it');
  const bar0 = edu.resources.find((r) => r.index === 0);
  assert.ok(bar0 !== undefined && bar0.end - bar0.start + 1n === MiB, 'edu BAR0 is 1 MiB');
  assert.ok((bar0.flags & 0x200n) !== 0n, 'a memory BAR (IORESOURCE_MEM)');
  assert.ok(report.pci.every((f) => f.subsystemVendor === 0x1af4 || f.vendor === 0x1234), 'QEMU\'s subsystem vendor on its own functions');

  assert.match(report.iomem ?? '', /System RAM/);
  assert.match(report.interrupts ?? '', /CPU0\s+CPU1/);
  const map = normalizeE820(selectMap(parseE820Text(report.e820.join('\n'), 'probe e820'), 'probe e820').entries).map;
  const usable = map.entries.filter((e) => e.type === 'usable').reduce((n, e) => n + (e.end - e.start), 0n);
  assert.ok(usable > 250n * MiB && usable <= 256n * MiB, `usable RAM ${usable}`);

  const sigs = report.acpi.map((a) => a.signature).sort();
  for (const sig of ['APIC', 'DSDT', 'FACP', 'FACS']) assert.ok(sigs.includes(sig), `${sig} in ${sigs.join(' ')}`);
  for (const a of report.acpi) {
    assert.equal(a.checksum, a.signature === 'FACS' ? 'none' : 'ok', a.file);
    if (a.signature !== 'FACS') assert.equal(a.oemId, 'BOCHS', a.file);
    assert.ok(a.length >= 36, a.file);
  }
  assert.ok(report.problems.every((p) => /^<[0-4]>\[/.test(p)), report.problems.join('\n'));
});

test('report: false leaves only the script in /init', () => {
  const kernel = ensureDebianKernel();
  const init = (report: boolean) => {
    const entry = readCpio(buildProbeInitrd({ kernel, report, script: 'section mine true' })).find((e) => e.path === 'init');
    assert.ok(entry?.kind === 'file');
    return new TextDecoder().decode(entry.data);
  };
  assert.match(init(true), /section pci probe_pci/);
  assert.doesNotMatch(init(false), /probe_pci/);
  assert.match(init(false), /section mine true/);
});
