import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { chooseLabAccel, LAB_DEFAULTS, LAB_DEVICE_MODELS, runLab, type LabAccel, type LabIommu } from '../host/lab/index.js';
import { probeKvm } from '../vmm/kvm/probe.js';
import { MAX_CPUS } from '../hw/cpu/topology.js';
import { MAX_TIMEOUT_S } from '../plan/machine.js';
import { formatSize, parseSize } from '../util/format.js';
import { setExitStatus } from './output.js';

/**
 * Where a guest runs on this machine: on /dev/kvm directly, or in a lab host because /dev/kvm
 * is missing, cannot make a VM, or cannot run the paging kernel the guest needs.
 * HVMPT_KVM=lab forces the lab (to exercise it where /dev/kvm works), HVMPT_KVM=direct forbids
 * it; inside a lab host (HVMPT_LAB=1) it is always direct: a lab never starts another.
 */
export type KvmRoute = { readonly lab: false } | { readonly lab: true; readonly why: string };

export function kvmRoute(needsPaging: boolean): KvmRoute {
  const env = process.env['HVMPT_KVM'];
  if (env !== undefined && env !== '' && env !== 'lab' && env !== 'direct' && env !== 'auto') {
    throw new UsageError(`'${env}' is not lab, direct or auto`, { input: 'HVMPT_KVM' });
  }
  if (process.env['HVMPT_LAB'] === '1' || env === 'direct') return { lab: false };
  if (env === 'lab') return { lab: true, why: 'HVMPT_KVM=lab' };
  const probe = probeKvm();
  if (probe.kind === 'absent' || probe.kind === 'no-vm') return { lab: true, why: probe.why };
  if (probe.kind === 'no-paging' && needsPaging) return { lab: true, why: `${probe.why}, and this guest runs a paging kernel` };
  return { lab: false };
}

/** The lab host's accelerator for this machine: KVM where /dev/kvm runs paging guests and nests, TCG otherwise. */
export function labAccel(): LabAccel {
  const probe = probeKvm();
  return chooseLabAccel(probe.kind === 'paging' ? { paging: true } : { paging: false, why: probe.why });
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** QEMU -m from a size the user wrote (2G, 1536M, 0x80000000). */
export function labMemory(text: string, input = '--memory'): string {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes % (1n << 20n) !== 0n) throw new UsageError(`'${text}' is not a size in whole MiB (512M, 2G)`, { input });
  if (bytes < 256n << 20n) throw new UsageError(`${text} is too little for the lab host (at least 256M)`, { input });
  return formatSize(bytes);
}

function positive(text: string, input: string, integer: boolean, max: number, unit = ''): number {
  const n = Number(text);
  if (!(n > 0 && n <= max) || (integer && !Number.isInteger(n))) throw new UsageError(`'${text}' is not a positive ${integer ? 'whole number' : 'number'}${unit} up to ${max}`, { input });
  return n;
}

interface LabCliOptions {
  iommu: LabIommu;
  device: string[];
  memory: string;
  cpus: string;
  append: string[];
  timeout?: string;
}

export function registerLab(program: Command): void {
  program
    .command('lab')
    .summary('run a command in a disposable lab host (QEMU) with the IOMMU and PCI devices asked for')
    .description(
      'Boot a disposable lab host under QEMU (q35; KVM where /dev/kvm runs paging guests and nests, TCG -cpu max otherwise, ' +
        "there with QEMU from Debian's backports when scripts/setup.sh fetched it, HVMPT_LAB_QEMU=system or a path to choose; " +
        "Debian's kernel with kvm, vfio, vfio-pci, uio_pci_generic and the virtio modules), share this machine's root with it " +
        'read-only, and run COMMAND there at the current directory: /dev/kvm works inside, /tmp, /var/tmp and $TMPDIR are ' +
        "writable (writes stay in the lab), the command's stdout and stderr stream back, and hvmpt exits with its status. " +
        'Each device\'s PCI address, read from the lab host\'s sysfs, goes to stderr; inside, $HVMPT_LAB_PCI lists them in order ' +
        'and $HVMPT_LAB_PEER names the lab host\'s own e1000e on the hub, $HVMPT_LAB_PEER_ADDR its link-local address. See docs/lab.md.',
    )
    .addOption(new Option('--iommu <kind>', 'the lab host\'s IOMMU: intel (intel-iommu with interrupt remapping, intel_iommu=on), amd (amd-iommu), none').choices(['intel', 'amd', 'none']).default(LAB_DEFAULTS.iommu))
    .option(
      '--device <spec>',
      `a PCI device of the lab host, MODEL[:IMAGE][,KEY=VALUE]...: ${LAB_DEVICE_MODELS.join(', ')}; ` +
        'nvme:IMAGE and virtio-blk:IMAGE write to a copy-on-write overlay, never IMAGE; e1000e joins a hub with the lab host\'s own e1000e; ' +
        'keys id=NAME, bus=NAME (pcie.0 or an earlier port or bridge), addr=SLOT[.FN], or any QEMU property; repeatable',
      collect,
      [],
    )
    .option('--memory <size>', "the lab host's RAM", LAB_DEFAULTS.memory)
    .option('--cpus <n>', "the lab host's CPUs", String(LAB_DEFAULTS.cpus))
    .option('--append <params>', 'kernel parameters for the lab host (e.g. a memmap=SIZE$START carve); repeatable', collect, [])
    .option('--timeout <seconds>', 'stop the command after this long (counted from when the lab host is up)')
    .argument('<command...>', 'the command, after --: one argument is a shell command line, several are run as they are')
    .action(async (command: string[], opts: LabCliOptions) => {
      const run = await runLab({
        command,
        accel: labAccel(),
        iommu: opts.iommu,
        devices: opts.device,
        memory: labMemory(opts.memory),
        cpus: positive(opts.cpus, '--cpus', true, MAX_CPUS),
        append: opts.append.flatMap((a) => a.split(/\s+/).filter((p) => p !== '')),
        ...(opts.timeout === undefined ? {} : { timeoutS: positive(opts.timeout, '--timeout', false, MAX_TIMEOUT_S, ' of seconds') }),
      });
      process.stderr.write(`hvmpt lab: up in ${(run.bootMs / 1000).toFixed(1)} s; the command exited ${run.status} after ${(run.commandMs / 1000).toFixed(1)} s\n`);
      setExitStatus(run.status);
    });
}
