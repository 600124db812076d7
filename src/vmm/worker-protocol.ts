import type { DeviceFault } from './io-bus.js';
import type { RunReport } from './machine.js';
import type { MachineConfig } from './machine-config.js';
import type { StopReason } from './vcpu-loop.js';

/** What the vCPU thread needs: the machine, and the shared rings and stop flag. */
export interface WorkerInput {
  readonly config: MachineConfig;
  readonly serial: SharedArrayBuffer;
  readonly debug: SharedArrayBuffer;
  readonly serialIn: SharedArrayBuffer;
  readonly stop: SharedArrayBuffer;
}

/** To a thread started ahead of its machine (it has no workerData): build and run this one. */
export interface StartMessage {
  readonly type: 'start';
  readonly input: WorkerInput;
}

/** Messages from the vCPU thread to the main thread. */
export type WorkerMessage =
  | { readonly type: 'started'; readonly thread: bigint; readonly vcpuFd: number; readonly runSize: number }
  | { readonly type: 'fault'; readonly fault: DeviceFault }
  | { readonly type: 'done'; readonly reason: StopReason; readonly report: RunReport }
  | { readonly type: 'failed'; readonly message: string; readonly diagnosed: boolean; readonly stack: string | undefined };
