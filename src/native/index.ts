import { createKoffiSys } from './koffi-sys.js';
import type { Sys } from './sys.js';

let sys: Sys | undefined;

/** The thread's Sys, created on first use (each worker thread loads its own). */
export function loadSys(): Sys {
  sys ??= createKoffiSys();
  return sys;
}
