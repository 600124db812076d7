import { MAP_SHARED, PROT_READ, PROT_WRITE, signalBit, type Mapping, type Sys } from '../../native/sys.js';
import { DTABLE, IOCTL, MSR_ENTRY, MSRS, REGS, SEGMENT, SIZE, SREGS } from './abi.js';
import { encodeCpuid, type CpuidEntry } from './cpuid.js';

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: boolean;
  dpl: number;
  db: boolean;
  s: boolean;
  l: boolean;
  g: boolean;
  avl: boolean;
  unusable: boolean;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

export type RegisterName = keyof typeof REGS_ALL;

/** All of kvm_regs, in its order: 16 GPRs, rip, rflags. */
const REGS_ALL = {
  rax: 0, rbx: 8, rcx: 16, rdx: 24, rsi: 32, rdi: 40, rsp: 48, rbp: 56,
  r8: 64, r9: 72, r10: 80, r11: 88, r12: 96, r13: 104, r14: 112, r15: 120,
  rip: REGS.rip, rflags: REGS.rflags,
} as const;

export type Registers = Record<RegisterName, bigint>;

export interface SpecialRegisters {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
  gdt: DescriptorTable; idt: DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apicBase: bigint;
}

const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const CONTROL_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

/**
 * A virtual CPU: its registers and its shared kvm_run page. `run` is the monitor's hot path.
 * It needs only its fd (process-wide) and the run page's size, so the thread that runs it
 * need not be the one that created the VM.
 */
export class Vcpu {
  readonly run: Mapping;
  /** View of kvm_run: exit reason and exit data are read through RUN offsets. */
  readonly runView: DataView;
  readonly runBytes: Uint8Array;
  private kickSignal: number | undefined;

  constructor(
    readonly sys: Sys,
    readonly id: number,
    readonly fd: number,
    runSize: number,
  ) {
    this.run = sys.mmap(runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    this.runView = new DataView(this.run.buffer);
    this.runBytes = new Uint8Array(this.run.buffer);
  }

  getRegisters(): Registers {
    const buf = new Uint8Array(SIZE.regs);
    this.sys.ioctlBuffer(this.fd, IOCTL.GET_REGS, buf);
    const v = new DataView(buf.buffer);
    const out = {} as Registers;
    for (const [name, off] of Object.entries(REGS_ALL) as [RegisterName, number][]) out[name] = v.getBigUint64(off, true);
    return out;
  }

  setRegisters(regs: Registers): void {
    const buf = new Uint8Array(SIZE.regs);
    const v = new DataView(buf.buffer);
    for (const [name, off] of Object.entries(REGS_ALL) as [RegisterName, number][]) v.setBigUint64(off, regs[name], true);
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_REGS, buf);
  }

  getSpecialRegisters(): SpecialRegisters {
    const buf = new Uint8Array(SIZE.sregs);
    this.sys.ioctlBuffer(this.fd, IOCTL.GET_SREGS, buf);
    return decodeSregs(new DataView(buf.buffer));
  }

  setSpecialRegisters(sregs: SpecialRegisters): void {
    // GET first so the interrupt bitmap (pending external interrupts) round-trips untouched.
    const buf = new Uint8Array(SIZE.sregs);
    this.sys.ioctlBuffer(this.fd, IOCTL.GET_SREGS, buf);
    encodeSregs(new DataView(buf.buffer), sregs);
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_SREGS, buf);
  }

  /** KVM_GET_MP_STATE: 3 (HALTED) when the vCPU sits in HLT waiting for an interrupt. */
  getMpState(): number {
    const buf = new Uint8Array(4);
    this.sys.ioctlBuffer(this.fd, IOCTL.GET_MP_STATE, buf);
    return new DataView(buf.buffer).getUint32(0, true);
  }

  /**
   * KVM_SET_SIGNAL_MASK: the signals blocked while this vCPU is in KVM_RUN (signals 1-64, bit
   * n-1 for signal n; the kernel's sigset is 8 bytes). The thread's own mask applies outside.
   */
  setRunSignalMask(blocked: bigint): void {
    const buf = new Uint8Array(4 + 8);
    const v = new DataView(buf.buffer);
    v.setUint32(0, 8, true);
    v.setBigUint64(4, blocked, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_SIGNAL_MASK, buf);
  }

  /**
   * Makes `signal` interrupt this vCPU's KVM_RUN and nothing else: blocked in the calling
   * thread (the one that runs this vCPU), unblocked by KVM only inside KVM_RUN, which then
   * returns EINTR with the signal still pending; `takeKick` consumes it. No handler runs.
   */
  armKick(signal: number): void {
    this.kickSignal = signal;
    this.setRunSignalMask(this.sys.blockSignal(signal) & ~signalBit(signal));
  }

  /** After KVM_RUN returned EINTR: consumes the kick signal if one is pending. */
  takeKick(): void {
    if (this.kickSignal !== undefined) this.sys.takeSignal(this.kickSignal);
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_CPUID2, encodeCpuid(entries));
  }

  getMsrs(indices: readonly number[]): Map<number, bigint> {
    const buf = encodeMsrs(indices.map((index) => ({ index, value: 0n })));
    const n = this.sys.ioctlBuffer(this.fd, IOCTL.GET_MSRS, buf);
    const v = new DataView(buf.buffer);
    const out = new Map<number, bigint>();
    for (let i = 0; i < n; i++) {
      const o = SIZE.msrsHeader + i * SIZE.msrEntry;
      out.set(v.getUint32(o + MSR_ENTRY.index, true), v.getBigUint64(o + MSR_ENTRY.data, true));
    }
    return out;
  }

  /** Returns how many MSRs KVM accepted (it stops at the first it refuses). */
  setMsrs(entries: ReadonlyArray<{ readonly index: number; readonly value: bigint }>): number {
    return this.sys.ioctlBuffer(this.fd, IOCTL.SET_MSRS, encodeMsrs(entries));
  }

  close(): void {
    this.sys.munmap(this.run);
    this.sys.close(this.fd);
  }
}

function encodeMsrs(entries: ReadonlyArray<{ readonly index: number; readonly value: bigint }>): Uint8Array {
  const buf = new Uint8Array(SIZE.msrsHeader + entries.length * SIZE.msrEntry);
  const v = new DataView(buf.buffer);
  v.setUint32(MSRS.nmsrs, entries.length, true);
  entries.forEach((e, i) => {
    const o = SIZE.msrsHeader + i * SIZE.msrEntry;
    v.setUint32(o + MSR_ENTRY.index, e.index, true);
    v.setBigUint64(o + MSR_ENTRY.data, e.value, true);
  });
  return buf;
}

function decodeSegment(v: DataView, o: number): Segment {
  return {
    base: v.getBigUint64(o + SEGMENT.base, true),
    limit: v.getUint32(o + SEGMENT.limit, true),
    selector: v.getUint16(o + SEGMENT.selector, true),
    type: v.getUint8(o + SEGMENT.type),
    present: v.getUint8(o + SEGMENT.present) !== 0,
    dpl: v.getUint8(o + SEGMENT.dpl),
    db: v.getUint8(o + SEGMENT.db) !== 0,
    s: v.getUint8(o + SEGMENT.s) !== 0,
    l: v.getUint8(o + SEGMENT.l) !== 0,
    g: v.getUint8(o + SEGMENT.g) !== 0,
    avl: v.getUint8(o + SEGMENT.avl) !== 0,
    unusable: v.getUint8(o + SEGMENT.unusable) !== 0,
  };
}

function encodeSegment(v: DataView, o: number, s: Segment): void {
  v.setBigUint64(o + SEGMENT.base, s.base, true);
  v.setUint32(o + SEGMENT.limit, s.limit >>> 0, true);
  v.setUint16(o + SEGMENT.selector, s.selector, true);
  v.setUint8(o + SEGMENT.type, s.type);
  v.setUint8(o + SEGMENT.present, s.present ? 1 : 0);
  v.setUint8(o + SEGMENT.dpl, s.dpl);
  v.setUint8(o + SEGMENT.db, s.db ? 1 : 0);
  v.setUint8(o + SEGMENT.s, s.s ? 1 : 0);
  v.setUint8(o + SEGMENT.l, s.l ? 1 : 0);
  v.setUint8(o + SEGMENT.g, s.g ? 1 : 0);
  v.setUint8(o + SEGMENT.avl, s.avl ? 1 : 0);
  v.setUint8(o + SEGMENT.unusable, s.unusable ? 1 : 0);
}

export function decodeSregs(v: DataView): SpecialRegisters {
  const segs = Object.fromEntries(SEGMENT_NAMES.map((n) => [n, decodeSegment(v, SREGS[n])])) as Record<(typeof SEGMENT_NAMES)[number], Segment>;
  const ctl = Object.fromEntries(CONTROL_NAMES.map((n) => [n, v.getBigUint64(SREGS[n], true)])) as Record<(typeof CONTROL_NAMES)[number], bigint>;
  const dt = (o: number): DescriptorTable => ({ base: v.getBigUint64(o + DTABLE.base, true), limit: v.getUint16(o + DTABLE.limit, true) });
  return { ...segs, ...ctl, gdt: dt(SREGS.gdt), idt: dt(SREGS.idt) };
}

export function encodeSregs(v: DataView, s: SpecialRegisters): void {
  for (const n of SEGMENT_NAMES) encodeSegment(v, SREGS[n], s[n]);
  for (const n of CONTROL_NAMES) v.setBigUint64(SREGS[n], s[n], true);
  for (const [o, dt] of [[SREGS.gdt, s.gdt], [SREGS.idt, s.idt]] as const) {
    v.setBigUint64(o + DTABLE.base, dt.base, true);
    v.setUint16(o + DTABLE.limit, dt.limit, true);
  }
}
