/**
 * The main-thread side of a vCPU worker's life, shared by the boot vCPU's thread and the
 * others': start from workerData or from a start message (a thread started ahead of its
 * machine), report a throw as a 'failed' message, and stay alive until the main thread says
 * 'close' — once it has let go of the vCPU (its mapping of the run page, any signal it may still
 * send for a stop racing the guest's own end) — then release what the run holds and end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HvmptError } from '../errors.js';

export interface FailedMessage {
  readonly type: 'failed';
  readonly message: string;
  /** An HvmptError: a diagnosed problem, shown without a stack. */
  readonly diagnosed: boolean;
  readonly stack: string | undefined;
}

/**
 * Runs `run` with the input of this thread's start message (type `startType`) or its
 * workerData; `run` returns what to release on 'close' (or a promise of it: the boot vCPU's
 * thread imports device plug-ins first).
 */
export function serveVcpuThread<Input, Message>(startType: string, run: (input: Input, post: (m: Message) => void) => (() => void) | Promise<() => void>): void {
  const port = parentPort;
  if (port === null) throw new Error('a vCPU thread module must run as a worker thread');
  const post = (m: Message | FailedMessage): void => port.postMessage(m);
  let release = (): void => {};
  const start = async (input: Input): Promise<void> => {
    try {
      release = await run(input, post);
    } catch (err) {
      post({ type: 'failed', message: err instanceof Error ? err.message : String(err), diagnosed: err instanceof HvmptError, stack: err instanceof Error ? err.stack : undefined });
    }
  };
  port.on('message', (m: unknown) => {
    if (m === 'close') {
      try {
        release();
      } finally {
        port.close();
      }
    } else if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === startType) {
      void start((m as { input: Input }).input);
    }
  });
  if (workerData !== null && workerData !== undefined) void start(workerData as Input);
}
