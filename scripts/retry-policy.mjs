// When scripts/run-tests.mjs runs a failed file that boots guests again (the reasons are there):
// once after any failure; once more, MAX_RUNS runs in all, when the guest it booted fell asleep
// again, since that is the lab kernel's lost timer and not the code under test.
export const MAX_RUNS = 3;

/** After `runs` runs of a file that failed and may run again, whether it does. */
export function anotherRun(asleep, runs) {
  return runs === 1 || (asleep === true && runs < MAX_RUNS);
}

/** How the TAP says that a file that ran `runs` times runs again. */
export function runAgainWords(runs) {
  return runs === 1 ? 'once more' : runs === 2 ? 'a third time' : `a ${runs + 1}th time`;
}
