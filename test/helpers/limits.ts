/**
 * Time limits in tests are nets against a hung guest, never assertions. In a lab host
 * (HVMPT_LAB=1: QEMU's TCG running the lab's own KVM, on a machine other work shares) a guest
 * runs tens of times slower than on this machine's KVM, so every net widens there.
 */
export const LAB_LIMIT_FACTOR = 20;
export const LIMIT_FACTOR = process.env['HVMPT_LAB'] === '1' ? LAB_LIMIT_FACTOR : 1;

/** A limit in milliseconds (runMachine's timeoutMs, a test's `timeout`). */
export const limitMs = (ms: number): number => ms * LIMIT_FACTOR;

/** A limit in seconds, as `hvmpt run --timeout` and a plan's machine.timeout take it. */
export const limitS = (s: number): number => s * LIMIT_FACTOR;
