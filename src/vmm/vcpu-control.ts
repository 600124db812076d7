/**
 * The words the main thread and the vCPU threads share (one SharedArrayBuffer of int32s), and
 * the run control a vCPU loop keeps. Layout:
 *
 *   [STOP]     STOP_REQUESTED once the run must end (set by the main thread, or by the boot
 *              vCPU's thread when its loop ends, so the other vCPUs follow)
 *   [PENDING]  device exits the other vCPUs have handed to the boot vCPU's thread, not yet served
 *   then per vCPU (`cpuWord(cpu, field)`):
 *     KICK     PROBE_REQUESTED while the main thread asks this vCPU whether it is halted for good
 *     EXITS    its exit count (the main thread probes only a machine that made no exit lately)
 *     PROBE    its answer to the last probe: PROBE_NONE, PROBE_ALIVE or PROBE_DEAD
 *     REQUEST  REQUEST_IDLE, or REQUEST_PENDING while its device exit waits for the boot vCPU's
 *              thread, which owns every device model; REQUEST_DONE once served
 *
 * Every kick is: set the flag, then `kvm_run.immediate_exit` through the kicker's own mapping
 * of the vCPU's run page, then SIGUSR2 to its thread; the vCPU clears immediate_exit first and
 * reads the flags after, with a locked access between (see docs/vmm.md, "Several vCPUs").
 */
import type { CoalescedRing } from './coalesced.js';
import type { StopReason } from './vcpu-loop.js';

export const STOP = 0;
export const PENDING = 1;
const HEADER = 2;
const STRIDE = 4;
export const KICK = 0;
export const EXITS = 1;
export const PROBE = 2;
export const REQUEST = 3;

export const STOP_REQUESTED = 1;
export const PROBE_REQUESTED = 2;
export const PROBE_NONE = 0;
export const PROBE_ALIVE = 1;
export const PROBE_DEAD = 2;
export const REQUEST_IDLE = 0;
export const REQUEST_PENDING = 1;
export const REQUEST_DONE = 2;

/** Index of a vCPU's field in the shared words. */
export function cpuWord(cpu: number, field: number): number {
  return HEADER + cpu * STRIDE + field;
}

/** The shared words for a machine of `cpus` vCPUs. */
export function controlBuffer(cpus: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (HEADER + cpus * STRIDE));
}

/**
 * What devices use to end the run (power-off, reset) and what another thread uses to stop it.
 * Devices only record the request; the loop acts on it after the exit that made it.
 */
export class RunControl {
  pending: StopReason | undefined;
  /** Exits of the vCPU this thread runs. */
  exits = 0;
  vcpuNs = 0;
  /** Runs in the boot vCPU's thread whenever another thread kicks it (stop or probe): pick up input. */
  onKick: () => void = () => {};
  readonly cpus: number;
  /** The other vCPUs' kvm_run pages, by vCPU index (this thread serves their device exits). */
  runs: readonly DataView[] = [];
  /** Writes KVM queued instead of exiting (KVM_CAP_COALESCED_PIO), applied before every exit this thread serves. */
  coalesced: CoalescedRing | undefined;

  constructor(readonly words: Int32Array = new Int32Array(controlBuffer(1))) {
    this.cpus = (words.length - HEADER) / STRIDE;
    if (!Number.isInteger(this.cpus) || this.cpus < 1) throw new RangeError(`${words.length} control words fit no whole number of vCPUs`);
  }

  request(reason: StopReason): void {
    this.pending ??= reason;
  }
}
