import { spawnSync } from 'node:child_process';
import { haveFirmware } from '../../src/host/firmware/locate.js';
import type { TestContext } from 'node:test';

/**
 * Tests that need an outside tool (lspci, iasl, qemu) or /dev/kvm call these. When the
 * thing is missing the test is skipped with one printed line saying what and why: it never
 * passes silently.
 */
export function haveCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function skipUnlessCommand(t: TestContext, name: string, pkg: string): boolean {
  if (haveCommand(name)) return true;
  const why = `SKIPPED (no ${name}; install Debian package ${pkg} or run scripts/setup.sh): ${t.name}`;
  process.stdout.write(why + '\n');
  t.skip(why);
  return false;
}

/**
 * The firmware a boot through SeaBIOS and GRUB needs (Debian seabios, qemu-system-data's
 * linuxboot ROM, grub-pc-bin's lnxboot.img and grub-mkimage); `grub: false` asks only for the
 * linuxboot ROM a direct kernel boot uses.
 */
export function skipUnlessBootFirmware(t: TestContext, grub = true): boolean {
  const need: string[] = (grub ? (['seabios', 'linuxbootDma', 'lnxboot'] as const) : (['linuxbootDma'] as const)).filter((f) => !haveFirmware(f));
  if (grub && !haveCommand('grub-mkimage')) need.push('grub-mkimage');
  if (need.length === 0) return true;
  const line = `SKIPPED (firmware or grub-mkimage missing: ${need.join(', ')}; run scripts/setup.sh): ${t.name}`;
  process.stdout.write(line + '\n');
  t.skip(line);
  return false;
}
