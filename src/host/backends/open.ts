/**
 * Opening a plan's passthrough devices for a run, in the main thread: every check first (the
 * driver bound, the IOMMU group, what the host needs for itself), then the back-ends opened
 * and described. Nothing is opened when any device is refused, and every refusal says what to
 * do about it.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HvmptError } from '../../errors.js';
import type { DeviceDescription, ResetMethod } from '../../hw/pci/backend.js';
import { sysfsName, type HostFunction } from '../../hw/pci/host-function.js';
import { parseOptionRom, romMismatch } from '../../hw/pci/option-rom.js';
import type { Sys } from '../../native/sys.js';
import type { Plan } from '../../plan/schema.js';
import type { OpenedDevice, PassthroughInput, PlatformInputs } from '../../platform/inputs.js';
import { hostUses, type HostUse } from '../pci/host-use.js';
import { openUio } from '../uio/open.js';
import { PCI_REGION } from '../vfio/abi.js';
import { VfioContainer, VfioDevice, VfioGroup } from '../vfio/vfio.js';

/** A passthrough device hvmpt will not take, with what to do about it. */
export class PassthroughRefusal extends HvmptError {
  readonly refusals: ReadonlyArray<{ readonly path: string; readonly message: string }>;
  constructor(planFile: string, refusals: ReadonlyArray<{ path: string; message: string }>) {
    super(refusals.map((r) => `${r.path}: ${r.message}`).join('; '), { input: planFile });
    this.refusals = refusals;
  }
}

/** The driver each back-end needs the device bound to. */
const DRIVER: Record<string, string> = { vfio: 'vfio-pci', 'vfio-noiommu': 'vfio-pci', uio: 'uio_pci_generic' };

const RESET_METHODS = new Set<ResetMethod>(['flr', 'af_flr', 'pm', 'bus', 'device_specific', 'acpi']);

function resetMethods(host: HostFunction): ResetMethod[] {
  const known = host.resetMethods.filter((m): m is ResetMethod => RESET_METHODS.has(m as ResetMethod));
  return known.length > 0 ? known : ['none'];
}

export interface OpenOptions {
  readonly sysfsRoot?: string;
  readonly procRoot?: string;
  /** What the host needs for itself (default: read from this machine). */
  readonly hostUses?: readonly HostUse[];
}

/** The checks, with no side effect: one message per problem. */
export function checkPassthrough(plan: Plan, inputs: PlatformInputs, options: OpenOptions = {}): Array<{ path: string; message: string }> {
  const refusals: Array<{ path: string; message: string }> = [];
  const uses = options.hostUses ?? hostUses({ ...(options.sysfsRoot === undefined ? {} : { sysfsRoot: options.sysfsRoot }), ...(options.procRoot === undefined ? {} : { procRoot: options.procRoot }) });
  const entries = plan.pci?.passthrough ?? [];
  const seen = new Map<string, string>();
  entries.forEach((entry, i) => {
    const path = `pci.passthrough[${i}]`;
    const host = inputs.passthrough[i]?.host;
    if (host === undefined) return;
    const name = sysfsName(host.address);
    const other = seen.get(name);
    if (other !== undefined) refusals.push({ path: `${path}.host`, message: `${name} is already passed through by ${other}` });
    seen.set(name, path);
    const want = DRIVER[entry.backend]!;
    if (entry.backend === 'vfio-noiommu' && !existsSync('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode')) {
      refusals.push({ path: `${path}.backend`, message: "this host's kernel has no vfio no-IOMMU mode (CONFIG_VFIO_NOIOMMU is off; Debian's kernel is built without it): use backend: uio in an identity layout" });
      return;
    }
    if (host.driver !== want) {
      refusals.push({
        path: `${path}.host`,
        message: `${name} is ${host.driver === undefined ? 'bound to no driver' : `bound to ${host.driver}`}, not ${want}: run \`hvmpt bind ${name}${entry.backend === 'uio' ? ' --driver uio_pci_generic' : ''}\` first`,
      });
    }
    const group = host.group.length > 0 ? host.group.map((m) => m.address) : [name];
    const needed = uses.filter((u) => group.includes(u.address));
    for (const u of needed) {
      refusals.push({
        path: `${path}.host`,
        message: u.address === name ? `${name} is ${u.use}: the host needs it` : `${name} shares IOMMU group ${host.iommuGroup} with ${u.address}, ${u.use}: the host needs it, so the group cannot go to a guest`,
      });
    }
    if (entry.backend === 'vfio' && needed.length === 0) {
      if (host.iommuGroup === undefined) {
        refusals.push({ path: `${path}.host`, message: `${name} is in no IOMMU group: the host's IOMMU is off (boot with intel_iommu=on or amd_iommu=on) or does not cover it; without one, use an identity layout with backend: uio` });
      } else {
        const mates = host.group.filter((m) => m.address !== name && !m.bridge && m.driver !== undefined && m.driver !== 'vfio-pci' && m.driver !== 'pci-stub');
        if (mates.length > 0) {
          refusals.push({
            path: `${path}.host`,
            message: `IOMMU group ${host.iommuGroup} of ${name} also holds ${mates.map((m) => `${m.address} (bound to ${m.driver})`).join(', ')}: a group goes to one guest whole; bind ${mates.length === 1 ? 'it' : 'them'} too (\`hvmpt bind ${mates.map((m) => m.address).join(' ')}\`)`,
          });
        }
      }
    }
    if (entry.backend === 'uio' && host.capture.bytes[0x3d] === 0) {
      refusals.push({ path: `${path}.host`, message: `${name} has no INTx pin: without an IOMMU hvmpt gives the guest INTx only (MSI would reach the host's own APIC), so this device cannot be passed through with backend: uio` });
    } else if (entry.backend === 'uio' && plan.memory.layout === 'identity') {
      const sharers = intxSharers(options.sysfsRoot ?? '/sys', name);
      if (sharers.length > 0) {
        refusals.push({ path: `${path}.host`, message: `${name}'s INTx line (IRQ ${sharers[0]!.irq}) is shared with ${sharers.map((x) => `${x.address} (${x.driver}, on INTx)`).join(', ')}: identity mode cannot accept a shared INTx line (unbind the other device or move it to MSI)` });
      }
    }
  });
  return refusals;
}

/**
 * Functions on the same host IRQ as `name` whose host driver takes INTx (no MSI vectors in use):
 * uio_pci_generic would have to share the line with them. Functions on uio_pci_generic or
 * vfio-pci mask INTx on the device themselves and do not count.
 */
export function intxSharers(sysfsRoot: string, name: string): Array<{ address: string; driver: string; irq: number }> {
  const devices = join(sysfsRoot, 'bus', 'pci', 'devices');
  const irqOf = (dir: string): number => {
    try {
      return Number(readFileSync(join(dir, 'irq'), 'utf8').trim());
    } catch {
      return 0;
    }
  };
  const irq = irqOf(join(devices, name));
  if (!(irq > 0)) return [];
  const out: Array<{ address: string; driver: string; irq: number }> = [];
  let names: string[];
  try {
    names = readdirSync(devices);
  } catch {
    return [];
  }
  for (const other of names) {
    if (other === name) continue;
    const dir = join(devices, other);
    if (irqOf(dir) !== irq) continue;
    let driver: string;
    try {
      driver = basename(readlinkSync(join(dir, 'driver')));
    } catch {
      continue;
    }
    if (driver === 'uio_pci_generic' || driver === 'vfio-pci' || driver === 'pcieport') continue;
    let msi = 0;
    try {
      msi = readdirSync(join(dir, 'msi_irqs')).length;
    } catch {
      msi = 0;
    }
    if (msi === 0) out.push({ address: other, driver, irq });
  }
  return out;
}

/** What the run holds open; closing releases every device (the kernel resets each on release). */
export interface OpenedPassthrough {
  readonly inputs: PlatformInputs;
  /** Resets every device it can, best effort (a stop, a guest reset). */
  resetAll(): string[];
  close(): void;
}

/** Checks every passthrough device, then opens each through its back-end; nothing is left open on failure. */
export function openPassthrough(sys: Sys, plan: Plan, inputs: PlatformInputs, options: OpenOptions = {}): OpenedPassthrough {
  const entries = plan.pci?.passthrough ?? [];
  if (entries.length === 0) return { inputs, resetAll: () => [], close: () => {} };
  const refusals = checkPassthrough(plan, inputs, options);
  if (refusals.length > 0) throw new PassthroughRefusal(inputs.planFile, refusals);
  const closers: Array<() => void> = [];
  const devices: VfioDevice[] = [];
  let container: VfioContainer | undefined;
  const groups = new Map<number, VfioGroup>();
  const closeAll = (): void => {
    for (const c of closers.splice(0).reverse()) {
      try {
        c();
      } catch {
        // Closing is best effort: the kernel releases whatever is left when the process ends.
      }
    }
  };
  try {
    const opened: PassthroughInput[] = entries.map((entry, i) => {
      const input = inputs.passthrough[i]!;
      const host = input.host;
      const name = sysfsName(host.address);
      if (entry.backend === 'uio') {
        const u = openUio(sys, host, resetMethods(host));
        closers.push(() => u.close());
        return { host, opened: { description: u.description, rom: undefined, handle: u.handle } };
      }
      if (entry.backend !== 'vfio') throw new PassthroughRefusal(inputs.planFile, [{ path: `pci.passthrough[${i}].backend`, message: `backend ${entry.backend} is not available in this build` }]);
      if (container === undefined) {
        const c = VfioContainer.open(sys);
        container = c;
        closers.push(() => c.close());
      }
      let group = groups.get(host.iommuGroup!);
      if (group === undefined) {
        const g = VfioGroup.open(sys, host.iommuGroup!);
        closers.push(() => g.close());
        group = g;
        groups.set(host.iommuGroup!, g);
        const status = g.status();
        if (!status.viable) {
          throw new PassthroughRefusal(inputs.planFile, [{ path: `pci.passthrough[${i}].host`, message: `IOMMU group ${host.iommuGroup} is not viable: every device in it must be bound to vfio-pci (members: ${host.group.map((m) => `${m.address} ${m.driver ?? 'no driver'}`).join(', ')})` }]);
        }
        g.setContainer(container);
        container.setIommu();
      }
      const device = new VfioDevice(sys, name, group.deviceFd(name));
      closers.push(() => device.close());
      devices.push(device);
      device.reset();
      const description: DeviceDescription = {
        backend: 'vfio',
        source: `${name} (vfio-pci, IOMMU group ${host.iommuGroup})`,
        regions: device.regions.filter((r) => r.index <= PCI_REGION.CONFIG).map(({ fdOffset: _o, ...r }) => r),
        interrupts: device.interrupts,
        reset: device.canReset ? resetMethods(host) : ['none'],
      };
      const result: OpenedDevice = { description, rom: deviceRom(device, host), handle: { kind: 'vfio', address: name, container: container.fd, group: group.fd, device: device.fd } };
      return { host, opened: result };
    });
    return {
      inputs: { ...inputs, passthrough: opened },
      resetAll: () => devices.flatMap((d) => (d.reset() === undefined ? [] : [d.address])),
      close: closeAll,
    };
  } catch (err) {
    closeAll();
    throw err;
  }
}

/** The device's own expansion ROM, when it holds a PCI ROM image for this very device. */
function deviceRom(device: VfioDevice, host: HostFunction): Uint8Array | undefined {
  const r = device.region(PCI_REGION.ROM);
  if (r === undefined) return undefined;
  const bytes = device.readAll(r);
  try {
    const rom = parseOptionRom(bytes, `${device.address} ROM`);
    const v = host.capture.bytes;
    if (romMismatch(rom, v[0]! | (v[1]! << 8), v[2]! | (v[3]! << 8)) !== undefined) return undefined;
    return bytes;
  } catch {
    return undefined;
  }
}
