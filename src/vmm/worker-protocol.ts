import type { DeviceFault } from './io-bus.js';
import type { RunReport } from './machine.js';
import type { StopReason } from './vcpu-loop.js';

/** Messages from the vCPU thread to the main thread. */
export type WorkerMessage =
  | { readonly type: 'started'; readonly thread: bigint; readonly vcpuFd: number; readonly runSize: number }
  | { readonly type: 'fault'; readonly fault: DeviceFault }
  | { readonly type: 'done'; readonly reason: StopReason; readonly report: RunReport }
  | { readonly type: 'failed'; readonly message: string; readonly diagnosed: boolean; readonly stack: string | undefined };
