import { Script } from 'node:vm';
import type { AccessSize } from '../hw/io.js';
import { activePlugin, clearActivePlugin } from '../plugin/watchdog.js';
import { EAGAIN, EINTR } from '../native/sys.js';
import { hex } from '../util/format.js';
import { EXIT, IOCTL, IO_DIRECTION_OUT, MP_STATE, RUN } from './kvm/abi.js';
import { cpuWord, EXITS, KICK, PENDING, PROBE, PROBE_ALIVE, PROBE_NONE, PROBE_REQUESTED, REQUEST, REQUEST_DONE, REQUEST_PENDING, STOP, STOP_REQUESTED, type RunControl } from './vcpu-control.js';
import type { Registers, SpecialRegisters, Vcpu } from './kvm/vcpu.js';
import { writeGuestBytes, type MmioBus, type PortBus } from './io-bus.js';

/** Why the vCPU loop ended. */
export type StopReason =
  | { readonly kind: 'poweroff'; readonly source: string }
  | { readonly kind: 'reset'; readonly source: string }
  | { readonly kind: 'debug-exit'; readonly code: number }
  /** The guest halted with interrupts disabled: nothing can ever wake it (GRUB's and SeaBIOS's last resort). */
  | { readonly kind: 'halt' }
  | { readonly kind: 'stopped'; readonly why: string }
  /** `state`: where the vCPU stood at the shutdown (vCPU, RIP, RSP, control registers, IDT), when KVM could say. */
  | { readonly kind: 'triple-fault'; readonly state?: string }
  | { readonly kind: 'error'; readonly message: string };

const RFLAGS_IF = 1n << 9n;
/** How long the boot vCPU waits for the other vCPUs' answers to a probe before calling the machine alive. */
const PROBE_WAIT_MS = 200;

/**
 * Halted for good: in HLT with interrupts off, or an application processor never started
 * (waiting for an INIT or SIPI that only a running vCPU could send).
 */
export function deadHalt(vcpu: Vcpu): boolean {
  const mp = vcpu.getMpState();
  if (mp === MP_STATE.UNINITIALIZED || mp === MP_STATE.INIT_RECEIVED) return true;
  return mp === MP_STATE.HALTED && (vcpu.getRegisters().rflags & RFLAGS_IF) === 0n;
}

/** After a kick of the boot vCPU: stop, report a dead halt, or carry on (undefined). */
function onKick(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl): StopReason | undefined {
  // immediate_exit is cleared before the flags are read, so a kick that lands after this
  // point leaves it set and the next KVM_RUN returns at once. The flag is read with a locked
  // operation, which x86 does not move ahead of the plain store before it.
  vcpu.runView.setUint8(RUN.immediateExit, 0);
  vcpu.takeKick();
  const words = control.words;
  if (Atomics.or(words, STOP, 0) === STOP_REQUESTED) return { kind: 'stopped', why: 'stop requested' };
  // A queued write with no exit after it (0xCF9's reset, then HLT) is applied here: the halt
  // probe kicks a machine that made no exit for a period.
  control.coalesced?.drain(ports, mmio);
  control.onKick();
  serveOtherVcpus(control, ports, mmio);
  if (control.pending !== undefined) return control.pending;
  if (Atomics.compareExchange(words, cpuWord(0, KICK), PROBE_REQUESTED, 0) === PROBE_REQUESTED) {
    if (deadHalt(vcpu) && othersDead(control, ports, mmio)) return { kind: 'halt' };
  }
  return undefined;
}

/**
 * The boot vCPU is halted for good; are the others? Each answers the main thread's probe from
 * its own thread (only the thread in KVM_RUN may read its state); their device exits are
 * served meanwhile, since a vCPU waiting on one cannot answer.
 */
function othersDead(control: RunControl, ports: PortBus, mmio: MmioBus): boolean {
  const words = control.words;
  const deadline = Date.now() + PROBE_WAIT_MS;
  for (;;) {
    serveOtherVcpus(control, ports, mmio);
    let answered = true;
    for (let cpu = 1; cpu < control.cpus; cpu++) {
      const a = Atomics.load(words, cpuWord(cpu, PROBE));
      if (a === PROBE_ALIVE) return false;
      if (a === PROBE_NONE) answered = false;
    }
    if (answered) return true;
    if (Date.now() > deadline) return false;
    Atomics.wait(words, PENDING, 0, 5);
  }
}

/**
 * Serves the device exits other vCPUs handed over (each waits in its own thread, its exit data
 * in its kvm_run page, which this thread maps too). The read of PENDING is a locked one: it
 * orders the boot vCPU's clearing of immediate_exit before it (see onKick).
 */
export function serveOtherVcpus(control: RunControl, ports: PortBus, mmio: MmioBus): void {
  const words = control.words;
  if (Atomics.or(words, PENDING, 0) === 0) return;
  for (let cpu = 1; cpu < control.cpus; cpu++) {
    const at = cpuWord(cpu, REQUEST);
    if (Atomics.load(words, at) !== REQUEST_PENDING) continue;
    const run = control.runs[cpu]!;
    const reason = run.getUint32(RUN.exitReason, true);
    control.coalesced?.drain(ports, mmio);
    if (reason === EXIT.IO) ioExit(run, ports);
    else if (reason === EXIT.MMIO) mmioExit(run, mmio);
    Atomics.sub(words, PENDING, 1);
    Atomics.store(words, at, REQUEST_DONE);
    Atomics.notify(words, at);
  }
}

const SIZES: readonly (AccessSize | 0)[] = [0, 1, 2, 0, 4];

/**
 * Runs the boot vCPU until a device or another thread asks it to stop. Every exit is
 * dispatched here, in this thread, so a config-space round trip costs one KVM_RUN and no
 * thread hop; the other vCPUs' device exits are served here too, between this vCPU's own.
 * When it ends, the other vCPUs are told to stop.
 */
export function runVcpu(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl, watchdog?: Watchdog): StopReason {
  const t0 = process.hrtime.bigint();
  try {
    if (watchdog === undefined) return loop(vcpu, ports, mmio, control, Infinity)!;
    return watched(vcpu, ports, mmio, control, watchdog);
  } finally {
    control.vcpuNs += Number(process.hrtime.bigint() - t0);
    Atomics.store(control.words, STOP, STOP_REQUESTED);
  }
}

/** Plug-in code may hang: the loop then runs in slices a watchdog can interrupt. */
export interface Watchdog {
  /** How long plug-in code may run at once, ms. */
  readonly ms: number;
  /** The watchdog stopped plug-in code of `device`: fail it. */
  readonly hung: (device: string, ms: number) => void;
}

/** How long one watched slice of the loop runs before it returns to have its clock reset. */
const SLICE_MS = 200;
/**
 * Written to kvm_run's exit_reason once an exit is served. KVM writes the field on every
 * return from KVM_RUN, so after an interruption an IO or MMIO reason there is an exit that was
 * not served (or not to the end), whatever line the interruption hit.
 */
const EXIT_SERVED = 0xffff_ffff;

/**
 * The loop in slices, each run through node's vm with a timeout: the only way to interrupt
 * JavaScript stuck in a loop without killing its thread. A slice returns after SLICE_MS (at
 * the next exit; a halted guest is kicked by the halt probe), so only code that runs past the
 * watchdog's limit in one call is interrupted. Whose code it was is known (runPlugin); that
 * device is failed, and the exit it was handling (this vCPU's, or one another vCPU handed
 * over and still waits on) is dispatched again, now answered as a failed device answers
 * (reads all ones), so the guest's instruction completes.
 */
function watched(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl, watchdog: Watchdog): StopReason {
  const run = vcpu.runView;
  const g = globalThis as { __hvmptVcpuSlice?: () => StopReason | undefined };
  g.__hvmptVcpuSlice = () => loop(vcpu, ports, mmio, control, performance.now() + SLICE_MS);
  const script = new Script('globalThis.__hvmptVcpuSlice()', { filename: 'hvmpt-vcpu-slice' });
  for (;;) {
    let r: StopReason | undefined;
    try {
      r = script.runInThisContext({ timeout: watchdog.ms + SLICE_MS }) as StopReason | undefined;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err;
      const device = activePlugin();
      clearActivePlugin();
      if (device !== undefined) watchdog.hung(device, watchdog.ms);
      const reason = run.getUint32(RUN.exitReason, true);
      if (reason === EXIT.IO) ioExit(run, ports);
      else if (reason === EXIT.MMIO) mmioExit(run, mmio);
      run.setUint32(RUN.exitReason, EXIT_SERVED, true);
      serveOtherVcpus(control, ports, mmio);
      continue;
    }
    if (r !== undefined) return r;
  }
}

/** The loop; with a finite `sliceEnd` (performance.now() ms) it returns undefined at the first exit after it. */
function loop(vcpu: Vcpu, ports: PortBus, mmio: MmioBus, control: RunControl, sliceEnd: number): StopReason | undefined {
  const sys = vcpu.sys;
  const fd = vcpu.fd;
  const run = vcpu.runView;
  const words = control.words;
  const exitsAt = cpuWord(0, EXITS);
  for (;;) {
    const r = sys.ioctlRaw(fd, IOCTL.RUN);
    if (r < 0) {
      if (-r === EINTR || -r === EAGAIN) {
        const reason = onKick(vcpu, ports, mmio, control);
        if (reason !== undefined) return reason;
        continue;
      }
      return { kind: 'error', message: `KVM_RUN failed: errno ${-r}` };
    }
    words[exitsAt] = ++control.exits | 0;
    const reason = run.getUint32(RUN.exitReason, true);
    control.coalesced?.drain(ports, mmio);
    if (reason === EXIT.IO) {
      if (!ioExit(run, ports)) return { kind: 'error', message: `port I/O of size ${run.getUint8(RUN.ioSize)} at ${hex(run.getUint16(RUN.ioPort, true))}` };
      run.setUint32(RUN.exitReason, EXIT_SERVED, true);
    } else if (reason === EXIT.MMIO) {
      mmioExit(run, mmio);
      run.setUint32(RUN.exitReason, EXIT_SERVED, true);
    } else if (reason === EXIT.INTR) {
      const why = onKick(vcpu, ports, mmio, control);
      if (why !== undefined) return why;
    } else {
      return otherExit(vcpu, reason);
    }
    // A plain read: a vCPU that hands over an exit also kicks this one, so a stale zero here
    // costs nothing but a round through KVM_RUN.
    if (words[PENDING] !== 0) serveOtherVcpus(control, ports, mmio);
    if (control.pending !== undefined) return control.pending;
    if (sliceEnd !== Infinity && performance.now() > sliceEnd) return undefined;
  }
}

/** Exits that end a vCPU's run: shutdown (triple fault), a system event, or one the monitor cannot handle. */
export function otherExit(vcpu: Vcpu, reason: number): StopReason {
  const run = vcpu.runView;
  if (reason === EXIT.SHUTDOWN) {
    const state = cpuState(vcpu);
    return state === undefined ? { kind: 'triple-fault' } : { kind: 'triple-fault', state };
  }
  if (reason === EXIT.SYSTEM_EVENT) {
    const type = run.getUint32(RUN.systemEventType, true);
    return type === 2 ? { kind: 'reset', source: 'KVM system event' } : { kind: 'poweroff', source: `KVM system event ${type}` };
  }
  return { kind: 'error', message: describeExit(vcpu, reason) };
}

/** A port I/O exit (string I/O item by item); false for an access size KVM never gives. */
export function ioExit(run: DataView, ports: PortBus): boolean {
  const size = SIZES[run.getUint8(RUN.ioSize)];
  if (size === undefined || size === 0) return false;
  const port = run.getUint16(RUN.ioPort, true);
  const count = run.getUint32(RUN.ioCount, true);
  // data_offset is a u64 but always within the run page: its low half is the whole value,
  // and reading it as a number spares a BigInt allocation per exit.
  let off = run.getUint32(RUN.ioDataOffset, true);
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
  return true;
}

export function mmioExit(run: DataView, mmio: MmioBus): void {
  const address = run.getUint32(RUN.mmioPhysAddr, true) + run.getUint32(RUN.mmioPhysAddr + 4, true) * 0x1_0000_0000;
  const len = run.getUint32(RUN.mmioLen, true);
  const data = RUN.mmioData;
  if (run.getUint8(RUN.mmioIsWrite) !== 0) {
    writeGuestBytes(mmio, address, len, run, data);
    return;
  }
  if (len === 1 || len === 2 || len === 4) {
    const v = mmio.read(address, len);
    if (len === 1) run.setUint8(data, v);
    else if (len === 2) run.setUint16(data, v, true);
    else run.setUint32(data, v, true);
    return;
  }
  // 8-byte reads become two 4-byte ones, low half first; odd lengths become bytes (as writes do).
  const step: AccessSize = len === 8 ? 4 : 1;
  for (let o = 0; o < Math.min(len, 8); o += step) {
    const v = mmio.read(address + o, step);
    if (step === 4) run.setUint32(data + o, v, true);
    else run.setUint8(data + o, v);
  }
}

/**
 * What the registers say after an INIT: CS 0xf000, RIP 0xfff0, CR0 with ET (an INIT keeps the
 * CD and NW the guest had: SeaBIOS clears both, so CR0 reads 0x10 after it, 0x60000010 before),
 * paging and long mode off, the real-mode IDT.
 */
const INIT_STATE = { cs: 0xf000, rip: 0xfff0n, cr0: 0x10n, cr0Kept: 0x6000_0000n, idtLimit: 0xffff };

/** Registers an INIT left: where no guest can stand at a shutdown (real mode at the reset vector takes no triple fault). */
function initState(r: Registers, s: SpecialRegisters): boolean {
  return (
    s.cs.selector === INIT_STATE.cs &&
    r.rip === INIT_STATE.rip &&
    (s.cr0 & ~INIT_STATE.cr0Kept) === INIT_STATE.cr0 &&
    s.cr3 === 0n &&
    s.cr4 === 0n &&
    s.efer === 0n &&
    s.idt.base === 0n &&
    s.idt.limit === INIT_STATE.idtLimit
  );
}

/**
 * The registers that say where a guest died: the faulting RIP, its stack, CR2 (the last page
 * fault's address), CR3 and the IDT. A triple fault leaves no guest console line behind, so this
 * is the only trace of where it happened.
 */
export function cpuState(vcpu: Vcpu): string | undefined {
  try {
    const r = vcpu.getRegisters();
    const s = vcpu.getSpecialRegisters();
    // KVM on AMD re-initialises a vCPU at a shutdown intercept (the VMCB is undefined after one):
    // the registers then show the reset vector, not where the guest stood.
    if (initState(r, s)) {
      return `vCPU ${vcpu.id}: its registers are lost: this host's KVM re-initialised the vCPU at the shutdown (KVM on AMD SVM does)`;
    }
    return (
      `vCPU ${vcpu.id}: rip ${hex(s.cs.selector, 4)}:${hex(r.rip)} rsp ${hex(r.rsp)} rflags ${hex(r.rflags)} ` +
      `cr0 ${hex(s.cr0)} cr2 ${hex(s.cr2)} cr3 ${hex(s.cr3)} cr4 ${hex(s.cr4)} efer ${hex(s.efer)} idt ${hex(s.idt.base)}/${hex(s.idt.limit)}`
    );
  } catch {
    return undefined;
  }
}

export function describeExit(vcpu: Vcpu, reason: number): string {
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
