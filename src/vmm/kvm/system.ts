import { MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, type Sys } from '../../native/sys.js';
import { CAP, CPUID2, IOCTL, SIZE } from './abi.js';
import { KvmError } from './errors.js';
import { decodeCpuid, type CpuidEntry } from './cpuid.js';
import { Vm } from './vm.js';

const KVM_API_VERSION = 12;
const MAX_CPUID_ENTRIES = 256;

/** /dev/kvm: the system-level handle that creates VMs and answers capability questions. */
export class Kvm {
  readonly fd: number;
  readonly vcpuMmapSize: number;

  constructor(
    readonly sys: Sys,
    path = '/dev/kvm',
  ) {
    this.fd = sys.open(path, O_RDWR | O_CLOEXEC);
    const version = sys.ioctlValue(this.fd, IOCTL.GET_API_VERSION, 0);
    if (version !== KVM_API_VERSION) {
      sys.close(this.fd);
      throw new KvmError(`KVM API version ${version}, expected ${KVM_API_VERSION}`, { input: path });
    }
    this.vcpuMmapSize = sys.ioctlValue(this.fd, IOCTL.GET_VCPU_MMAP_SIZE, 0);
  }

  checkExtension(cap: number): number {
    return this.sys.ioctlValue(this.fd, IOCTL.CHECK_EXTENSION, cap);
  }

  /** Throws naming every capability in `caps` this KVM lacks. */
  requireExtensions(caps: Readonly<Record<string, number>>): void {
    const missing = Object.entries(caps)
      .filter(([, cap]) => this.checkExtension(cap) <= 0)
      .map(([name]) => name);
    if (missing.length > 0) throw new KvmError(`KVM lacks ${missing.join(', ')}`, { input: '/dev/kvm' });
  }

  supportedCpuid(): CpuidEntry[] {
    const buf = new Uint8Array(SIZE.cpuid2Header + MAX_CPUID_ENTRIES * SIZE.cpuidEntry2);
    const view = new DataView(buf.buffer);
    view.setUint32(CPUID2.nent, MAX_CPUID_ENTRIES, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.GET_SUPPORTED_CPUID, buf);
    return decodeCpuid(view);
  }

  createVm(): Vm {
    const fd = this.sys.ioctlValue(this.fd, IOCTL.CREATE_VM, 0);
    return new Vm(this, fd);
  }

  /** Maps a vCPU's kvm_run page (used by the vCPU itself and by whoever must stop it). */
  mapRun(vcpuFd: number): ReturnType<Sys['mmap']> {
    return this.sys.mmap(this.vcpuMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpuFd, 0);
  }

  close(): void {
    this.sys.close(this.fd);
  }
}

/** The capabilities the monitor cannot work without. */
export const REQUIRED_CAPS = {
  KVM_CAP_USER_MEMORY: CAP.USER_MEMORY,
  KVM_CAP_READONLY_MEM: CAP.READONLY_MEM,
  KVM_CAP_IRQ_ROUTING: CAP.IRQ_ROUTING,
  KVM_CAP_PIT2: CAP.PIT2,
  KVM_CAP_IOEVENTFD: CAP.IOEVENTFD,
  KVM_CAP_IRQFD_RESAMPLE: CAP.IRQFD_RESAMPLE,
  KVM_CAP_IMMEDIATE_EXIT: CAP.IMMEDIATE_EXIT,
} as const;
