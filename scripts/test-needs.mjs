// What a compiled test file needs of the machine it runs on, read from its text. Used by
// scripts/run-tests.mjs (where a file runs) and scripts/test-files.mjs (what may run beside it).
import { readFileSync } from 'node:fs';

/** 'paging', 'kvm' or undefined: what a test file needs of /dev/kvm (it calls skipUnlessKvm; `paging: true` for a paging kernel). */
export function kvmNeed(file) {
  const text = readFileSync(file, 'utf8');
  if (!text.includes('skipUnlessKvm(')) return undefined;
  return /skipUnlessKvm\([^)]*paging: true/.test(text) ? 'paging' : 'kvm';
}

/**
 * Whether a test file boots a Linux guest on hvmpt (a paging kernel, or a plan with the probe
 * guest). In a lab host no two such files run at once: two nested Linux guests sharing the lab
 * kernel's two CPUs under TCG triple-faulted or panicked the lab kernel, where each alone passed
 * (docs/lab.md, Limits).
 */
export function bootsLinux(file) {
  return /skipUnlessKvm\([^)]*paging: true|kind: probe/.test(readFileSync(file, 'utf8'));
}
