/**
 * How the lab host itself runs: under KVM where this machine's /dev/kvm runs paging guests and
 * nests (so the lab host gets a /dev/kvm of its own), under QEMU's TCG with `-cpu max`
 * otherwise, whose SVM lets Debian's kernel in the lab host load kvm_amd.
 */
import { readFileSync } from 'node:fs';

/** What the monitor's probe found out about /dev/kvm (src/vmm/kvm/probe.ts). */
export type KvmPaging = { readonly paging: true } | { readonly paging: false; readonly why: string };

export interface LabAccel {
  readonly kind: 'kvm' | 'tcg';
  readonly cpu: 'host' | 'max';
  /** One line for stderr: which, and why. */
  readonly why: string;
}

const NESTED = ['/sys/module/kvm_amd/parameters/nested', '/sys/module/kvm_intel/parameters/nested'];

function nestedParameter(): { file: string; on: boolean } | undefined {
  for (const file of NESTED) {
    try {
      const v = readFileSync(file, 'utf8').trim();
      return { file, on: v === 'Y' || v === '1' };
    } catch {
      // not this vendor's module
    }
  }
  return undefined;
}

export function chooseLabAccel(kvm: KvmPaging): LabAccel {
  const tcg = (why: string): LabAccel => ({ kind: 'tcg', cpu: 'max', why: `TCG (-cpu max): ${why}` });
  if (!kvm.paging) return tcg(kvm.why);
  const nested = nestedParameter();
  if (nested === undefined) return tcg('/dev/kvm runs paging guests, but neither kvm_amd nor kvm_intel says whether it nests, so the lab host might have no /dev/kvm');
  if (!nested.on) return tcg(`/dev/kvm runs paging guests but does not nest (${nested.file} is off), so the lab host would have no /dev/kvm`);
  return { kind: 'kvm', cpu: 'host', why: `KVM (-cpu host): /dev/kvm runs paging guests and nests (${nested.file})` };
}
