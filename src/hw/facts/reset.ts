/**
 * How a function can be reset between users, and what each way costs. The kernel's own list
 * (sysfs `reset_method`, Linux 5.15 and later) is the truth; from config space hvmpt derives
 * the same list the way pci_init_reset_methods does (FLR, Advanced Features FLR, PM D3hot->D0
 * when No_Soft_Reset is clear, a secondary bus reset when the function is alone below its
 * bridge), for older kernels and to explain the kernel's answer.
 */
import type { HostFunction, HostPci } from './host-pci.js';
import { isBridgeHeader } from './hardware.js';

export interface ResetFacts {
  /** The methods, in the order the kernel tries them; [] when there is none. */
  readonly methods: readonly string[];
  /** `kernel`: sysfs reset_method; `derived`: from config space (an older kernel, or none said). */
  readonly source: 'kernel' | 'derived';
  /** What the config space says, when it differs from the kernel's list. */
  readonly derived: readonly string[];
  /** For each method, what it does to this function and to others. */
  readonly consequences: ReadonlyArray<{ readonly method: string; readonly text: string; readonly affects: readonly string[] }>;
}

/** The methods config space supports, in the kernel's order. */
export function derivedResetMethods(pci: HostPci, f: HostFunction): string[] {
  const hw = f.hw;
  if (hw === undefined) return [];
  const out: string[] = [];
  if (hw.flr) out.push('flr');
  if (hw.afFlr) out.push('af_flr');
  if (hw.pm !== undefined && !hw.pm.noSoftReset) out.push('pm');
  if (!pci.onRootBus(f) && !isBridgeHeader(hw) && pci.parent(f) !== undefined && pci.busSiblings(f).length === 0) out.push('bus');
  return out;
}

const WORDS: Readonly<Record<string, string>> = {
  device_specific: 'a reset the kernel knows for this very device (a quirk)',
  acpi: 'the firmware\'s own _RST method',
  flr: 'Function Level Reset: only this function is reset, cleanly',
  af_flr: 'Advanced Features FLR: only this function is reset, cleanly',
  pm: 'a D3hot-to-D0 power cycle: the device declares that it loses its state (No_Soft_Reset clear), though some keep more than they say',
  slot: 'the hot-plug slot\'s power is cycled: everything in the slot is reset',
  cxl_bus: 'a CXL secondary bus reset',
};

export function resetFacts(pci: HostPci, f: HostFunction): ResetFacts {
  const derived = derivedResetMethods(pci, f);
  const kernel = f.facts.resetMethods;
  const methods = kernel ?? derived;
  const source: ResetFacts['source'] = kernel !== undefined ? 'kernel' : 'derived';
  const bridge = pci.parent(f);
  const consequences = methods.map((method) => {
    if (method === 'bus') {
      const others = pci.busSiblings(f);
      const behind = others.flatMap((o) => [o, ...pci.below(o)]);
      return {
        method,
        text:
          `a secondary bus reset from ${bridge?.name ?? 'the bridge above'}: ` +
          (behind.length === 0 ? 'it is alone on that bus, so only it is reset' : `everything on that bus is reset with it (${behind.map((o) => o.name).join(', ')})`),
        affects: behind.map((o) => o.name),
      };
    }
    return { method, text: WORDS[method] ?? `the kernel's "${method}" method`, affects: [] as string[] };
  });
  const same = kernel === undefined || (kernel.length === derived.length && kernel.every((m, i) => m === derived[i]));
  return { methods, source, derived: same ? [] : derived, consequences };
}
