/**
 * The vCPU thread: builds the machine and runs the vCPU loop with device dispatch in this
 * thread. It talks to the main thread only through shared rings (guest output), a shared stop
 * flag, and a handful of messages (started, fault, done, failed).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HvmptError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { SIGUSR2 } from '../native/sys.js';
import { ByteRing } from './byte-ring.js';
import { Machine } from './machine.js';
import { runVcpu } from './vcpu-loop.js';
import type { StartMessage, WorkerInput, WorkerMessage } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('vmm/worker.js must run as a worker thread');
const post = (m: WorkerMessage): void => port.postMessage(m);
let closeOnRequest = (): void => {};

function run(input: WorkerInput): void {
  try {
    const sys = loadSys();
    sys.unblockSignal(SIGUSR2);
    const machine = new Machine(sys, input.config, { serial: new ByteRing(input.serial), debug: new ByteRing(input.debug), serialIn: new ByteRing(input.serialIn) }, new Int32Array(input.stop));
    machine.ledger.onFault = (f) => post({ type: 'fault', fault: f });
    post({ type: 'started', thread: sys.threadSelf(), vcpuFd: machine.vcpu.fd, runSize: machine.kvm.vcpuMmapSize });
    const reason = runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control);
    post({ type: 'done', reason, report: machine.report() });
    closeOnRequest = () => machine.close();
  } catch (err) {
    post({
      type: 'failed',
      message: err instanceof Error ? err.message : String(err),
      diagnosed: err instanceof HvmptError,
      stack: err instanceof Error ? err.stack : undefined,
    });
  }
}

// Stay alive until the main thread has let go of the vCPU (its mapping of the run page, any
// signal it may still send for a stop racing the guest's own exit), then release the VM.
port.on('message', (m: unknown) => {
  if (m === 'close') {
    closeOnRequest();
    port.close();
  } else if (typeof m === 'object' && m !== null && (m as StartMessage).type === 'start') {
    run((m as StartMessage).input);
  }
});

// Started with its machine, or ahead of it (runner.ts prestartVcpuThread): then the main
// thread sends it in a 'start' message.
if (workerData !== null && workerData !== undefined) run(workerData as WorkerInput);
