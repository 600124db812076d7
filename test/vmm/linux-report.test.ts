import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseInputDevices, parseInterrupts, warningsOnlyIn } from '../helpers/linux-report.js';

/**
 * The comparison the Linux test makes, on lines Debian's kernel printed in the lab before the
 * fixes (hvmpt) and under QEMU-KVM: each defect found then is still reported, while the lab CPU
 * model's warning (printed under both, with other addresses and machine names), report context
 * and the lab's clock noise are not.
 */
const QEMU = [
  '<4>[    0.476000] ------------[ cut here ]------------',
  '<4>[    0.496000] XSAVE consistency problem: size 2696 != kernel_size 576',
  '<4>[    0.524000] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:606 fpu__init_system_xstate+0x85a/0xb19',
  '<4>[    0.552000] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014',
  '<4>[    0.580000] RSP: 0000:ffffffffa6c03e70 EFLAGS: 00010282',
  '<4>[   52.878823] acpi PNP0A03:00: fail to add MMCONFIG information, can\'t access extended PCI configuration space under this bridge.',
];
const HVMPT_BEFORE = [
  '<3>[    0.036000] ..MP-BIOS bug: 8254 timer not connected to IO-APIC',
  '<4>[    0.100000] tsc: Unable to calibrate against PIT',
  '<4>[    0.112000] tsc: HPET/PMTIMER calibration failed',
  '<4>[    0.476000] ------------[ cut here ]------------',
  '<4>[    0.496000] XSAVE consistency problem: size 2696 != kernel_size 576',
  '<4>[    0.524000] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:606 fpu__init_system_xstate+0x85a/0xb19',
  '<4>[    0.552000] Hardware name: hvmpt hvmpt guest, BIOS 1.16.2-debian-1.16.2-1 04/01/2014',
  '<4>[    0.580000] RSP: 0000:ffffffff9f603e70 EFLAGS: 00010282',
  '<4>[    3.788000] APIC calibration not consistent with PM-Timer: 97ms instead of 100ms',
  '<3>[    3.932000] Failed to access perfctr msr (MSR c0010007 is 0)',
  '<4>[   54.712216] i8042: PNP: PS/2 appears to have AUX port disabled, if this is incorrect please boot with i8042.nopnp',
  "<4>[   86.649016] clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable because the skew is too large:",
  "<4>[   86.685504] clocksource:                       'kvm-clock' wd_nsec: 496383020 wd_now: 27f91cbb0e wd_last: 27db8686e2 mask: ffffffffffffffff",
  '<4>[   86.762207] tsc: Marking TSC unstable due to clocksource watchdog',
  '<4>[   15.208930] hrtimer: interrupt took 16343418 ns',
  '<0>[  215.630045] watchdog: BUG: soft lockup - CPU#1 stuck for 40s! [swapper/1:0]',
];

test('warnings only hvmpt printed: the defects, not the shared warning, its context or the lab\'s clock noise', () => {
  assert.deepEqual(
    warningsOnlyIn(HVMPT_BEFORE, QEMU).map((l) => l.replace(/^<\d>\[\s*[\d.]+\] /, '')),
    [
      '..MP-BIOS bug: 8254 timer not connected to IO-APIC',
      'tsc: Unable to calibrate against PIT',
      'tsc: HPET/PMTIMER calibration failed',
      'APIC calibration not consistent with PM-Timer: 97ms instead of 100ms',
      'Failed to access perfctr msr (MSR c0010007 is 0)',
      'i8042: PNP: PS/2 appears to have AUX port disabled, if this is incorrect please boot with i8042.nopnp',
    ],
  );
  // Without QEMU's run to compare with, the shared warning is hvmpt's too.
  assert.ok(warningsOnlyIn(HVMPT_BEFORE, []).some((l) => /XSAVE consistency problem/.test(l)));
});

test('/proc/interrupts rows: counts per CPU column and the description', () => {
  const rows = parseInterrupts(['           CPU0       CPU1       ', '  4:          0         56   IO-APIC   4-edge      ttyS0', 'LOC:       3384       2987   Local timer interrupts', 'ERR:          0'].join('\n'));
  assert.deepEqual(rows.get('4'), { counts: [0, 56], what: 'IO-APIC 4-edge ttyS0' });
  assert.deepEqual(rows.get('LOC')?.counts, [3384, 2987]);
  assert.equal(rows.has('ERR'), false, 'a row without a count per CPU');
});

test('/proc/bus/input/devices: each device\'s name and physical path', () => {
  // As Linux 6.1 lists QEMU's PS/2 keyboard and mouse (abridged to the lines that matter here).
  const text = [
    'I: Bus=0011 Vendor=0001 Product=0001 Version=ab41',
    'N: Name="AT Translated Set 2 keyboard"',
    'P: Phys=isa0060/serio0/input0',
    'S: Sysfs=/devices/platform/i8042/serio0/input/input0',
    'H: Handlers=sysrq kbd event0 ',
    '',
    'I: Bus=0011 Vendor=0002 Product=0006 Version=0000',
    'N: Name="ImExPS/2 Generic Explorer Mouse"',
    'P: Phys=isa0060/serio1/input0',
    'H: Handlers=mouse0 event1 ',
    '',
    'I: Bus=0019 Vendor=0000 Product=0001 Version=0000',
    'N: Name="Power Button"',
    'S: Sysfs=/devices/LNXSYSTM:00/LNXPWRBN:00/input/input2',
    '',
  ].join('\n');
  assert.deepEqual(parseInputDevices(text), [
    { name: 'AT Translated Set 2 keyboard', phys: 'isa0060/serio0/input0' },
    { name: 'ImExPS/2 Generic Explorer Mouse', phys: 'isa0060/serio1/input0' },
  ]);
  assert.deepEqual(parseInputDevices(''), []);
});
