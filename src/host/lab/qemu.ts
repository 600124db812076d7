/**
 * Which QEMU runs the lab host. Under TCG, QEMU from Debian's backports where scripts/lab-qemu.sh
 * fetched it (.cache/lab-qemu): bookworm's own 7.2 leaves a nested lab host asleep or spinning
 * now and then, and 10.0 did not in the same work (docs/lab.md, "Which QEMU runs the lab
 * host"). The system's QEMU otherwise: under KVM (hardware runs the lab host, not TCG), for an
 * AMD IOMMU (10.0's amd-iommu stops the lab's serial interrupts), when none was fetched, and
 * when HVMPT_LAB_QEMU says `system`. HVMPT_LAB_QEMU may also name a binary.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import type { LabAccel } from './accel.js';
import type { LabIommu } from './devices.js';
import { LabError } from './errors.js';

export const SYSTEM_QEMU = 'qemu-system-x86_64';

export interface LabQemu {
  readonly binary: string;
  /** Arguments before the lab's own: the unpacked QEMU's data directories (-L). */
  readonly args: readonly string[];
  /** One line for the lab's log: which QEMU, and why. */
  readonly why: string;
}

export interface LabQemuChoice {
  readonly accel: LabAccel;
  readonly iommu: LabIommu;
  /** HVMPT_LAB_QEMU: `system`, or a binary's path. */
  readonly override?: string | undefined;
  /** Where scripts/lab-qemu.sh unpacks (default .cache/lab-qemu in the checkout). */
  readonly cacheDir?: string;
}

/** The checkout's .cache/lab-qemu; undefined outside a checkout. */
export function labQemuCacheDir(): string | undefined {
  const root = packageRoot(import.meta.url);
  return root === undefined ? undefined : join(root, '.cache', 'lab-qemu');
}

/** QEMU unpacked by scripts/lab-qemu.sh: its binary, data directories and version, if there. */
export function unpackedQemu(cacheDir: string): { binary: string; dataDirs: string[]; version: string; suite: string } | undefined {
  const binary = join(cacheDir, 'root', 'usr', 'bin', SYSTEM_QEMU);
  const versionFile = join(cacheDir, 'version');
  if (!existsSync(binary) || !existsSync(versionFile)) return undefined;
  const [version = '', suite = ''] = readFileSync(versionFile, 'utf8').trim().split('\n');
  // Its own ROMs first, then its SeaBIOS, then the system's (ipxe's option ROMs live there).
  const dataDirs = [join(cacheDir, 'root', 'usr', 'share', 'qemu'), join(cacheDir, 'root', 'usr', 'share', 'seabios'), '/usr/share/qemu'];
  return { binary, dataDirs, version, suite };
}

export function chooseLabQemu(o: LabQemuChoice): LabQemu {
  const system = (why: string): LabQemu => ({ binary: SYSTEM_QEMU, args: [], why: `QEMU: the system's (${why})` });
  const override = o.override?.trim();
  if (override === 'system') return system('HVMPT_LAB_QEMU=system');
  if (override !== undefined && override !== '') {
    try {
      accessSync(override, constants.X_OK);
    } catch {
      throw new LabError(`${override} is not an executable file`, { input: 'HVMPT_LAB_QEMU' });
    }
    return { binary: override, args: [], why: `QEMU: ${override} (HVMPT_LAB_QEMU)` };
  }
  if (o.accel.kind === 'kvm') return system('the lab host runs under KVM');
  if (o.iommu === 'amd') return system("an AMD IOMMU: QEMU 10.0's amd-iommu stops the lab host's serial interrupts");
  const cacheDir = o.cacheDir ?? labQemuCacheDir();
  const unpacked = cacheDir === undefined ? undefined : unpackedQemu(cacheDir);
  if (unpacked === undefined) return system('no QEMU from backports in .cache/lab-qemu: scripts/lab-qemu.sh fetches one');
  return { binary: unpacked.binary, args: unpacked.dataDirs.flatMap((d) => ['-L', d]), why: `QEMU ${unpacked.version} from ${unpacked.suite} (.cache/lab-qemu)` };
}
