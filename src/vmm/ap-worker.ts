/**
 * An application processor's thread: no device model, only its vCPU's loop (ap-loop.ts). It
 * loads little (the native layer and the loop), so it starts quickly, and waits for its vCPU in
 * a 'start-ap' message once the boot vCPU's thread has created the VM.
 */
import { loadSys } from '../native/index.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, SIGUSR2 } from '../native/sys.js';
import { runAp } from './ap-loop.js';
import { RUN } from './kvm/abi.js';
import { Vcpu } from './kvm/vcpu.js';
import { serveVcpuThread } from './vcpu-thread.js';
import type { ApInput, ApMessage } from './worker-protocol.js';

serveVcpuThread<ApInput, ApMessage>('start-ap', (input, post) => {
  const sys = loadSys();
  const vcpu = new Vcpu(sys, input.cpu, input.fd, input.runSize);
  vcpu.armKick(SIGUSR2);
  const boot = sys.mmap(input.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, input.bootFd, 0);
  const bootRun = new DataView(boot.buffer);
  post({ type: 'started', thread: sys.threadSelf() });
  const kickBoot = (): void => {
    bootRun.setUint8(RUN.immediateExit, 1);
    sys.signalThread(input.bootThread, SIGUSR2);
  };
  const { reason, exits } = runAp(vcpu, new Int32Array(input.control), kickBoot);
  post({ type: 'done', reason, exits });
  // The fds belong to the boot vCPU's thread, which closes them; this thread only unmaps.
  return () => {
    sys.munmap(vcpu.run);
    sys.munmap(boot);
  };
});
