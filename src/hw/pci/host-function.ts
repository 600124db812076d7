/**
 * A function of the host machine as sysfs describes it: what composition needs to place it on
 * the guest's bus (its config space and BAR sizes) and what the run's checks need (its driver,
 * its IOMMU group and who else is in it, how it can be reset). Plain data, read at the edge.
 */
import type { Bdf } from './address.js';
import type { CapturedFunction } from './capture.js';

export interface GroupMember {
  /** `0000:00:03.0`. */
  readonly address: string;
  readonly driver: string | undefined;
  /** PCI bridges may stay with their host driver (pcieport) in a viable group. */
  readonly bridge: boolean;
}

export interface HostFunction {
  readonly address: Bdf;
  /** The sysfs device directory it was read from. */
  readonly sysfs: string;
  /** Config space and BAR sizes (sysfs `config`, `resource`). */
  readonly capture: CapturedFunction;
  /** The driver bound now (the basename of the `driver` link), if any. */
  readonly driver: string | undefined;
  readonly iommuGroup: number | undefined;
  /** Every function in its IOMMU group, itself included, in address order. */
  readonly group: readonly GroupMember[];
  /** sysfs `reset_method`, best first (empty: none, or a kernel without the file). */
  readonly resetMethods: readonly string[];
}

/** `0000:00:03.0`: the sysfs and VFIO spelling. */
export function sysfsName(b: Bdf): string {
  const h = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${h(b.segment, 4)}:${h(b.bus, 2)}:${h(b.device, 2)}.${b.fn}`;
}
