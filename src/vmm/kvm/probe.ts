/**
 * What this machine's /dev/kvm can run. Some machines of this kind have none; others have a
 * nested PVM one that runs real-mode and unpaged protected-mode code (SeaBIOS, GRUB) but no
 * paging kernel. The probe finds out in a few milliseconds by running a guest that can only
 * reach its `out` instruction through the page tables it is given.
 */
import { accessSync, constants } from 'node:fs';
import { loadSys } from '../../native/index.js';
import type { Sys } from '../../native/sys.js';
import { EXIT, IOCTL, RUN } from './abi.js';
import { Kvm } from './system.js';
import type { Segment } from './vcpu.js';

export type KvmProbe =
  /** No /dev/kvm, or not readable and writable. */
  | { readonly kind: 'absent'; readonly why: string }
  /** /dev/kvm opens but a VM or vCPU cannot be created. */
  | { readonly kind: 'no-vm'; readonly why: string }
  /** Guests run, but not with paging on: firmware and GRUB work, a kernel does not. */
  | { readonly kind: 'no-paging'; readonly why: string }
  | { readonly kind: 'paging' };

/** The probe guest's layout: one 64 KiB slot at guest-physical 0. */
const SLOT_SIZE = 0x1_0000;
const PAGE_DIRECTORY = 0x1000;
const CODE = 0x2000;
/** Linear address of the code: the second 4 MiB page, which the directory maps onto physical 0. */
const CODE_LINEAR = 0x40_0000 + CODE;
const PROBE_PORT = 0x80;
const PROBE_VALUE = 0x5a;
const PDE_4M = 0x83; // present, writable, page size (4 MiB with CR4.PSE)
const CR0_PE = 1n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PSE = 1n << 4n;
/** A few exits at most; a PVM that loops on a fault must not hang the caller. */
const MAX_RUNS = 16;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function flat(type: number, selector: number): Segment {
  return { base: 0n, limit: 0xffff_ffff, selector, type, present: true, dpl: 0, db: true, s: true, l: false, g: true, avl: false, unusable: false };
}

/** Runs the paging guest; returns why it failed, or undefined when it reached its `out`. */
function runPagingGuest(sys: Sys, kvm: Kvm): string | undefined {
  const vm = kvm.createVm();
  try {
    const ram = vm.allocate(SLOT_SIZE);
    const bytes = new Uint8Array(ram.buffer);
    const view = new DataView(ram.buffer);
    // PDE 0 maps 0-4 MiB (the tables themselves), PDE 1 maps 4-8 MiB onto physical 0 too, so
    // the code runs at CODE_LINEAR only if translation really happens.
    view.setUint32(PAGE_DIRECTORY, PDE_4M, true);
    view.setUint32(PAGE_DIRECTORY + 4, PDE_4M, true);
    bytes.set([0xb0, PROBE_VALUE, 0xe6, PROBE_PORT, 0xf4, 0xeb, 0xfd], CODE); // mov al, v; out p, al; hlt; jmp $-1
    vm.setMemorySlot({ slot: 0, guestAddress: 0n, size: SLOT_SIZE, hostAddress: ram.address, readonly: false });
    const vcpu = vm.createVcpu(0);
    try {
      const s = vcpu.getSpecialRegisters();
      s.cs = flat(0xb, 0x08);
      s.ds = s.es = s.fs = s.gs = s.ss = flat(0x3, 0x10);
      s.cr3 = BigInt(PAGE_DIRECTORY);
      s.cr4 = CR4_PSE;
      s.cr0 = CR0_PE | CR0_ET | CR0_PG;
      s.efer = 0n;
      vcpu.setSpecialRegisters(s);
      const r = vcpu.getRegisters();
      r.rip = BigInt(CODE_LINEAR);
      r.rflags = 2n;
      vcpu.setRegisters(r);
      for (let i = 0; i < MAX_RUNS; i++) {
        const rc = sys.ioctlRaw(vcpu.fd, IOCTL.RUN);
        if (rc < 0) return `KVM_RUN failed (errno ${-rc})`;
        const reason = vcpu.runView.getUint32(RUN.exitReason, true);
        if (reason === EXIT.IO) {
          const port = vcpu.runView.getUint16(RUN.ioPort, true);
          const value = vcpu.runBytes[Number(vcpu.runView.getBigUint64(RUN.ioDataOffset, true))];
          return port === PROBE_PORT && value === PROBE_VALUE ? undefined : `the paging guest wrote ${value} to port ${port}`;
        }
        if (reason === EXIT.SHUTDOWN) return 'a guest with paging on triple-faulted';
        if (reason === EXIT.FAIL_ENTRY) return 'KVM refused to enter a guest with paging on (FAIL_ENTRY)';
        if (reason === EXIT.INTERNAL_ERROR) return `KVM internal error (suberror ${vcpu.runView.getUint32(RUN.internalSuberror, true)}) running a guest with paging on`;
        if (reason !== EXIT.INTR) return `a guest with paging on stopped with exit reason ${reason} before its first instruction's effect`;
      }
      return `a guest with paging on made no progress in ${MAX_RUNS} runs`;
    } finally {
      vcpu.close();
    }
  } finally {
    vm.close();
  }
}

let cached: KvmProbe | undefined;

/** Probes /dev/kvm once per process (a VM, a vCPU and a short paging guest). */
export function probeKvm(path = '/dev/kvm'): KvmProbe {
  if (cached !== undefined && path === '/dev/kvm') return cached;
  let result: KvmProbe;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    result = { kind: 'absent', why: `${path}: ${(err as NodeJS.ErrnoException).code ?? describe(err)}` };
    if (path === '/dev/kvm') cached = result;
    return result;
  }
  let kvm: Kvm | undefined;
  try {
    const sys = loadSys();
    kvm = new Kvm(sys, path);
    try {
      const vm = kvm.createVm();
      vm.createVcpu(0).close();
      vm.close();
    } catch (err) {
      result = { kind: 'no-vm', why: `${path} cannot create a VM: ${describe(err)}` };
      if (path === '/dev/kvm') cached = result;
      return result;
    }
    const why = runPagingGuest(sys, kvm);
    result = why === undefined ? { kind: 'paging' } : { kind: 'no-paging', why: `${path} cannot run a paging guest: ${why}` };
  } catch (err) {
    result = { kind: 'no-vm', why: `${path}: ${describe(err)}` };
  } finally {
    kvm?.close();
  }
  if (path === '/dev/kvm') cached = result;
  return result;
}
