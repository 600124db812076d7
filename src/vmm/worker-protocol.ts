import type { MessagePort } from 'node:worker_threads';
import type { DeviceFault } from './io-bus.js';
import type { RunReport } from './machine.js';
import type { MachineConfig } from '../platform/machine-config.js';
import type { StopReason } from './vcpu-loop.js';
import type { FailedMessage } from './vcpu-thread.js';

/** What the boot vCPU's thread needs: the machine, the shared rings and the shared control words. */
export interface WorkerInput {
  readonly config: MachineConfig;
  readonly serial: SharedArrayBuffer;
  readonly debug: SharedArrayBuffer;
  readonly serialIn: SharedArrayBuffer;
  /** `controlBuffer(cpus)`: stop, probe and hand-over words (vcpu-control.ts). */
  readonly control: SharedArrayBuffer;
  /** Requests of the control socket (control-protocol.ts), read whenever the vCPU is kicked; replies and events go back on it. */
  readonly requests?: MessagePort;
}

/** To a thread started ahead of its machine (it has no workerData): build and run this one. */
export interface StartMessage {
  readonly type: 'start';
  readonly input: WorkerInput;
}

/** What an application processor's thread needs: its vCPU, and how to reach the boot vCPU. */
export interface ApInput {
  readonly cpu: number;
  readonly fd: number;
  readonly runSize: number;
  readonly bootFd: number;
  readonly bootThread: bigint;
  readonly control: SharedArrayBuffer;
}

export interface ApStartMessage {
  readonly type: 'start-ap';
  readonly input: ApInput;
}

/** Messages from the boot vCPU's thread to the main thread. */
export type WorkerMessage =
  | { readonly type: 'started'; readonly thread: bigint; readonly vcpuFd: number; readonly runSize: number; readonly apFds: readonly number[] }
  | { readonly type: 'fault'; readonly fault: DeviceFault }
  /** Something the machine did that the user should see (a passthrough device's interrupt route changed, say). */
  | { readonly type: 'note'; readonly text: string }
  | { readonly type: 'done'; readonly reason: StopReason; readonly report: RunReport }
  | FailedMessage;

/** Messages from an application processor's thread. */
export type ApMessage =
  | { readonly type: 'started'; readonly thread: bigint }
  | { readonly type: 'done'; readonly reason: StopReason; readonly exits: number }
  | FailedMessage;
