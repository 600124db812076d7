/**
 * What a guest CPU reports through CPUID: the leaves KVM supports, adjusted per vCPU the way
 * QEMU adjusts them for `-cpu host` on KVM — the hypervisor bit (without it Linux looks for no
 * hypervisor: no kvm-clock, and its PMU probe fails loudly), the TSC-deadline timer the
 * in-kernel LAPIC emulates, and the topology: each vCPU's APIC ID and how many logical
 * processors share its package and caches.
 */
import { cpuTopology, type CpuTopology } from './topology.js';

/** One CPUID leaf (function, index) as KVM's struct kvm_cpuid_entry2 holds it. */
export interface CpuidEntry {
  readonly function: number;
  readonly index: number;
  readonly flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** Bits the guest sees that KVM's list leaves to user space to set. */
export const CPUID_BIT = {
  /** Leaf 1 ECX: running under a hypervisor (Linux then reads the 0x4000_0000 leaves). */
  hypervisor: 1 << 31,
  /** Leaf 1 ECX: the LAPIC timer has TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER). */
  tscDeadline: 1 << 24,
  /** Leaf 1 EDX: more than one logical processor per package (EBX[23:16] is meaningful). */
  htt: 1 << 28,
  /** Leaf 0x8000_0001 ECX (AMD): the package's cores are reported through 0x8000_0008. */
  cmpLegacy: 1 << 1,
} as const;

/** KVM's paravirtual leaves: signature and features (kvm-clock, PV EOI, ...). */
export const KVM_CPUID_SIGNATURE = 0x4000_0000;
export const KVM_CPUID_FEATURES = 0x4000_0001;

export interface GuestCpuidOptions {
  /** Which vCPU (0 is the boot processor). */
  readonly index: number;
  /** How many vCPUs the machine has. */
  readonly cpus: number;
  /** KVM can emulate the LAPIC's TSC-deadline mode (needs the in-kernel irqchip). */
  readonly tscDeadline: boolean;
}

type Vendor = 'intel' | 'amd' | 'other';

function vendorOf(entries: readonly CpuidEntry[]): Vendor {
  const leaf0 = entries.find((e) => e.function === 0);
  if (leaf0 === undefined) return 'other';
  // "Genu" / "Auth" in EBX, little-endian.
  if (leaf0.ebx === 0x756e_6547) return 'intel';
  if (leaf0.ebx === 0x6874_7541) return 'amd';
  return 'other';
}

/** A leaf-4 / 0x8000_001D cache descriptor's "logical processors sharing this cache" for the topology. */
function sharingCache(eax: number, topo: CpuTopology): number {
  const level = (eax >>> 5) & 7;
  return level >= 3 ? topo.logicalPerPackage : topo.threadsPerCore;
}

/**
 * The CPUID list for one vCPU: `supported` (KVM_GET_SUPPORTED_CPUID) with the per-vCPU and
 * user-space fields set. Leaves KVM does not list stay absent.
 */
export function guestCpuid(supported: readonly CpuidEntry[], o: GuestCpuidOptions): CpuidEntry[] {
  const topo = cpuTopology(o.cpus);
  const apicId = topo.apicIds[o.index];
  if (apicId === undefined) throw new RangeError(`vCPU ${o.index} of ${o.cpus}`);
  const vendor = vendorOf(supported);
  const out = supported.filter((e) => !TOPOLOGY_LEAVES.has(e.function)).map((e) => ({ ...e }));
  // The extended topology leaves are rebuilt whole: KVM lists only the sub-leaves the host's
  // own topology has (this lab's CPU: one, marked invalid), and a guest missing the core level
  // would take every vCPU for a package of its own.
  for (const leaf of TOPOLOGY_LEAVES) {
    const flags = supported.find((e) => e.function === leaf)?.flags;
    if (flags === undefined) continue;
    for (let index = 0; index < 3; index++) out.push({ function: leaf, index, flags, ...extendedTopologyLevel(index, apicId, topo) });
  }
  for (const e of out) {
    switch (e.function) {
      case 1:
        e.ebx = ((e.ebx & 0xffff) | ((topo.logicalPerPackage & 0xff) << 16) | ((apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | CPUID_BIT.hypervisor | (o.tscDeadline ? CPUID_BIT.tscDeadline : 0)) >>> 0;
        e.edx = topo.logicalPerPackage > 1 ? (e.edx | CPUID_BIT.htt) >>> 0 : (e.edx & ~CPUID_BIT.htt) >>> 0;
        break;
      case 4:
        // Deterministic cache parameters: cores per package in EAX[31:26], sharing in [25:14].
        if ((e.eax & 0x1f) !== 0) {
          e.eax = ((e.eax & 0x3fff) | ((sharingCache(e.eax, topo) - 1) << 14) | ((topo.coresPerPackage - 1) << 26)) >>> 0;
        }
        break;
      case 0x8000_0001:
        if (vendor === 'amd') e.ecx = topo.logicalPerPackage > 1 ? (e.ecx | CPUID_BIT.cmpLegacy) >>> 0 : (e.ecx & ~CPUID_BIT.cmpLegacy) >>> 0;
        break;
      case 0x8000_0008:
        // AMD: NC (logical processors per package - 1) and the APIC ID bits they take.
        if (vendor === 'amd') e.ecx = ((e.ecx & ~0xf0ff) | ((topo.logicalPerPackage - 1) & 0xff) | (topo.packageShift << 12)) >>> 0;
        break;
      case 0x8000_001d:
        if ((e.eax & 0x1f) !== 0) e.eax = ((e.eax & ~(0xfff << 14)) | ((sharingCache(e.eax, topo) - 1) << 14)) >>> 0;
        break;
      case 0x8000_001e:
        // AMD topology extension: extended APIC ID, core ID and threads per core, node 0 of 1.
        e.eax = apicId;
        e.ebx = (o.index % topo.coresPerPackage) | ((topo.threadsPerCore - 1) << 8);
        e.ecx = 0;
        e.edx = 0;
        break;
    }
  }
  return out;
}

/** Leaves 0xB and 0x1F: x2APIC ID and the levels of the topology, one sub-leaf each. */
const TOPOLOGY_LEAVES = new Set([0xb, 0x1f]);

/** Leaf 0xB/0x1F sub-leaf `index`: SMT level, core level, then invalid levels; EDX is the x2APIC ID. */
function extendedTopologyLevel(index: number, apicId: number, topo: CpuTopology): Pick<CpuidEntry, 'eax' | 'ebx' | 'ecx' | 'edx'> {
  if (index === 0) return { eax: topo.threadShift, ebx: topo.threadsPerCore, ecx: (1 << 8) | 0, edx: apicId };
  if (index === 1) return { eax: topo.packageShift, ebx: topo.logicalPerPackage, ecx: (2 << 8) | 1, edx: apicId };
  return { eax: 0, ebx: 0, ecx: index & 0xff, edx: apicId };
}
