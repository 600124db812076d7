import type { AccessSize } from '../hw/io.js';
import { EINTR } from '../native/sys.js';
import { hex } from '../util/format.js';
import { EXIT, IOCTL, IO_DIRECTION_OUT, MP_STATE_HALTED, RUN } from './kvm/abi.js';
import type { Vcpu } from './kvm/vcpu.js';
import type { MmioBus, PortBus } from './io-bus.js';

/** Why the vCPU loop ended. */
export type StopReason =
  | { readonly kind: 'poweroff'; readonly source: string }
  | { readonly kind: 'reset'; readonly source: string }
  | { readonly kind: 'debug-exit'; readonly code: number }
  /** The guest halted with interrupts disabled: nothing can ever wake it (GRUB's and SeaBIOS's last resort). */
  | { readonly kind: 'halt' }
  | { readonly kind: 'stopped'; readonly why: string }
  | { readonly kind: 'triple-fault' }
  | { readonly kind: 'error'; readonly message: string };

/**
 * What devices use to end the run (power-off, reset) and what another thread uses to stop it.
 * Devices only record the request; the loop acts on it after the exit that made it.
 */
export class RunControl {
  pending: StopReason | undefined;
  exits = 0;
  vcpuNs = 0;
  /** Runs in the vCPU thread whenever another thread kicks it (stop or probe): pick up input. */
  onKick: () => void = () => {};

  request(reason: StopReason): void {
    this.pending ??= reason;
  }

  /**
   * Another thread sets `stopFlag[0]` (then kvm_run.immediate_exit, then signals this thread):
   * STOP_REQUESTED asks the loop to return; PROBE_REQUESTED asks it to check whether the guest
   * is halted for good and to go on otherwise.
   */
  /**
   * `stopFlag[1]` (when the array has it) mirrors the exit count, so the thread that probes for
   * a dead halt can skip probing a guest that is busy exiting.
   */
  constructor(readonly stopFlag: Int32Array = new Int32Array(new SharedArrayBuffer(8))) {}
}

export const STOP_REQUESTED = 1;
/** Index in the shared control array where the vCPU thread publishes its exit count. */
export const EXIT_COUNT = 1;
export const PROBE_REQUESTED = 2;
const RFLAGS_IF = 1n << 9n;

/** After a kick: stop, report a dead halt, or clear the kick and carry on (undefined). */
function onKick(vcpu: Vcpu, control: RunControl): StopReason | undefined {
  const stopFlag = control.stopFlag;
  control.onKick();
  if (Atomics.load(stopFlag, 0) === STOP_REQUESTED) return { kind: 'stopped', why: 'stop requested' };
  if (Atomics.compareExchange(stopFlag, 0, PROBE_REQUESTED, 0) === PROBE_REQUESTED) {
    vcpu.runView.setUint8(RUN.immediateExit, 0);
    if (vcpu.getMpState() === MP_STATE_HALTED && (vcpu.getRegisters().rflags & RFLAGS_IF) === 0n) return { kind: 'halt' };
    return undefined;
  }
  vcpu.runView.setUint8(RUN.immediateExit, 0);
  return undefined;
}

const SIZES: readonly (AccessSize | 0)[] = [0, 1, 2, 0, 4];

/**
 * Runs the vCPU until a device or another thread asks it to stop. Every exit is dispatched here,
 * in this thread, so a config-space round trip costs one KVM_RUN and no thread hop.
 */
export function runVcpu(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl): StopReason {
  const t0 = process.hrtime.bigint();
  try {
    return loop(vcpu, ports, mmio, control);
  } finally {
    control.vcpuNs += Number(process.hrtime.bigint() - t0);
  }
}

function loop(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl): StopReason {
  const sys = vcpu.vm.sys;
  const fd = vcpu.fd;
  const run = vcpu.runView;
  const stopFlag = control.stopFlag;
  const publish = stopFlag.length > EXIT_COUNT;
  for (;;) {
    const r = sys.ioctlRaw(fd, IOCTL.RUN);
    if (r < 0) {
      if (-r === EINTR) {
        const reason = onKick(vcpu, control);
        if (reason !== undefined) return reason;
        continue;
      }
      return { kind: 'error', message: `KVM_RUN failed: errno ${-r}` };
    }
    control.exits++;
    if (publish) stopFlag[EXIT_COUNT] = control.exits | 0;
    const reason = run.getUint32(RUN.exitReason, true);
    if (reason === EXIT.IO) {
      const size = SIZES[run.getUint8(RUN.ioSize)]!;
      const port = run.getUint16(RUN.ioPort, true);
      const count = run.getUint32(RUN.ioCount, true);
      // data_offset is a u64 but always within the run page: its low half is the whole value,
      // and reading it as a number spares a BigInt allocation per exit.
      let off = run.getUint32(RUN.ioDataOffset, true);
      if (size === 0) return { kind: 'error', message: `port I/O of size ${run.getUint8(RUN.ioSize)} at ${hex(port)}` };
      if (run.getUint8(RUN.ioDirection) === IO_DIRECTION_OUT) {
        for (let i = 0; i < count; i++, off += size) {
          const v = size === 1 ? run.getUint8(off) : size === 2 ? run.getUint16(off, true) : run.getUint32(off, true);
          ports.write(port, size, v);
        }
      } else {
        for (let i = 0; i < count; i++, off += size) {
          const v = ports.read(port, size);
          if (size === 1) run.setUint8(off, v);
          else if (size === 2) run.setUint16(off, v, true);
          else run.setUint32(off, v, true);
        }
      }
    } else if (reason === EXIT.MMIO) {
      mmioExit(run, mmio);
    } else if (reason === EXIT.SHUTDOWN) {
      return { kind: 'triple-fault' };
    } else if (reason === EXIT.SYSTEM_EVENT) {
      const type = run.getUint32(RUN.systemEventType, true);
      return type === 2 ? { kind: 'reset', source: 'KVM system event' } : { kind: 'poweroff', source: `KVM system event ${type}` };
    } else if (reason === EXIT.INTR) {
      const why = onKick(vcpu, control);
      if (why !== undefined) return why;
    } else {
      return { kind: 'error', message: describeExit(vcpu, reason) };
    }
    if (control.pending !== undefined) return control.pending;
  }
}

function mmioExit(run: DataView, mmio: MmioBus): void {
  const address = run.getUint32(RUN.mmioPhysAddr, true) + run.getUint32(RUN.mmioPhysAddr + 4, true) * 0x1_0000_0000;
  const len = run.getUint32(RUN.mmioLen, true);
  const write = run.getUint8(RUN.mmioIsWrite) !== 0;
  const data = RUN.mmioData;
  if (len === 1 || len === 2 || len === 4) {
    if (write) mmio.write(address, len, len === 1 ? run.getUint8(data) : len === 2 ? run.getUint16(data, true) : run.getUint32(data, true));
    else {
      const v = mmio.read(address, len);
      if (len === 1) run.setUint8(data, v);
      else if (len === 2) run.setUint16(data, v, true);
      else run.setUint32(data, v, true);
    }
    return;
  }
  // 8-byte accesses become two 4-byte ones, low half first; odd lengths become bytes.
  const step: AccessSize = len === 8 ? 4 : 1;
  for (let o = 0; o < Math.min(len, 8); o += step) {
    if (write) mmio.write(address + o, step, step === 4 ? run.getUint32(data + o, true) : run.getUint8(data + o));
    else {
      const v = mmio.read(address + o, step);
      if (step === 4) run.setUint32(data + o, v, true);
      else run.setUint8(data + o, v);
    }
  }
}

function describeExit(vcpu: Vcpu, reason: number): string {
  const run = vcpu.runView;
  let rip = '?';
  try {
    const regs = vcpu.getRegisters();
    const sregs = vcpu.getSpecialRegisters();
    rip = `${hex(sregs.cs.selector, 4)}:${hex(regs.rip)} (linear ${hex(sregs.cs.base + regs.rip)})`;
  } catch {
    // registers unavailable: report the exit alone
  }
  if (reason === EXIT.FAIL_ENTRY) return `VM entry failed (hardware reason ${hex(run.getBigUint64(RUN.failEntryReason, true))}) at ${rip}`;
  if (reason === EXIT.INTERNAL_ERROR) {
    const sub = run.getUint32(RUN.internalSuberror, true);
    const what = sub === 1 ? 'instruction emulation failed' : sub === 2 ? 'exception while delivering an event' : `suberror ${sub}`;
    return `KVM internal error: ${what} at ${rip}`;
  }
  return `unexpected exit reason ${reason} at ${rip}`;
}
