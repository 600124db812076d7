/** struct kvm_cpuid2 and its entries: what KVM supports and what a vCPU is given. */
import type { CpuidEntry } from '../../hw/cpu/cpuid.js';
import { CPUID2, CPUID_ENTRY2, SIZE } from './abi.js';

export type { CpuidEntry };

export function decodeCpuid(view: DataView): CpuidEntry[] {
  const n = view.getUint32(CPUID2.nent, true);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = SIZE.cpuid2Header + i * SIZE.cpuidEntry2;
    out.push({
      function: view.getUint32(o + CPUID_ENTRY2.function, true),
      index: view.getUint32(o + CPUID_ENTRY2.index, true),
      flags: view.getUint32(o + CPUID_ENTRY2.flags, true),
      eax: view.getUint32(o + CPUID_ENTRY2.eax, true),
      ebx: view.getUint32(o + CPUID_ENTRY2.ebx, true),
      ecx: view.getUint32(o + CPUID_ENTRY2.ecx, true),
      edx: view.getUint32(o + CPUID_ENTRY2.edx, true),
    });
  }
  return out;
}

export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const buf = new Uint8Array(SIZE.cpuid2Header + entries.length * SIZE.cpuidEntry2);
  const view = new DataView(buf.buffer);
  view.setUint32(CPUID2.nent, entries.length, true);
  entries.forEach((e, i) => {
    const o = SIZE.cpuid2Header + i * SIZE.cpuidEntry2;
    view.setUint32(o + CPUID_ENTRY2.function, e.function, true);
    view.setUint32(o + CPUID_ENTRY2.index, e.index, true);
    view.setUint32(o + CPUID_ENTRY2.flags, e.flags, true);
    view.setUint32(o + CPUID_ENTRY2.eax, e.eax >>> 0, true);
    view.setUint32(o + CPUID_ENTRY2.ebx, e.ebx >>> 0, true);
    view.setUint32(o + CPUID_ENTRY2.ecx, e.ecx >>> 0, true);
    view.setUint32(o + CPUID_ENTRY2.edx, e.edx >>> 0, true);
  });
  return buf;
}
