import { MessageChannel, Worker } from 'node:worker_threads';
import type { ControlEvent, ControlMessage, ControlRequest, ControlResult } from './control-protocol.js';
import { HvmptError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, SIGUSR2, type Mapping } from '../native/sys.js';
import { ByteRing } from './byte-ring.js';
import type { DeviceFault } from './io-bus.js';
import { RUN } from './kvm/abi.js';
import type { RunReport } from './machine.js';
import type { MachineConfig } from '../platform/machine-config.js';
import { controlBuffer, cpuWord, EXITS, KICK, PROBE, PROBE_NONE, PROBE_REQUESTED, STOP, STOP_REQUESTED } from './vcpu-control.js';
import type { StopReason } from './vcpu-loop.js';
import type { ApInput, ApMessage, ApStartMessage, StartMessage, WorkerInput, WorkerMessage } from './worker-protocol.js';

/** The machine could not be built or the vCPU thread died. */
export class MachineError extends HvmptError {}

export interface RunOptions {
  /** Guest serial output, delivered in chunks as it comes (drained `pollMs` after the first byte of a quiet spell). */
  readonly onSerial?: (bytes: Uint8Array) => void;
  /** The firmware's 0x402 log. */
  readonly onDebug?: (bytes: Uint8Array) => void;
  readonly onFault?: (fault: DeviceFault) => void;
  /** Notes from the machine (passthrough interrupt routes and modes, BARs refused). */
  readonly onNote?: (text: string) => void;
  /** Unasked news from the machine's control side (a hot-plugged device the guest ejected). */
  readonly onControlEvent?: (e: ControlEvent) => void;
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
  /** Asks every vCPU to stop; resolves `done` with a `stopped` reason. Safe to call at any time. */
  stop(why: string): void;
  /** Bytes for the guest's COM1 receiver (what a user types at the console). */
  sendSerial(bytes: Uint8Array): void;
  readonly done: Promise<RunResult>;
  /** Resolves when the vCPU thread has released the VM and every device it drove (after `done`). */
  readonly closed: Promise<void>;
  /**
   * A control request (control-protocol.ts), served by the vCPU thread between two exits (the
   * vCPU is kicked for it); rejects with a MachineError once the machine has stopped.
   */
  request(r: DistributiveOmit<ControlRequest, 'id'>): Promise<ControlResult>;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const RING_BYTES = 1 << 20;
/** How long the main thread sleeps on an output ring that stays empty before it looks anyway. */
const IDLE_DRAIN_MS = 1000;
/**
 * How long running vCPU threads have to end after a stop. A kick ends KVM_RUN at once and every
 * loop reads the stop word there, so only a thread stuck for good (in the kernel's KVM_RUN, or
 * device code that never returns) runs past this; it is then abandoned, so that a timeout or a
 * signal still ends the run. A thread still building the machine is waited for.
 */
const STOP_GRACE_MS = 20_000;
let abandoned = false;

/**
 * Whether a machine's vCPU thread was abandoned because it did not stop: the process then
 * holds a thread that will not end, and must exit explicitly once it has cleaned up.
 */
export function vcpuThreadsAbandoned(): boolean {
  return abandoned;
}

/** What the stop could not end: each vCPU still running, and whether it made exits meanwhile. */
export function unresponsiveMessage(why: string, graceMs: number, stuck: ReadonlyArray<{ readonly cpu: number; readonly exitsSinceStop: number }>): string {
  const each = stuck.map((t) =>
    t.exitsSinceStop > 0
      ? `vCPU ${t.cpu} (${t.exitsSinceStop} exits since, the stop word unread)`
      : `vCPU ${t.cpu} (no exit since: in KVM_RUN or in device code that does not return)`,
  );
  return `the machine did not stop within ${graceMs / 1000} s of the stop (${why}): ${each.join(', ')}; its thread is abandoned and the process ends after cleaning up`;
}
/** Set by the bundler (scripts/bundle.mjs) to the vCPU threads' own bundles; undefined in dist/src. */
declare const HVMPT_WORKER_FILE: string | undefined;
declare const HVMPT_AP_WORKER_FILE: string | undefined;
const WORKER_URL = new URL(typeof HVMPT_WORKER_FILE === 'string' ? HVMPT_WORKER_FILE : './worker.js', import.meta.url);
const AP_WORKER_URL = new URL(typeof HVMPT_AP_WORKER_FILE === 'string' ? HVMPT_AP_WORKER_FILE : './ap-worker.js', import.meta.url);
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

/** A vCPU thread as the main thread sees it: its worker, and once started its thread and run page. */
interface VcpuThread {
  readonly worker: Worker;
  /** Its vCPU's fd, once the boot thread has created it. */
  fd?: number;
  started?: { readonly thread: bigint; readonly run: Mapping };
  done: boolean;
  /** Given up on after a stop it did not answer (STOP_GRACE_MS). */
  abandoned?: boolean;
  /** Its worker has exited. */
  exited?: boolean;
}

/**
 * Starts a machine: the boot vCPU's thread (which builds the machine and owns every device)
 * and one thread per other vCPU. Guest output goes through shared rings drained here on a
 * timer, so no vCPU ever waits on stdout or a file. Stopping sets the shared stop word, then
 * kvm_run.immediate_exit (through this thread's own mapping of each vCPU's run page) and sends
 * SIGUSR2 to each vCPU's thread, which interrupts a KVM_RUN blocked in a halted guest.
 */
export function startMachine(config: MachineConfig, options: RunOptions = {}): RunningMachine {
  if (!signalListenerInstalled) {
    // vCPU threads keep SIGUSR2 blocked but inside KVM_RUN (Vcpu.armKick), so it never runs a
    // handler there. The listener is a safety net: with it node installs a real handler, so a
    // kick that reached a thread before it was armed does nothing instead of ending the process.
    process.on('SIGUSR2', () => {});
    signalListenerInstalled = true;
  }
  const sys = loadSys();
  const cpus = config.cpus ?? 1;
  const serial = new ByteRing(RING_BYTES);
  const debug = new ByteRing(RING_BYTES);
  const serialIn = new ByteRing(1 << 16);
  const control = controlBuffer(cpus);
  const words = new Int32Array(control);
  const t0 = performance.now();
  const channel = new MessageChannel();
  const input: WorkerInput = { config, serial: serial.shared, debug: debug.shared, serialIn: serialIn.shared, control, requests: channel.port2 };
  const early = prestarted;
  prestarted = undefined;
  let boot: Worker;
  if (early !== undefined) {
    boot = early;
    boot.ref();
    boot.postMessage({ type: 'start', input } satisfies StartMessage, [channel.port2]);
  } else {
    boot = new Worker(WORKER_URL, { workerData: input, transferList: [channel.port2], resourceLimits: VCPU_THREAD_LIMITS });
  }
  // Replies to control requests by id, and the machine's own events.
  const replies = new Map<number, { resolve: (r: ControlResult) => void; reject: (e: Error) => void }>();
  let nextRequest = 1;
  channel.port1.on('message', (m: ControlMessage) => {
    if ('event' in m) {
      options.onControlEvent?.(m);
      return;
    }
    const waiting = replies.get(m.id);
    replies.delete(m.id);
    if (m.ok) waiting?.resolve(m.result);
    else waiting?.reject(new MachineError(m.error));
  });
  channel.port1.unref();
  // The other vCPUs' threads load their modules while the boot thread builds the machine.
  const threads: VcpuThread[] = [boot, ...Array.from({ length: cpus - 1 }, () => new Worker(AP_WORKER_URL, { resourceLimits: VCPU_THREAD_LIMITS }))].map((worker) => ({ worker, done: false }));
  let finished = false;
  let stopping = false;
  /** Why the run ended when it was not the boot vCPU's own doing: a stop asked here, or another vCPU's end. */
  let override: StopReason | undefined;
  let bootResult: { reason: StopReason; report: RunReport } | undefined;
  let runSize = 0;

  const drain = (): void => {
    const s = serial.drain();
    if (s.length > 0) options.onSerial?.(s);
    const d = debug.drain();
    if (d.length > 0) options.onDebug?.(d);
  };
  // Each ring is drained a batching delay after its first byte, then waited on again: output
  // shows within pollMs, and a guest that prints nothing wakes this thread once a second.
  const pollMs = options.pollMs ?? 20;
  const pump = async (ring: ByteRing, deliver: ((b: Uint8Array) => void) | undefined): Promise<void> => {
    while (!finished) {
      await ring.written(IDLE_DRAIN_MS);
      if (finished) return;
      await new Promise((r) => setTimeout(r, pollMs));
      if (finished) return;
      const b = ring.drain();
      if (b.length > 0) deliver?.(b);
    }
  };
  void pump(serial, (b) => options.onSerial?.(b));
  void pump(debug, (b) => options.onDebug?.(b));

  const kick = (cpu: number): void => {
    const t = threads[cpu]!;
    if (t.started === undefined || t.done) return;
    new DataView(t.started.run.buffer).setUint8(RUN.immediateExit, 1);
    sys.signalThread(t.started.thread, SIGUSR2);
  };
  const kickAll = (): void => threads.forEach((_, cpu) => kick(cpu));
  const probeMs = options.haltProbeMs ?? 250;
  // Only a guest that made no exit for a whole period can be halted for good: a busy one is
  // left alone, so the probe costs nothing on exit-heavy work. Every vCPU answers in its own
  // thread; the boot vCPU's thread decides.
  let exitsSeen = -1;
  const exitsNow = (): number => threads.reduce((n, _, cpu) => n + Atomics.load(words, cpuWord(cpu, EXITS)), 0);
  const probe =
    probeMs > 0
      ? setInterval(() => {
          const exits = exitsNow();
          if (exits === exitsSeen && !stopping) {
            // Only threads that can be kicked are asked (one still starting answers nothing, and
            // the boot thread takes the machine for alive); a probe still unanswered is asked again.
            const asked = threads.flatMap((th, cpu) => (th.started !== undefined && !th.done ? [cpu] : []));
            for (let cpu = 0; cpu < cpus; cpu++) Atomics.store(words, cpuWord(cpu, PROBE), PROBE_NONE);
            for (const cpu of asked) Atomics.store(words, cpuWord(cpu, KICK), PROBE_REQUESTED);
            for (const cpu of asked) kick(cpu);
          }
          exitsSeen = exits;
        }, probeMs)
      : undefined;

  let grace: NodeJS.Timeout | undefined;
  let abandon: (why: string, exitsAtStop: readonly number[]) => void = () => {};
  const stopWith = (reason: StopReason): void => {
    if (finished) return;
    override ??= reason;
    stopping = true;
    Atomics.store(words, STOP, STOP_REQUESTED);
    kickAll();
    if (grace === undefined) {
      const exitsAtStop = threads.map((_, cpu) => Atomics.load(words, cpuWord(cpu, EXITS)));
      const why = reason.kind === 'stopped' ? reason.why : reason.kind;
      grace = setTimeout(() => abandon(why, exitsAtStop), STOP_GRACE_MS);
    }
  };
  const stop = (why: string): void => stopWith({ kind: 'stopped', why });

  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stop(`timeout after ${options.timeoutMs} ms`), options.timeoutMs);

  const done = new Promise<RunResult>((resolve, reject) => {
    let failure: Error | undefined;
    const finish = (): void => {
      finished = true;
      if (grace !== undefined) clearTimeout(grace);
      for (const w of replies.values()) w.reject(new MachineError('the machine has stopped'));
      replies.clear();
      channel.port1.close();
      serial.wake();
      debug.wake();
      if (probe !== undefined) clearInterval(probe);
      if (timer !== undefined) clearTimeout(timer);
      drain();
      for (const t of threads) {
        if (t.started !== undefined) sys.munmap(t.started.run);
        t.worker.postMessage('close');
      }
    };
    /** Resolves once every vCPU thread has ended (the boot one last reports the machine). */
    const settle = (): void => {
      if (finished || !threads.every((t) => t.done)) return;
      finish();
      if (failure !== undefined || bootResult === undefined) {
        reject(failure ?? new MachineError('the boot vCPU ended without a report'));
        return;
      }
      const vcpuExits = threads.map((_, cpu) => Atomics.load(words, cpuWord(cpu, EXITS)));
      const report: RunReport = { ...bootResult.report, exits: vcpuExits.reduce((a, b) => a + b, 0), vcpuExits };
      const own = bootResult.reason;
      resolve({ reason: own.kind === 'stopped' && override !== undefined ? override : own, report, wallMs: performance.now() - t0 });
    };
    abandon = (why: string, exitsAtStop: readonly number[]): void => {
      if (finished) return;
      // A thread still building its machine or starting its vCPU (attaching devices, mapping guest
      // RAM for DMA) reads the stop word once it is ready to run: it is waited for, not given up.
      if (threads.some((t, cpu) => !t.done && t.started === undefined && (cpu === 0 || t.fd !== undefined))) {
        grace = setTimeout(() => abandon(why, exitsAtStop), STOP_GRACE_MS);
        return;
      }
      const stuck = threads.flatMap((t, cpu) => (t.done ? [] : [{ cpu, exitsSinceStop: Atomics.load(words, cpuWord(cpu, EXITS)) - exitsAtStop[cpu]! }]));
      failure ??= new MachineError(unresponsiveMessage(why, STOP_GRACE_MS, stuck));
      abandoned = true;
      for (const { cpu } of stuck) {
        const t = threads[cpu]!;
        t.done = true;
        t.abandoned = true;
        // Ends a thread stuck in JavaScript; one blocked in the kernel stays, and the process exits around it.
        void t.worker.terminate();
      }
      settle();
    };
    const ended = (cpu: number, err?: Error): void => {
      const t = threads[cpu]!;
      if (t.done) return;
      t.done = true;
      if (err !== undefined) failure ??= err;
      // One vCPU's end is the machine's: the others are stopped (the boot thread also sets the
      // stop word itself when its loop returns). Threads never given a vCPU have nothing to end.
      stopWith({ kind: 'stopped', why: err?.message ?? 'a vCPU ended' });
      if (cpu === 0) for (const other of threads) if (other.fd === undefined) other.done = true;
      settle();
    };
    boot.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'started': {
          // The vCPU fds stay open until we send 'close', so mapping them here cannot race their release.
          runSize = m.runSize;
          threads[0]!.started = { thread: m.thread, run: sys.mmap(m.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, m.vcpuFd, 0) };
          m.apFds.forEach((fd, i) => {
            const ap: ApInput = { cpu: i + 1, fd, runSize: m.runSize, bootFd: m.vcpuFd, bootThread: m.thread, control };
            threads[i + 1]!.fd = fd;
            threads[i + 1]!.worker.postMessage({ type: 'start-ap', input: ap } satisfies ApStartMessage);
          });
          // A stop, or a control request, that came before the thread could be kicked.
          if (stopping || replies.size > 0) kickAll();
          return;
        }
        case 'fault':
          options.onFault?.(m.fault);
          return;
        case 'note':
          options.onNote?.(m.text);
          return;
        case 'done':
          bootResult = { reason: m.reason, report: m.report };
          ended(0);
          return;
        case 'failed':
          ended(0, m.diagnosed ? new MachineError(m.message) : new Error(`vCPU thread failed: ${m.stack ?? m.message}`));
          return;
      }
    });
    threads.forEach((t, cpu) => {
      if (cpu > 0) {
        t.worker.on('message', (m: ApMessage) => {
          switch (m.type) {
            case 'started':
              t.started = { thread: m.thread, run: sys.mmap(runSize, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd!, 0) };
              // A stop that came first found no thread to kick; the loop also reads the stop word before it runs.
              if (stopping) kick(cpu);
              return;
            case 'done':
              // Another vCPU's own end (a triple fault, an error) ends the run with its reason.
              if (m.reason.kind !== 'stopped') override ??= m.reason;
              ended(cpu);
              return;
            case 'failed':
              ended(cpu, new Error(`vCPU ${cpu} thread failed: ${m.stack ?? m.message}`));
              return;
          }
        });
      }
      t.worker.on('error', (err) => ended(cpu, err));
      t.worker.on('exit', (code) => {
        t.exited = true;
        ended(cpu, new MachineError(`vCPU ${cpu} thread exited with code ${code} before reporting`));
      });
    });
  });
  const sendSerial = (bytes: Uint8Array): void => {
    for (const b of bytes) serialIn.push(b);
  };
  // An abandoned thread may never exit: it no longer holds up the cleanup that waits on this.
  const closed = done
    .catch(() => undefined)
    .then(() => Promise.all(threads.map((t) => (t.abandoned === true ? undefined : new Promise<void>((resolve) => (t.exited ? resolve() : t.worker.once('exit', () => resolve())))))))
    .then(() => undefined);
  const request = (r: DistributiveOmit<ControlRequest, 'id'>): Promise<ControlResult> => {
    if (finished || stopping) return Promise.reject(new MachineError('the machine is stopping'));
    const id = nextRequest++;
    return new Promise<ControlResult>((resolve, reject) => {
      replies.set(id, { resolve, reject });
      channel.port1.postMessage({ ...r, id } as ControlRequest);
      kick(0);
    });
  };
  return { stop, done, closed, sendSerial, request };
}

export function runMachine(config: MachineConfig, options: RunOptions = {}): Promise<RunResult> {
  return startMachine(config, options).done;
}
