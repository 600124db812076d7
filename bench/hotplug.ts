import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInitrd, ensureDebianKernel } from '../src/host/guest/index.js';

/**
 * `npm run bench -- hotplug [--rounds N]`
 *
 * One lab host with an Intel IOMMU and an e1000e on the hub with the lab's own (hvmpt lab).
 * The same Debian kernel and initrd boot twice inside it with no NIC, on hvmpt's monitor
 * (`hvmpt run --control`, ACPI PCI hot-plug of the PIIX4 kind) and under
 * `qemu-system-x86_64 -accel kvm -machine pc` (QEMU's own PIIX4 hot-plug, QMP). Each round
 * hot-plugs the lab host's e1000e into the guest and takes it back (bench/hotplug-driver.ts):
 *
 * - `hotplug_attach_ms`: from the request to the guest's e1000e driver bound (its console says so);
 * - `hotplug_detach_ms`: from the request to the lab host's e1000e bound again.
 *
 * Medians of the rounds; figures from a nested lab are relative: compare the two in one run.
 */
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '..', '..');

function arg(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

const GUEST = (rounds: number): string => `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
echo @@ready
for r in $(seq ${rounds}); do
  for i in $(seq 20000); do nic=$(find_dev 0x8086:0x10d3); [ -n "$nic" ] && [ -d "$nic/net" ] && break; sleep 0.02; done
  echo "@@nic-bound $r"
  for i in $(seq 20000); do [ -z "$(find_dev 0x8086:0x10d3)" ] && break; sleep 0.02; done
  echo "@@nic-gone $r"
done
`;

const median = (v: readonly number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? NaN;

export async function main(args: readonly string[]): Promise<void> {
  const rounds = arg(args, '--rounds', 5);
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-bench-hotplug-'));
  try {
    const kernel = ensureDebianKernel();
    writeFileSync(join(work, 'guest.cpio'), buildInitrd({ script: GUEST(rounds), kernel, modules: ['e1000e'] }));
    const cmdline = 'console=ttyS0 panic=-1 loglevel=3';
    writeFileSync(join(work, 'plan.yaml'), `memory: { size: 256M }\npci:\n  hotplug: true\nmachine:\n  boot: { kind: linux, kernel: ${kernel.vmlinuz}, initrd: guest.cpio, cmdline: "${cmdline}" }\n  timeout: 3000\n`);
    const D = `node ${join(REPO, 'dist/bench/hotplug-driver.js')}`;
    const script = `
set -u
cd ${work}
set -- $HVMPT_LAB_PCI
${D} hvmpt $1 ${rounds} ${join(REPO, 'dist/hvmpt.mjs')} plan.yaml /tmp/hvmpt-bench.sock 2>&1
${D} qemu $1 ${rounds} -accel kvm -machine pc -cpu host -m 256M -nodefaults -no-reboot -display none -serial stdio -kernel ${kernel.vmlinuz} -initrd guest.cpio -append '${cmdline}' 2>&1
`;
    const lab = spawnSync(
      process.execPath,
      [join(REPO, 'dist/hvmpt.mjs'), 'lab', '--iommu', 'intel', '--memory', '3G', '--device', 'e1000e', '--timeout', '3600', '--', script],
      { encoding: 'utf8', maxBuffer: 256 << 20, cwd: work },
    );
    const out = lab.stdout;
    const figures = (who: string, what: string): number[] => [...out.matchAll(new RegExp(`^${who} ${what} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
    const rows = ['hvmpt', 'qemu'].map((who) => ({ who, attach: figures(who, 'attach_ms'), detach: figures(who, 'detach_ms') }));
    for (const r of rows) {
      if (r.attach.length !== rounds || r.detach.length !== rounds) throw new Error(`${r.who}: ${r.attach.length} of ${rounds} rounds ran (lab status ${lab.status}):\n${lab.stderr.slice(-2000)}\n${out.slice(-3000)}`);
    }
    const [h, q] = rows as [(typeof rows)[0], (typeof rows)[0]];
    const labLine = /^hvmpt lab: (TCG|KVM)[^:]*/m.exec(lab.stderr)?.[0] ?? 'hvmpt lab';
    process.stdout.write(`# ${labLine}; ${rounds} rounds each, medians; figures are relative (nested)\n`);
    process.stdout.write(`hotplug_attach_ms_hvmpt: ${median(h.attach)}\nhotplug_attach_ms_qemu: ${median(q.attach)}\nhotplug_attach_ratio: ${(median(h.attach) / median(q.attach)).toFixed(2)} (lower is better)\n`);
    process.stdout.write(`hotplug_detach_ms_hvmpt: ${median(h.detach)}\nhotplug_detach_ms_qemu: ${median(q.detach)}\nhotplug_detach_ratio: ${(median(h.detach) / median(q.detach)).toFixed(2)} (lower is better)\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
