/**
 * The guest's CPU topology: `cpus` vCPUs as the cores of one package, one thread each — what
 * QEMU gives `-smp N` on current machine types, and what desktop operating systems licensed
 * per socket expect. APIC IDs follow the x2APIC topology rules (a core's ID in the low
 * `packageShift` bits); with one package they are 0..cpus-1.
 */
export interface CpuTopology {
  readonly packages: number;
  readonly coresPerPackage: number;
  readonly threadsPerCore: number;
  readonly logicalPerPackage: number;
  /** APIC ID bits below the core ID (0: one thread per core). */
  readonly threadShift: number;
  /** APIC ID bits below the package ID. */
  readonly packageShift: number;
  /** vCPU index → initial APIC ID (KVM's in-kernel LAPIC takes the vCPU ID as its APIC ID). */
  readonly apicIds: readonly number[];
}

/** The most vCPUs a plan may ask for: xAPIC IDs are 8 bits and 0xFF is the broadcast ID. */
export const MAX_CPUS = 255;

const bitsFor = (n: number): number => (n <= 1 ? 0 : 32 - Math.clz32(n - 1));

export function cpuTopology(cpus: number): CpuTopology {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS) throw new RangeError(`${cpus} vCPUs: 1 to ${MAX_CPUS}`);
  const threadShift = 0;
  return {
    packages: 1,
    coresPerPackage: cpus,
    threadsPerCore: 1,
    logicalPerPackage: cpus,
    threadShift,
    packageShift: threadShift + bitsFor(cpus),
    apicIds: Array.from({ length: cpus }, (_, i) => i),
  };
}
