/**
 * The loop of a vCPU other than the boot one (an application processor). It owns no device:
 * every port or MMIO exit is handed to the boot vCPU's thread, which holds the whole machine,
 * through the shared words (the exit's data stays in this vCPU's kvm_run page, which that
 * thread maps too) and a kick; this thread waits until it is served, then re-enters the guest.
 * Everything else — interrupts, IPIs, INIT/SIPI, the LAPIC timer — KVM's in-kernel irqchip
 * handles without an exit.
 */
import { EAGAIN, EINTR } from '../native/sys.js';
import { EXIT, IOCTL, RUN } from './kvm/abi.js';
import type { Vcpu } from './kvm/vcpu.js';
import { cpuWord, EXITS, KICK, PENDING, PROBE, PROBE_ALIVE, PROBE_DEAD, PROBE_REQUESTED, REQUEST, REQUEST_DONE, REQUEST_IDLE, REQUEST_PENDING, STOP, STOP_REQUESTED } from './vcpu-control.js';
import { deadHalt, otherExit, type StopReason } from './vcpu-loop.js';

/** How often a vCPU waiting for its device exit looks whether the machine stopped meanwhile. */
const SERVE_POLL_MS = 20;

export interface ApLoopResult {
  readonly reason: StopReason;
  readonly exits: number;
}

/**
 * Runs application processor `vcpu.id` until the machine stops. `kickBoot` interrupts the boot
 * vCPU (immediate_exit in its run page, then a signal to its thread).
 */
export function runAp(vcpu: Vcpu, words: Int32Array, kickBoot: () => void): ApLoopResult {
  const sys = vcpu.sys;
  const fd = vcpu.fd;
  const run = vcpu.runView;
  const cpu = vcpu.id;
  const request = cpuWord(cpu, REQUEST);
  const exitsAt = cpuWord(cpu, EXITS);
  let exits = 0;
  const end = (reason: StopReason): ApLoopResult => ({ reason, exits });
  for (;;) {
    if (Atomics.load(words, STOP) === STOP_REQUESTED) return end({ kind: 'stopped', why: 'stop requested' });
    const r = sys.ioctlRaw(fd, IOCTL.RUN);
    if (r < 0) {
      // EAGAIN: a vCPU not yet started woke for an INIT or SIPI; KVM has taken it, run again.
      if (-r === EINTR || -r === EAGAIN) {
        onKick(vcpu, words);
        continue;
      }
      return end({ kind: 'error', message: `vCPU ${cpu}: KVM_RUN failed: errno ${-r}` });
    }
    words[exitsAt] = ++exits | 0;
    const reason = run.getUint32(RUN.exitReason, true);
    if (reason === EXIT.IO || reason === EXIT.MMIO) {
      Atomics.store(words, request, REQUEST_PENDING);
      Atomics.add(words, PENDING, 1);
      // The boot vCPU may be waiting for probe answers rather than in KVM_RUN.
      Atomics.notify(words, PENDING);
      kickBoot();
      while (Atomics.load(words, request) === REQUEST_PENDING) {
        Atomics.wait(words, request, REQUEST_PENDING, SERVE_POLL_MS);
        if (Atomics.load(words, request) !== REQUEST_DONE && Atomics.load(words, STOP) === STOP_REQUESTED) {
          return end({ kind: 'stopped', why: 'stop requested' });
        }
      }
      Atomics.store(words, request, REQUEST_IDLE);
    } else if (reason === EXIT.INTR) {
      onKick(vcpu, words);
    } else {
      const why = otherExit(vcpu, reason);
      return end(why.kind === 'error' ? { kind: 'error', message: `vCPU ${cpu}: ${why.message}` } : why);
    }
  }
}

/** A kick: clear immediate_exit, then answer a probe if one is asked (the stop flag is read at the loop's top). */
function onKick(vcpu: Vcpu, words: Int32Array): void {
  vcpu.runView.setUint8(RUN.immediateExit, 0);
  vcpu.takeKick();
  if (Atomics.compareExchange(words, cpuWord(vcpu.id, KICK), PROBE_REQUESTED, 0) !== PROBE_REQUESTED) return;
  Atomics.store(words, cpuWord(vcpu.id, PROBE), deadHalt(vcpu) ? PROBE_DEAD : PROBE_ALIVE);
  Atomics.notify(words, PENDING);
}
