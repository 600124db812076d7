/**
 * Before a guest runs in identity RAM: the live host must really have the carve (booted with
 * its memmap=, the range Reserved and not System RAM in /proc/iomem), and no other guest may
 * hold the range (a lock file per range). Every refusal names the kernel parameter to add.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { parseIomem, reservedCovers, systemRamIn } from '../../hw/mem/iomem.js';
import { escapeForGrubCfg, reservedByCmdline } from '../../hw/mem/kernel-params.js';
import { formatRange, subtractRanges, type AddressRange } from '../../hw/mem/range.js';
import { processAlive } from '../process-alive.js';

/** The live host cannot give this guest its identity RAM. */
export class IdentityHostError extends HvmptError {}

export interface IdentityHostOptions {
  readonly procRoot?: string;
  /** Where the per-range lock files live (default $HVMPT_LOCK_DIR, else /run/lock/hvmpt). */
  readonly lockDir?: string;
}

export interface IdentityClaim {
  /** Lock files held, one per range. */
  readonly locks: readonly string[];
  release(): void;
}

export function identityLockDir(options: IdentityHostOptions = {}): string {
  return options.lockDir ?? process.env['HVMPT_LOCK_DIR'] ?? '/run/lock/hvmpt';
}

const hex = (v: bigint): string => '0x' + v.toString(16);

/**
 * Checks the host and takes the lock of every range; throws one IdentityHostError listing every
 * problem. `kernelParams` is the carve as the plan computed it (`memmap=SIZE$START`).
 */
export function claimIdentityRanges(ranges: readonly AddressRange[], kernelParams: readonly string[], options: IdentityHostOptions = {}): IdentityClaim {
  const proc = options.procRoot ?? '/proc';
  const problems: string[] = [];
  const params = kernelParams.join(' ');
  const add = `add ${params} to the host kernel's command line (in grub.cfg: ${kernelParams.map(escapeForGrubCfg).join(' ')}) and reboot`;
  const cmdline = readFileSync(join(proc, 'cmdline'), 'utf8');
  const missing = subtractRanges(ranges, reservedByCmdline(cmdline));
  if (missing.length > 0) problems.push(`the host was not booted with the carve: its command line reserves no ${missing.map(formatRange).join(', ')} with memmap=; ${add}`);
  const iomem = parseIomem(readFileSync(join(proc, 'iomem'), 'utf8'));
  if (iomem === undefined) problems.push(`${join(proc, 'iomem')} shows no addresses (read as a non-root user): hvmpt must run as root to map identity RAM`);
  else {
    for (const r of ranges) {
      const ram = systemRamIn(iomem, r);
      if (ram.length > 0) problems.push(`${formatRange(r)} is System RAM in /proc/iomem (${ram.map((e) => formatRange(e)).join(', ')}): the host kernel uses it, so no guest may have it; ${add}`);
      else if (!reservedCovers(iomem, r)) problems.push(`${formatRange(r)} is not Reserved in /proc/iomem: ${add}`);
    }
  }
  if (problems.length > 0) throw new IdentityHostError(problems.join('; '), { input: 'identity RAM' });

  const dir = identityLockDir(options);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const locks: string[] = [];
  const release = (): void => {
    for (const l of locks.splice(0)) {
      try {
        unlinkSync(l);
      } catch {
        // Already gone: nothing to release.
      }
    }
  };
  try {
    for (const r of ranges) {
      const file = join(dir, `identity-${hex(r.start)}-${hex(r.end)}.lock`);
      for (let attempt = 0; ; attempt++) {
        try {
          const fd = openSync(file, 'wx', 0o644);
          writeSync(fd, `${process.pid}\n`);
          closeSync(fd);
          locks.push(file);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          let pid = NaN;
          try {
            pid = Number(readFileSync(file, 'utf8').trim());
          } catch {
            // Removed meanwhile: try again.
          }
          if (processAlive(pid)) {
            throw new IdentityHostError(`identity RAM ${formatRange(r)} is held by another guest (hvmpt process ${pid}, lock ${file}): one range, one guest`, { input: 'identity RAM' });
          }
          // A lock its process left behind when it died.
          if (attempt > 0) throw new IdentityHostError(`cannot take the lock ${file}`, { input: 'identity RAM' });
          try {
            unlinkSync(file);
          } catch {
            // Someone else cleared it.
          }
        }
      }
    }
  } catch (err) {
    release();
    throw err;
  }
  process.once('exit', release);
  return { locks, release };
}
