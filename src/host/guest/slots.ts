/**
 * Machine-wide slots for software-emulated guests. A QEMU TCG guest keeps a core busy; with more
 * of them than cores (parallel test files, several users of one CI runner) each crawls, and
 * nested guests under them miss their timeouts. So a boot first takes one of N slots (N = the
 * cores, or $HVMPT_GUEST_SLOTS), waiting for one to free up. A slot is a lock file holding its
 * owner's PID; one whose owner died is taken over. Waiters queue first come, first served: each
 * writes a ticket, and a free slot goes to the oldest live ticket, so a boot that has waited
 * longest (a test with a deadline) is not overtaken by newer ones polling at the right moment.
 */
import { mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../process-alive.js';

function slotCount(): number {
  const env = Number(process.env['HVMPT_GUEST_SLOTS']);
  return Number.isInteger(env) && env > 0 ? env : Math.max(1, availableParallelism());
}

function tryTake(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let owner = NaN;
  try {
    owner = Number(readFileSync(path, 'utf8'));
  } catch {
    return false;
  }
  if (processAlive(owner)) return false;
  // Its owner is gone: remove the stale lock, then race for it like anyone else.
  rmSync(path, { force: true });
  return false;
}

/** Whether a slot is free now (a dead owner's counts as free: tryTake clears it). */
function isFree(path: string): boolean {
  try {
    const owner = Number(readFileSync(path, 'utf8'));
    return !(processAlive(owner));
  } catch {
    return true;
  }
}

let ticketCount = 0;

/** A queue ticket: its name sorts by when it was written (then by PID), its content is the PID. */
function writeTicket(queue: string): string {
  mkdirSync(queue, { recursive: true });
  const name = `${process.hrtime.bigint().toString().padStart(24, '0')}-${String(process.pid).padStart(10, '0')}-${ticketCount++}`;
  const fd = openSync(join(queue, name), 'wx');
  writeSync(fd, String(process.pid));
  closeSync(fd);
  return name;
}

/** Live tickets ahead of `mine`; a dead waiter's ticket is removed on the way. */
function ahead(queue: string, mine: string): number {
  let n = 0;
  for (const t of readdirSync(queue).sort()) {
    if (t >= mine) break;
    const pid = Number(t.split('-')[1]);
    if (processAlive(pid)) n++;
    else rmSync(join(queue, t), { force: true });
  }
  return n;
}

/** The slots' directory under the temporary directory. */
export const GUEST_SLOTS_DIR = 'hvmpt-guest-slots';

/**
 * Waits for a free slot; resolves with the function that frees it. `waiting` hears once that it
 * had to wait; `signal` ends the wait, rejecting with its reason (a stopped `hvmpt lab`).
 */
export async function acquireGuestSlot(waiting?: (slots: number) => void, dir = join(tmpdir(), GUEST_SLOTS_DIR), signal?: AbortSignal): Promise<() => void> {
  mkdirSync(dir, { recursive: true });
  const n = slotCount();
  const queue = join(dir, 'queue');
  const ticket = writeTicket(queue);
  const leave = (): void => rmSync(join(queue, ticket), { force: true });
  let told = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const paths = Array.from({ length: n }, (_, i) => join(dir, `slot-${i}`));
      // Only as many waiters as there are free slots may take one: the oldest tickets.
      if (ahead(queue, ticket) < paths.filter(isFree).length) {
        for (const path of paths) {
          if (tryTake(path) || (isFree(path) && tryTake(path))) {
            leave();
            let released = false;
            return () => {
              if (released) return;
              released = true;
              rmSync(path, { force: true });
            };
          }
        }
      }
      if (!told) {
        told = true;
        waiting?.(n);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (err) {
    leave();
    throw err;
  }
}
