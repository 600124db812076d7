/**
 * Which plug-in is running right now in this thread. Every call into plug-in code goes through
 * `runPlugin`, so when the vCPU loop's watchdog interrupts a handler that ran too long it knows
 * whose handler it was, fails that device, and lets the guest go on.
 */
import { Script } from 'node:vm';

let active: string | undefined;

/** The device whose plug-in code is running, if any. */
export function activePlugin(): string | undefined {
  return active;
}

/** Runs `f` as plug-in code of `device`. */
export function runPlugin<T>(device: string, f: () => T): T {
  const outer = active;
  active = device;
  try {
    return f();
  } finally {
    active = outer;
  }
}

/** The watchdog interrupted plug-in code: nothing is running any more. */
export function clearActivePlugin(): void {
  active = undefined;
}

let timedBody: (() => unknown) | undefined;
let timedScript: Script | undefined;

/**
 * Runs `f` under node's vm timeout: the one way to interrupt JavaScript stuck in a loop without
 * killing its thread. For plug-in calls made outside the vCPU loop's watched slices (`create`
 * and `reset` while the machine is built, a `restore`); each call starts a timer thread, so it
 * is for rare calls, never for a register access. Termination skips `finally` blocks, so the
 * active plug-in is cleared here. Nested calls work: node keeps a stack of these timers.
 */
export function withTimeLimit<T>(ms: number, f: () => T): { readonly value: T } | { readonly stopped: true } {
  timedScript ??= new Script('globalThis.__hvmptTimedPluginCall()', { filename: 'hvmpt-plugin-call' });
  const g = globalThis as { __hvmptTimedPluginCall?: () => unknown };
  const outerBody = timedBody;
  const outerActive = active;
  timedBody = f;
  g.__hvmptTimedPluginCall = () => timedBody!();
  try {
    return { value: timedScript.runInThisContext({ timeout: ms }) as T };
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err;
    return { stopped: true };
  } finally {
    timedBody = outerBody;
    active = outerActive;
  }
}

/** A promise, or anything `await` would treat as one: what a synchronous plug-in call must not return. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
