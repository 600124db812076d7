import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';

/** One thing hvmpt can use on this machine, and whether it is here. */
export interface EnvironmentCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was found, or what to do about its absence. */
  readonly detail: string;
  /** What needs it, so a missing item can be judged. */
  readonly neededFor: string;
}

function commandPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function tool(name: string, pkg: string, neededFor: string): EnvironmentCheck {
  const path = commandPath(name);
  return { name, ok: path !== undefined, detail: path ?? `not found (Debian package ${pkg})`, neededFor };
}

function file(name: string, path: string, pkg: string, neededFor: string): EnvironmentCheck {
  const ok = existsSync(path);
  return { name, ok, detail: ok ? path : `${path} not found (Debian package ${pkg})`, neededFor };
}

function kvm(): EnvironmentCheck {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return { name: '/dev/kvm', ok: true, detail: 'readable and writable', neededFor: 'hvmpt run (the monitor)' };
  } catch (err) {
    return {
      name: '/dev/kvm',
      ok: false,
      detail: `not usable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      neededFor: 'hvmpt run (the monitor)',
    };
  }
}

function iommu(): EnvironmentCheck {
  let groups = 0;
  try {
    groups = readdirSync('/sys/kernel/iommu_groups').length;
  } catch {
    groups = 0;
  }
  return {
    name: 'IOMMU',
    ok: groups > 0,
    detail: groups > 0 ? `${groups} IOMMU groups` : 'no IOMMU groups: pass-through needs the identity (1:1) layout',
    neededFor: 'VFIO pass-through',
  };
}

/** Reads the machine; never writes anything. */
export function checkEnvironment(): EnvironmentCheck[] {
  return [
    kvm(),
    iommu(),
    tool('qemu-system-x86_64', 'qemu-system-x86', 'Linux guest tests, exports, benchmarks'),
    tool('lspci', 'pciutils', 'checking PCI dumps (lspci -F)'),
    tool('iasl', 'acpica-tools', 'checking ACPI tables'),
    tool('virt-xml-validate', 'libvirt-clients', 'checking libvirt exports'),
    file('libxlutil', '/usr/include/libxlutil.h', 'libxen-dev', 'checking Xen exports with Xen\'s own parser'),
    tool('chromium', 'chromium', 'checking the HTML report'),
    file('SeaBIOS', '/usr/share/seabios/bios-256k.bin', 'seabios', 'booting guests on the monitor'),
    file('GRUB i386-pc', '/usr/lib/grub/i386-pc/lnxboot.img', 'grub-pc-bin', 'the firmware-level end-to-end test'),
  ];
}
