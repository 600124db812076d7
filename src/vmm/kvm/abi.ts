/**
 * The KVM ABI from linux/kvm.h, as ioctl numbers built the way <asm-generic/ioctl.h> builds
 * them and structure layouts as named byte offsets. test/vmm/kvm-abi.test.ts compiles a C
 * program against the installed kvm.h and checks every number here against it.
 */

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const KVMIO = 0xae;

function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number): number => ioc(IOC_NONE, nr, 0);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, nr, size);
const ior = (nr: number, size: number): number => ioc(IOC_READ, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, nr, size);

/** sizeof of the structures the ioctls carry. */
export const SIZE = {
  run: 2352,
  regs: 144,
  sregs: 312,
  segment: 24,
  dtable: 16,
  userspaceMemoryRegion: 32,
  irqLevel: 8,
  irqfd: 32,
  ioeventfd: 64,
  irqRoutingHeader: 8,
  irqRoutingEntry: 48,
  cpuid2Header: 8,
  cpuidEntry2: 40,
  msrsHeader: 8,
  msrEntry: 16,
  pitConfig: 64,
  msi: 32,
  coalescedZone: 16,
  coalescedRingHeader: 8,
  coalescedEntry: 24,
} as const;

export const IOCTL = {
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, SIZE.cpuid2Header),
  GET_MSR_INDEX_LIST: iowr(0x02, 4),
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, SIZE.userspaceMemoryRegion),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, SIZE.irqLevel),
  SET_GSI_ROUTING: iow(0x6a, SIZE.irqRoutingHeader),
  IRQFD: iow(0x76, SIZE.irqfd),
  CREATE_PIT2: iow(0x77, SIZE.pitConfig),
  IOEVENTFD: iow(0x79, SIZE.ioeventfd),
  SIGNAL_MSI: iow(0xa5, SIZE.msi),
  REGISTER_COALESCED_MMIO: iow(0x67, SIZE.coalescedZone),
  RUN: io(0x80),
  GET_REGS: ior(0x81, SIZE.regs),
  SET_REGS: iow(0x82, SIZE.regs),
  GET_SREGS: ior(0x83, SIZE.sregs),
  SET_SREGS: iow(0x84, SIZE.sregs),
  GET_MSRS: iowr(0x88, SIZE.msrsHeader),
  SET_MSRS: iow(0x89, SIZE.msrsHeader),
  SET_CPUID2: iow(0x90, SIZE.cpuid2Header),
  GET_MP_STATE: ior(0x98, 4),
  /** struct kvm_signal_mask: a u32 length, then the set (flexible array, not counted). */
  SET_SIGNAL_MASK: iow(0x8b, 4),
} as const;

/** KVM_MP_STATE_*: what KVM_GET_MP_STATE says a vCPU is doing. */
export const MP_STATE = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;

export const CAP = {
  IRQCHIP: 0x00,
  USER_MEMORY: 0x03,
  NR_MEMSLOTS: 0x0a,
  IRQ_ROUTING: 0x19,
  PIT2: 0x21,
  IOEVENTFD: 0x24,
  SIGNAL_MSI: 0x4d,
  READONLY_MEM: 0x51,
  IRQFD_RESAMPLE: 0x52,
  MAX_VCPUS: 0x42,
  TSC_DEADLINE_TIMER: 0x48,
  IMMEDIATE_EXIT: 0x88,
  /** Answers the page offset of the coalesced ring in a vCPU's mmap (0: none). */
  COALESCED_MMIO: 0x0f,
  COALESCED_PIO: 0xa2,
} as const;

export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

/** struct kvm_run: the page KVM shares with the vCPU thread; exit data lives in its union at 32. */
export const RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  failEntryReason: 32,
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  systemEventType: 32,
} as const;

export const IO_DIRECTION_IN = 0;
export const IO_DIRECTION_OUT = 1;

/** struct kvm_regs: sixteen GPRs, then rip and rflags, each 8 bytes. */
export const REGS = {
  rax: 0,
  rbx: 8,
  rcx: 16,
  rdx: 24,
  rsi: 32,
  rdi: 40,
  rsp: 48,
  rbp: 56,
  rip: 128,
  rflags: 136,
} as const;

/** struct kvm_sregs. */
export const SREGS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
  interruptBitmap: 280,
} as const;

/** struct kvm_segment. */
export const SEGMENT = {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
} as const;

/** struct kvm_dtable: base (8), limit (2), padding. */
export const DTABLE = { base: 0, limit: 8 } as const;

export const MEMORY_REGION = { slot: 0, flags: 4, guestPhysAddr: 8, memorySize: 16, userspaceAddr: 24 } as const;
export const MEM_READONLY = 0x2;

export const IRQ_LEVEL = { irq: 0, level: 4 } as const;

export const IRQFD = { fd: 0, gsi: 4, flags: 8, resamplefd: 12 } as const;
export const IRQFD_FLAG_DEASSIGN = 0x1;
export const IRQFD_FLAG_RESAMPLE = 0x2;

export const IOEVENTFD = { datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 } as const;
export const IOEVENTFD_FLAG_DATAMATCH = 0x1;
export const IOEVENTFD_FLAG_PIO = 0x2;
export const IOEVENTFD_FLAG_DEASSIGN = 0x4;
/** struct kvm_coalesced_mmio_zone: a range whose writes KVM queues instead of exiting (`pio`: port space). */
export const COALESCED_ZONE = { addr: 0, size: 8, pio: 12 } as const;
/** struct kvm_coalesced_mmio_ring: `first` (the monitor's), `last` (KVM's), then the entries. */
export const COALESCED_RING = { first: 0, last: 4 } as const;
/** struct kvm_coalesced_mmio: one queued write. */
export const COALESCED_ENTRY = { physAddr: 0, len: 8, pio: 12, data: 16 } as const;

/** struct kvm_irq_routing { u32 nr; u32 flags; entries[] } and each kvm_irq_routing_entry. */
export const IRQ_ROUTING = { nr: 0, flags: 4 } as const;
export const IRQ_ROUTING_ENTRY = {
  gsi: 0,
  type: 4,
  flags: 8,
  /** union u: irqchip { irqchip u32, pin u32 } or msi { address_lo, address_hi, data, pad }. */
  u: 16,
} as const;
export const IRQ_ROUTING_IRQCHIP = 1;
export const IRQ_ROUTING_MSI = 2;
export const IRQCHIP_PIC_MASTER = 0;
export const IRQCHIP_PIC_SLAVE = 1;
export const IRQCHIP_IOAPIC = 2;

export const CPUID2 = { nent: 0 } as const;
export const CPUID_ENTRY2 = { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 } as const;

export const MSRS = { nmsrs: 0 } as const;
export const MSR_ENTRY = { index: 0, data: 8 } as const;

export const PIT_CONFIG = { flags: 0 } as const;
export const PIT_SPEAKER_DUMMY = 1;

export const MSI = { addressLo: 0, addressHi: 4, data: 8, flags: 12 } as const;
