import { Worker } from 'node:worker_threads';
import { HvmptError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, SIGUSR2, type Mapping } from '../native/sys.js';
import { ByteRing } from './byte-ring.js';
import type { DeviceFault } from './io-bus.js';
import { RUN } from './kvm/abi.js';
import type { RunReport } from './machine.js';
import type { MachineConfig } from './machine-config.js';
import { EXIT_COUNT, PROBE_REQUESTED, STOP_REQUESTED, type StopReason } from './vcpu-loop.js';
import type { StartMessage, WorkerInput, WorkerMessage } from './worker-protocol.js';

/** The machine could not be built or the vCPU thread died. */
export class MachineError extends HvmptError {}

export interface RunOptions {
  /** Guest serial output, delivered in chunks as it comes (drained every `pollMs`). */
  readonly onSerial?: (bytes: Uint8Array) => void;
  /** The firmware's 0x402 log. */
  readonly onDebug?: (bytes: Uint8Array) => void;
  readonly onFault?: (fault: DeviceFault) => void;
  /** Stop the guest after this long (the result says `stopped: timeout`). */
  readonly timeoutMs?: number;
  readonly pollMs?: number;
  /**
   * How often to check whether the guest halted with interrupts off (costs one exit each);
   * 0 turns the check off. Default 250 ms.
   */
  readonly haltProbeMs?: number;
}

export interface RunResult {
  readonly reason: StopReason;
  readonly report: RunReport;
  readonly wallMs: number;
}

export interface RunningMachine {
  /** Asks the vCPU to stop; resolves `done` with a `stopped` reason. Safe to call at any time. */
  stop(why: string): void;
  /** Bytes for the guest's COM1 receiver (what a user types at the console). */
  sendSerial(bytes: Uint8Array): void;
  readonly done: Promise<RunResult>;
}

const RING_BYTES = 1 << 20;
const WORKER_URL = new URL('./worker.js', import.meta.url);
/**
 * The vCPU thread allocates little per exit (its hot path reuses buffers), so a small young
 * generation costs it no time and saves resident memory (about 2 MiB here).
 */
const VCPU_THREAD_LIMITS = { maxYoungGenerationSizeMb: 2 } as const;
let signalListenerInstalled = false;
let prestarted: Worker | undefined;

/**
 * Starts the vCPU thread ahead of its machine, so that loading its modules (the device models,
 * the KVM layer, koffi) overlaps with the main thread's own start and the plan's composition;
 * the next `startMachine` hands it the machine. It holds no resources and does not keep the
 * process alive while it waits (a run that fails before starting just exits).
 */
export function prestartVcpuThread(): void {
  if (prestarted !== undefined) return;
  prestarted = new Worker(WORKER_URL, { resourceLimits: VCPU_THREAD_LIMITS });
  prestarted.unref();
  // An early failure (a module that does not load) surfaces again when the machine starts.
  prestarted.on('error', () => {});
}

/**
 * Starts a machine on its own vCPU thread. Guest output goes through shared rings drained
 * here on a timer, so the vCPU never waits on stdout or a file. Stopping sets a shared flag,
 * kvm_run.immediate_exit (through this thread's own mapping of the vCPU's run page) and sends
 * SIGUSR2 to the vCPU thread, which interrupts a KVM_RUN blocked in a halted guest.
 */
export function startMachine(config: MachineConfig, options: RunOptions = {}): RunningMachine {
  if (!signalListenerInstalled) {
    // The listener makes node install a real handler, so the signal interrupts KVM_RUN (EINTR)
    // instead of killing the process; node's handler itself does nothing harmful on any thread.
    process.on('SIGUSR2', () => {});
    signalListenerInstalled = true;
  }
  const sys = loadSys();
  const serial = new ByteRing(RING_BYTES);
  const debug = new ByteRing(RING_BYTES);
  const serialIn = new ByteRing(1 << 16);
  const stopShared = new SharedArrayBuffer(8);
  const stopFlag = new Int32Array(stopShared);
  const t0 = performance.now();
  const input: WorkerInput = { config, serial: serial.shared, debug: debug.shared, serialIn: serialIn.shared, stop: stopShared };
  const early = prestarted;
  prestarted = undefined;
  let worker: Worker;
  if (early !== undefined) {
    worker = early;
    worker.ref();
    worker.postMessage({ type: 'start', input } satisfies StartMessage);
  } else {
    worker = new Worker(WORKER_URL, { workerData: input, resourceLimits: VCPU_THREAD_LIMITS });
  }
  let vcpu: { thread: bigint; run: Mapping } | undefined;
  let finished = false;
  let pendingStop: string | undefined;
  let stopWhy: string | undefined;

  const drain = (): void => {
    const s = serial.drain();
    if (s.length > 0) options.onSerial?.(s);
    const d = debug.drain();
    if (d.length > 0) options.onDebug?.(d);
  };
  const poll = setInterval(drain, options.pollMs ?? 20);

  const kick = (flag: number): void => {
    if (vcpu === undefined || finished) return;
    if (flag === STOP_REQUESTED) Atomics.store(stopFlag, 0, STOP_REQUESTED);
    else if (Atomics.compareExchange(stopFlag, 0, 0, flag) !== 0) return;
    new DataView(vcpu.run.buffer).setUint8(RUN.immediateExit, 1);
    sys.signalThread(vcpu.thread, SIGUSR2);
  };
  const probeMs = options.haltProbeMs ?? 250;
  // Only a guest that made no exit for a whole period can be halted for good: a busy one is
  // left alone, so the probe costs nothing on exit-heavy work.
  let exitsSeen = -1;
  const probe =
    probeMs > 0
      ? setInterval(() => {
          const exits = Atomics.load(stopFlag, EXIT_COUNT);
          if (exits === exitsSeen) kick(PROBE_REQUESTED);
          exitsSeen = exits;
        }, probeMs)
      : undefined;

  const stop = (why: string): void => {
    if (finished) return;
    stopWhy ??= why;
    if (vcpu === undefined) pendingStop = why;
    else kick(STOP_REQUESTED);
  };

  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stop(`timeout after ${options.timeoutMs} ms`), options.timeoutMs);

  const done = new Promise<RunResult>((resolve, reject) => {
    const finish = (): void => {
      finished = true;
      clearInterval(poll);
      if (probe !== undefined) clearInterval(probe);
      if (timer !== undefined) clearTimeout(timer);
      drain();
      if (vcpu !== undefined) sys.munmap(vcpu.run);
      worker.postMessage('close');
    };
    worker.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'started':
          // The vCPU fd stays open until we send 'close', so mapping it here cannot race its release.
          vcpu = { thread: m.thread, run: sys.mmap(m.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, m.vcpuFd, 0) };
          if (pendingStop !== undefined) kick(STOP_REQUESTED);
          return;
        case 'fault':
          options.onFault?.(m.fault);
          return;
        case 'done': {
          finish();
          const reason: StopReason = m.reason.kind === 'stopped' && stopWhy !== undefined ? { kind: 'stopped', why: stopWhy } : m.reason;
          resolve({ reason, report: m.report, wallMs: performance.now() - t0 });
          return;
        }
        case 'failed':
          finish();
          reject(m.diagnosed ? new MachineError(m.message) : new Error(`vCPU thread failed: ${m.stack ?? m.message}`));
          return;
      }
    });
    worker.on('error', (err) => {
      if (finished) return;
      finish();
      reject(err);
    });
    worker.on('exit', (code) => {
      if (finished) return;
      finish();
      reject(new MachineError(`vCPU thread exited with code ${code} before reporting`));
    });
  });
  const sendSerial = (bytes: Uint8Array): void => {
    for (const b of bytes) serialIn.push(b);
  };
  return { stop, done, sendSerial };
}

export function runMachine(config: MachineConfig, options: RunOptions = {}): Promise<RunResult> {
  return startMachine(config, options).done;
}
