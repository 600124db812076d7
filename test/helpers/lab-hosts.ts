/**
 * Lab hosts with known topologies for the host-facts tests and bench: Debian's kernel under
 * QEMU (q35, TCG) through the guest harness, its "boot disk" an nvme whose ext2 filesystem
 * the collector runs chrooted on (so / really is on the nvme), a default route through an
 * e1000e on a hub that leads nowhere, a VGA device as its console, devices behind a
 * pcie-root-port and behind a conventional pci-bridge, a multi-function device; with an
 * emulated VT-d or without any IOMMU. Inside, the lab collects its facts (as root, as nobody,
 * with --rom), prints its own sysfs view independently of the collector, and then binds
 * uio_pci_generic to the driverless endpoints so Linux itself routes their INTx: the ground
 * truth the analysis on L0 is compared with.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootGuest, buildInitrd, ensureDebianKernel, type GuestRun } from '../../src/host/guest/index.js';
import { collectorScriptPath } from '../../src/host/facts/collector.js';
import { run } from './run.js';

export interface LabHost {
  readonly name: string;
  readonly iommu: boolean;
  /** QEMU's -device arguments: the configuration the analysis must agree with. */
  readonly qemuArgs: readonly string[];
  readonly append: readonly string[];
}

const SHARED = (imagePath: string, out: string): string[] => [
  '-device', 'VGA,addr=0x2',
  '-netdev', 'hubport,id=n0,hubid=0',
  '-device', 'pcie-root-port,id=rp1,chassis=1,slot=1,addr=0x10',
  '-device', 'e1000e,bus=rp1,netdev=n0',
  '-device', 'pcie-root-port,id=rp2,chassis=2,slot=2,addr=0x11',
  '-drive', `file=${imagePath},if=none,id=boot,format=raw,snapshot=on`,
  '-device', 'nvme,bus=rp2,drive=boot,serial=boot',
  '-device', 'pci-bridge,id=br1,chassis_nr=3,addr=0x12',
  '-device', 'edu,bus=br1,addr=0x1',
  '-netdev', 'hubport,id=n1,hubid=0',
  '-device', 'e1000,bus=br1,addr=0x2,netdev=n1',
  '-device', 'edu,addr=0x13.0,multifunction=on',
  '-device', 'edu,addr=0x13.1',
  '-device', 'edu,addr=0x14',
  '-virtfs', `local,path=${out},mount_tag=out,security_model=none`,
];

/** The two lab hosts: the same devices, with VT-d and without an IOMMU. */
export function labHosts(image: string, out: string): LabHost[] {
  return [
    { name: 'q35-iommu', iommu: true, qemuArgs: ['-device', 'intel-iommu,intremap=on', ...SHARED(image, out)], append: ['intel_iommu=on'] },
    { name: 'q35-noiommu', iommu: false, qemuArgs: SHARED(image, out), append: [] },
  ];
}

/** What the test compares the collection with, as the lab host's own sysfs said it, outside the collector. */
export interface LabTruth {
  readonly functions: ReadonlyArray<{ readonly bdf: string; readonly ids: string; readonly group: string; readonly reset: string; readonly driver: string; readonly bootVga: string }>;
  /** After uio_pci_generic took the driverless endpoints: each one's GSI, as Linux routed it (its IO-APIC line in /proc/interrupts). */
  readonly routed: ReadonlyMap<string, number>;
  /** The mount source of / as the lab's busybox mount prints it, and the default route's device. */
  readonly rootSource: string;
  readonly routeDevice: string;
}

export interface LabResult {
  readonly host: LabHost;
  /** The archives: as root, as nobody, and with --rom. */
  readonly root: Uint8Array;
  readonly nobody: Uint8Array;
  readonly rom: Uint8Array;
  readonly truth: LabTruth;
  readonly run: GuestRun;
  /** Seconds the collector took inside the lab host (TCG: slow, a relative figure). */
  readonly collectSeconds: number;
}

/** The boot disk: an ext2 image with busybox, the collector and a passwd naming nobody. */
function bootImage(dir: string): string {
  const root = join(dir, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'out', 'etc']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'cat', 'mkdir', 'rm', 'ls', 'find', 'sed', 'grep', 'tar', 'id', 'date', 'uname', 'gzip', 'su', 'mount', 'time']) symlinkSync('busybox', join(root, 'bin', a));
  copyFileSync(collectorScriptPath(), join(root, 'collect.sh'));
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const image = join(dir, 'boot.img');
  const r = run('mke2fs', ['-q', '-t', 'ext2', '-d', root, image, '32M']);
  if (r.status !== 0) throw new Error(`mke2fs: ${r.stderr}`);
  return image;
}

const SCRIPT = `
ip link set eth0 up
ip route add default dev eth0
i=0; while [ ! -e /dev/nvme0n1 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /newroot
mount /dev/nvme0n1 /newroot
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t 9p -o trans=virtio,version=9p2000.L out /newroot/out
section collect chroot /newroot /bin/time /bin/sh /collect.sh --out /tmp/root.tar
chroot /newroot /bin/su nobody -c '/bin/sh /collect.sh --out /tmp/nobody.tar'
chroot /newroot /bin/sh /collect.sh --rom --out /tmp/rom.tar
cp /newroot/tmp/root.tar /newroot/tmp/nobody.tar /newroot/tmp/rom.tar /newroot/out/
section truth-root chroot /newroot /bin/mount
section truth-route ip route show default
section truth-sysfs sh -c 'for d in /sys/bus/pci/devices/*; do
  g=$(readlink $d/iommu_group); r=$(readlink $d/driver)
  echo "$(basename $d) $(cat $d/vendor):$(cat $d/device) group=\${g##*/} reset=$(cat $d/reset_method 2>/dev/null | tr " " ,) driver=\${r##*/} vga=$(cat $d/boot_vga 2>/dev/null)"
done'
for d in /sys/bus/pci/devices/*; do
  [ -e $d/driver ] && continue
  c=$(cat $d/class); case $c in 0x06*|0x03*) continue ;; esac
  echo uio_pci_generic > $d/driver_override
  echo $(basename $d) > /sys/bus/pci/drivers_probe
done
section truth-irq sh -c 'for d in /sys/bus/pci/devices/*; do r=$(readlink $d/driver); [ "\${r##*/}" = uio_pci_generic ] && echo "$(basename $d) $(cat $d/irq)"; done; cat /proc/interrupts'
`;

const MODULES = ['virtio_pci', '9p', '9pnet_virtio', 'nvme', 'crc32c_generic', 'ext4', 'e1000e', 'e1000', 'uio_pci_generic'];

function parseTruth(r: GuestRun): LabTruth {
  const functions = r
    .section('truth-sysfs')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [bdf, ids, ...kv] = l.trim().split(/\s+/);
      const get = (k: string): string => kv.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
      return { bdf: bdf!, ids: ids!.replace(/0x/g, ''), group: get('group'), reset: get('reset'), driver: get('driver'), bootVga: get('vga') };
    });
  const irqText = r.section('truth-irq');
  const irqOf = new Map<string, number>();
  const lines = irqText.split('\n');
  for (const l of lines) {
    const m = /^(\S{4}:\S{2}:\S{2}\.\d) (\d+)$/.exec(l.trim());
    if (m !== null) irqOf.set(m[1]!, Number(m[2]));
  }
  const routed = new Map<string, number>();
  for (const [bdf, irq] of irqOf) {
    const row = lines.find((l) => new RegExp(`^\\s*${irq}:`).test(l));
    const hw = row === undefined ? undefined : /IO-APIC\s+(\d+)-/.exec(row);
    if (hw !== undefined && hw !== null) routed.set(bdf, Number(hw[1]));
  }
  const rootLine = r.section('truth-root').split('\n').find((l) => / on \/ type /.test(l)) ?? '';
  return { functions, routed, rootSource: rootLine.split(' ')[0] ?? '', routeDevice: /dev (\S+)/.exec(r.section('truth-route'))?.[1] ?? '' };
}

/** Boots one lab host, lets it collect itself and describe itself, and returns both. */
export async function runLabHost(pick: (hosts: LabHost[]) => LabHost): Promise<LabResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-lab-'));
  try {
    const out = join(dir, 'out');
    mkdirSync(out);
    const image = bootImage(dir);
    const host = pick(labHosts(image, out));
    const kernel = ensureDebianKernel();
    const initrd = buildInitrd({ script: SCRIPT, kernel, modules: MODULES });
    // no_timer_check: on a busy machine TCG's timer can miss Linux's early check through the remapped IOAPIC (as the lab does).
    const r = await bootGuest({ initrd, machine: 'q35', memory: '2G', append: ['no_timer_check', ...host.append], qemuArgs: host.qemuArgs, timeoutMs: 600_000 });
    if (r.rc !== 0) throw new Error(`the lab host's script ended with ${r.rc}:\n${r.output.slice(-3000)}`);
    const seconds = /real\s+(\d+)m\s*([\d.]+)s/.exec(r.section('collect'));
    return {
      host,
      root: new Uint8Array(readFileSync(join(out, 'root.tar'))),
      nobody: new Uint8Array(readFileSync(join(out, 'nobody.tar'))),
      rom: new Uint8Array(readFileSync(join(out, 'rom.tar'))),
      truth: parseTruth(r),
      run: r,
      collectSeconds: seconds === null ? NaN : Number(seconds[1]) * 60 + Number(seconds[2]),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
