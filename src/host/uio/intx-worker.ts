/**
 * The INTx bridge of a uio function, in a thread of its own (the vCPU thread sits in KVM_RUN):
 * /dev/uioN readable (uio_pci_generic masked the device and counted the interrupt) signals
 * KVM's irqfd; the irqfd's resample eventfd (the guest's EOI) unmasks the device again. A
 * write to `stop` ends it, and it closes `stop` as it goes.
 */
import { writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { loadSys } from '../../native/index.js';
import { EINTR, POLLIN, SysError } from '../../native/sys.js';
import { IntxState } from './intx-state.js';

export interface IntxWorkerData {
  readonly address: string;
  readonly uio: number;
  readonly config: number;
  readonly trigger: number;
  readonly resample: number;
  readonly stop: number;
  readonly state: SharedArrayBuffer;
}

const d = workerData as IntxWorkerData;
const debug = process.env['HVMPT_DEBUG_UIO'] === '1';
if (debug) writeSync(2, `hvmpt: ${d.address}: INTx bridge up (uio fd ${d.uio}, trigger ${d.trigger}, resample ${d.resample})\n`);
const sys = loadSys();
const state = new IntxState(sys, d.config, d.state);
state.trigger = d.trigger;
const count = new Uint8Array(4);
const fds = [
  { fd: d.uio, events: POLLIN },
  { fd: d.resample, events: POLLIN },
  { fd: d.stop, events: POLLIN },
];
while (!state.stopped) {
  let revents: number[];
  try {
    // A timeout, so a stop request is seen even if its eventfd write were lost.
    revents = sys.poll(fds, 500);
  } catch (err) {
    if (err instanceof SysError && err.errno === EINTR) continue;
    // Straight to fd 2: this thread's process.stderr goes through the vCPU thread, which never listens.
    writeSync(2, `hvmpt: ${d.address}: INTx bridge stopped: ${err instanceof Error ? err.message : String(err)}\n`);
    break;
  }
  if ((revents[2]! & POLLIN) !== 0) break;
  // The EOI first: it ends the interrupt before any new one, which then stays masked until its own EOI.
  if ((revents[1]! & POLLIN) !== 0) {
    if (sys.eventfdRead(d.resample) !== undefined) state.resampled();
    if (debug) writeSync(2, `hvmpt: ${d.address}: EOI (${state.describe()})\n`);
  }
  if ((revents[0]! & POLLIN) !== 0) {
    sys.read(d.uio, count);
    state.triggered();
    if (debug) writeSync(2, `hvmpt: ${d.address}: INTx ${new DataView(count.buffer).getUint32(0, true)} (${state.describe()})\n`);
    sys.eventfdWrite(d.trigger, 1n);
  }
}
// The stop eventfd is this thread's to close once it no longer polls it.
state.closeStop(d.stop);
state.exited();
