import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestCpuid, type CpuidEntry } from '../../src/hw/cpu/cpuid.js';
import { cpuTopology } from '../../src/hw/cpu/topology.js';

/**
 * KVM_GET_SUPPORTED_CPUID as the lab's nested KVM (QEMU TCG `-cpu max`, an AMD model with two
 * host CPUs) answers it, the non-zero leaves: leaf 0xB has one sub-leaf, marked invalid.
 */
const LAB_AMD: readonly CpuidEntry[] = [
  [0x0, 0, 0, 0x0000000d, 0x68747541, 0x444d4163, 0x69746e65],
  [0x1, 0, 0, 0x00060fb1, 0x01020800, 0x76f83203, 0x0f8bfbfd],
  [0x7, 0, 1, 0x00000000, 0x019803ab, 0x0001020c, 0x20000000],
  [0xb, 0, 1, 0x00000000, 0x00000000, 0x00000000, 0x00000001],
  [0x80000000, 0, 0, 0x8000000a, 0x68747541, 0x444d4163, 0x69746e65],
  [0x80000001, 0, 0, 0x00060fb1, 0x00000000, 0x00000077, 0xedd3fbfd],
  [0x80000008, 0, 0, 0x00003928, 0x04000000, 0x00001001, 0x00000000],
  [0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d],
  [0x40000001, 0, 0, 0x01007efb, 0x00000000, 0x00000000, 0x00000000],
].map(([f, index, flags, eax, ebx, ecx, edx]) => ({ function: f!, index: index!, flags: flags!, eax: eax!, ebx: ebx!, ecx: ecx!, edx: edx! }));

const leaf = (entries: readonly CpuidEntry[], f: number, index = 0): CpuidEntry => {
  const e = entries.find((x) => x.function === f && x.index === index);
  assert.ok(e !== undefined, `leaf ${f.toString(16)}.${index}`);
  return e;
};

test('CPUID per vCPU: APIC ID, logical count and HTT in leaf 1, the hypervisor and TSC-deadline bits; KVM leaves kept', () => {
  for (const cpus of [1, 3, 4]) {
    for (let index = 0; index < cpus; index++) {
      const g = guestCpuid(LAB_AMD, { index, cpus, tscDeadline: true });
      const l1 = leaf(g, 1);
      assert.equal(l1.ebx >>> 24, index, 'initial APIC ID');
      assert.equal((l1.ebx >>> 16) & 0xff, cpus, 'logical processors per package');
      assert.equal(l1.ebx & 0xffff, 0x0800, 'brand index and CLFLUSH size kept');
      assert.equal((l1.edx >>> 28) & 1, cpus > 1 ? 1 : 0, 'HTT');
      assert.equal(l1.ecx >>> 31, 1, 'hypervisor');
      assert.equal((l1.ecx >>> 24) & 1, 1, 'TSC deadline');
      assert.equal(l1.eax, 0x00060fb1);
      assert.deepEqual(leaf(g, 0x4000_0001), leaf(LAB_AMD, 0x4000_0001), "KVM's features as KVM gives them");
      // AMD: CmpLegacy, and NC with the APIC ID bits the cores take.
      assert.equal((leaf(g, 0x8000_0001).ecx >>> 1) & 1, cpus > 1 ? 1 : 0);
      const ecx8 = leaf(g, 0x8000_0008).ecx;
      assert.deepEqual([ecx8 & 0xff, (ecx8 >>> 12) & 0xf], [cpus - 1, cpuTopology(cpus).packageShift]);
      // Leaf 0xB rebuilt whole: SMT level (1 thread), core level (all vCPUs), then invalid.
      assert.deepEqual(
        [0, 1, 2].map((i) => { const e = leaf(g, 0xb, i); return [e.eax, e.ebx, e.ecx, e.edx]; }),
        [[0, 1, 0x100, index], [cpuTopology(cpus).packageShift, cpus, 0x201, index], [0, 0, 2, index]],
      );
    }
  }
  assert.equal(leaf(guestCpuid(LAB_AMD, { index: 0, cpus: 1, tscDeadline: false }), 1).ecx & (1 << 24), 0);
  assert.equal(cpuTopology(3).packageShift, 2);
  assert.deepEqual(cpuTopology(3).apicIds, [0, 1, 2]);
});
