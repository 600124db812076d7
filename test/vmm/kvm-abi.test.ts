import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as abi from '../../src/vmm/kvm/abi.js';
import { run } from '../helpers/run.js';
import { skipUnlessCommand } from '../helpers/require.js';

/**
 * The oracle is the installed <linux/kvm.h>: a C program prints every ioctl number, structure
 * size and field offset hvmpt hard-codes, and each must match.
 */
const CHECKS: ReadonlyArray<readonly [string, number]> = [
  ['KVM_GET_API_VERSION', abi.IOCTL.GET_API_VERSION],
  ['KVM_CREATE_VM', abi.IOCTL.CREATE_VM],
  ['KVM_CHECK_EXTENSION', abi.IOCTL.CHECK_EXTENSION],
  ['KVM_GET_VCPU_MMAP_SIZE', abi.IOCTL.GET_VCPU_MMAP_SIZE],
  ['KVM_GET_SUPPORTED_CPUID', abi.IOCTL.GET_SUPPORTED_CPUID],
  ['KVM_GET_MSR_INDEX_LIST', abi.IOCTL.GET_MSR_INDEX_LIST],
  ['KVM_CREATE_VCPU', abi.IOCTL.CREATE_VCPU],
  ['KVM_SET_USER_MEMORY_REGION', abi.IOCTL.SET_USER_MEMORY_REGION],
  ['KVM_SET_TSS_ADDR', abi.IOCTL.SET_TSS_ADDR],
  ['KVM_SET_IDENTITY_MAP_ADDR', abi.IOCTL.SET_IDENTITY_MAP_ADDR],
  ['KVM_CREATE_IRQCHIP', abi.IOCTL.CREATE_IRQCHIP],
  ['KVM_IRQ_LINE', abi.IOCTL.IRQ_LINE],
  ['KVM_SET_GSI_ROUTING', abi.IOCTL.SET_GSI_ROUTING],
  ['KVM_IRQFD', abi.IOCTL.IRQFD],
  ['KVM_CREATE_PIT2', abi.IOCTL.CREATE_PIT2],
  ['KVM_IOEVENTFD', abi.IOCTL.IOEVENTFD],
  ['KVM_SIGNAL_MSI', abi.IOCTL.SIGNAL_MSI],
  ['KVM_RUN', abi.IOCTL.RUN],
  ['KVM_GET_REGS', abi.IOCTL.GET_REGS],
  ['KVM_SET_REGS', abi.IOCTL.SET_REGS],
  ['KVM_GET_SREGS', abi.IOCTL.GET_SREGS],
  ['KVM_SET_SREGS', abi.IOCTL.SET_SREGS],
  ['KVM_GET_MSRS', abi.IOCTL.GET_MSRS],
  ['KVM_SET_MSRS', abi.IOCTL.SET_MSRS],
  ['KVM_SET_CPUID2', abi.IOCTL.SET_CPUID2],
  ['sizeof(struct kvm_run)', abi.SIZE.run],
  ['sizeof(struct kvm_regs)', abi.SIZE.regs],
  ['sizeof(struct kvm_sregs)', abi.SIZE.sregs],
  ['sizeof(struct kvm_segment)', abi.SIZE.segment],
  ['sizeof(struct kvm_dtable)', abi.SIZE.dtable],
  ['sizeof(struct kvm_userspace_memory_region)', abi.SIZE.userspaceMemoryRegion],
  ['sizeof(struct kvm_irq_level)', abi.SIZE.irqLevel],
  ['sizeof(struct kvm_irqfd)', abi.SIZE.irqfd],
  ['sizeof(struct kvm_ioeventfd)', abi.SIZE.ioeventfd],
  ['sizeof(struct kvm_irq_routing)', abi.SIZE.irqRoutingHeader],
  ['sizeof(struct kvm_irq_routing_entry)', abi.SIZE.irqRoutingEntry],
  ['sizeof(struct kvm_cpuid2)', abi.SIZE.cpuid2Header],
  ['sizeof(struct kvm_cpuid_entry2)', abi.SIZE.cpuidEntry2],
  ['sizeof(struct kvm_msrs)', abi.SIZE.msrsHeader],
  ['sizeof(struct kvm_msr_entry)', abi.SIZE.msrEntry],
  ['sizeof(struct kvm_pit_config)', abi.SIZE.pitConfig],
  ['sizeof(struct kvm_msi)', abi.SIZE.msi],
  ['offsetof(struct kvm_run, immediate_exit)', abi.RUN.immediateExit],
  ['offsetof(struct kvm_run, exit_reason)', abi.RUN.exitReason],
  ['offsetof(struct kvm_run, io.direction)', abi.RUN.ioDirection],
  ['offsetof(struct kvm_run, io.size)', abi.RUN.ioSize],
  ['offsetof(struct kvm_run, io.port)', abi.RUN.ioPort],
  ['offsetof(struct kvm_run, io.count)', abi.RUN.ioCount],
  ['offsetof(struct kvm_run, io.data_offset)', abi.RUN.ioDataOffset],
  ['offsetof(struct kvm_run, mmio.phys_addr)', abi.RUN.mmioPhysAddr],
  ['offsetof(struct kvm_run, mmio.data)', abi.RUN.mmioData],
  ['offsetof(struct kvm_run, mmio.len)', abi.RUN.mmioLen],
  ['offsetof(struct kvm_run, mmio.is_write)', abi.RUN.mmioIsWrite],
  ['offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason)', abi.RUN.failEntryReason],
  ['offsetof(struct kvm_run, internal.suberror)', abi.RUN.internalSuberror],
  ['offsetof(struct kvm_run, system_event.type)', abi.RUN.systemEventType],
  ['offsetof(struct kvm_regs, rip)', abi.REGS.rip],
  ['offsetof(struct kvm_regs, rflags)', abi.REGS.rflags],
  ['offsetof(struct kvm_regs, rsp)', abi.REGS.rsp],
  ...(['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt', 'gdt', 'idt', 'cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as const).map(
    (f) => [`offsetof(struct kvm_sregs, ${f})`, abi.SREGS[f]] as const,
  ),
  ['offsetof(struct kvm_sregs, apic_base)', abi.SREGS.apicBase],
  ['offsetof(struct kvm_sregs, interrupt_bitmap)', abi.SREGS.interruptBitmap],
  ...(['base', 'limit', 'selector', 'type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const).map(
    (f) => [`offsetof(struct kvm_segment, ${f})`, abi.SEGMENT[f]] as const,
  ),
  ['offsetof(struct kvm_userspace_memory_region, flags)', abi.MEMORY_REGION.flags],
  ['offsetof(struct kvm_userspace_memory_region, guest_phys_addr)', abi.MEMORY_REGION.guestPhysAddr],
  ['offsetof(struct kvm_userspace_memory_region, memory_size)', abi.MEMORY_REGION.memorySize],
  ['offsetof(struct kvm_userspace_memory_region, userspace_addr)', abi.MEMORY_REGION.userspaceAddr],
  ['offsetof(struct kvm_irqfd, gsi)', abi.IRQFD.gsi],
  ['offsetof(struct kvm_irqfd, flags)', abi.IRQFD.flags],
  ['offsetof(struct kvm_irqfd, resamplefd)', abi.IRQFD.resamplefd],
  ['offsetof(struct kvm_ioeventfd, datamatch)', abi.IOEVENTFD.datamatch],
  ['offsetof(struct kvm_ioeventfd, addr)', abi.IOEVENTFD.addr],
  ['offsetof(struct kvm_ioeventfd, len)', abi.IOEVENTFD.len],
  ['offsetof(struct kvm_ioeventfd, fd)', abi.IOEVENTFD.fd],
  ['offsetof(struct kvm_ioeventfd, flags)', abi.IOEVENTFD.flags],
  ['offsetof(struct kvm_irq_routing_entry, type)', abi.IRQ_ROUTING_ENTRY.type],
  ['offsetof(struct kvm_irq_routing_entry, flags)', abi.IRQ_ROUTING_ENTRY.flags],
  ['offsetof(struct kvm_irq_routing_entry, u)', abi.IRQ_ROUTING_ENTRY.u],
  ['offsetof(struct kvm_irq_routing_entry, u.msi.data)', abi.IRQ_ROUTING_ENTRY.u + abi.MSI.data],
  ['offsetof(struct kvm_irq_routing_entry, u.irqchip.pin)', abi.IRQ_ROUTING_ENTRY.u + 4],
  ['offsetof(struct kvm_cpuid_entry2, eax)', abi.CPUID_ENTRY2.eax],
  ['offsetof(struct kvm_cpuid_entry2, edx)', abi.CPUID_ENTRY2.edx],
  ['offsetof(struct kvm_msr_entry, data)', abi.MSR_ENTRY.data],
  ['KVM_EXIT_IO', abi.EXIT.IO],
  ['KVM_EXIT_MMIO', abi.EXIT.MMIO],
  ['KVM_EXIT_SHUTDOWN', abi.EXIT.SHUTDOWN],
  ['KVM_EXIT_FAIL_ENTRY', abi.EXIT.FAIL_ENTRY],
  ['KVM_EXIT_INTERNAL_ERROR', abi.EXIT.INTERNAL_ERROR],
  ['KVM_EXIT_SYSTEM_EVENT', abi.EXIT.SYSTEM_EVENT],
  ['KVM_EXIT_INTR', abi.EXIT.INTR],
  ['KVM_MEM_READONLY', abi.MEM_READONLY],
  ['KVM_IRQFD_FLAG_RESAMPLE', abi.IRQFD_FLAG_RESAMPLE],
  ['KVM_IOEVENTFD_FLAG_PIO', abi.IOEVENTFD_FLAG_PIO],
  ['KVM_IOEVENTFD_FLAG_DATAMATCH', abi.IOEVENTFD_FLAG_DATAMATCH],
  ['KVM_IRQ_ROUTING_MSI', abi.IRQ_ROUTING_MSI],
  ['KVM_IRQ_ROUTING_IRQCHIP', abi.IRQ_ROUTING_IRQCHIP],
  ['KVM_CAP_IRQFD_RESAMPLE', abi.CAP.IRQFD_RESAMPLE],
  ['KVM_CAP_READONLY_MEM', abi.CAP.READONLY_MEM],
  ['KVM_CAP_IMMEDIATE_EXIT', abi.CAP.IMMEDIATE_EXIT],
];

test('KVM ABI numbers and layouts match the installed linux/kvm.h', (t) => {
  if (!skipUnlessCommand(t, 'cc', 'gcc')) return;
  if (!existsSync('/usr/include/linux/kvm.h')) {
    const why = `SKIPPED (no /usr/include/linux/kvm.h; install Debian package linux-libc-dev): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-abi-'));
  try {
    const src = [
      '#include <linux/kvm.h>',
      '#include <stddef.h>',
      '#include <stdio.h>',
      'int main(void) {',
      ...CHECKS.map(([expr]) => `  printf("%lu\\n", (unsigned long)(${expr}));`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'abi.c'), src);
    const cc = run('cc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    const out = run(join(dir, 'abi'), []).stdout.trim().split('\n').map(Number);
    const mismatches = CHECKS.map(([expr, ours], i) => ({ expr, ours, header: out[i] })).filter((c) => c.ours !== c.header);
    assert.deepEqual(mismatches, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
