/**
 * VFIO pass-through end to end, in one lab host with an Intel IOMMU (hvmpt lab --iommu intel):
 * QEMU's edu, e1000e and nvme are the "real hardware"; `hvmpt bind` gives them to vfio-pci,
 * `hvmpt run` passes them to a probe guest whose own Linux drivers use them (uio_pci_generic
 * and edu-tool for edu, e1000e with MSI-X, nvme), the refusals come first, and `hvmpt unbind`
 * gives each back to its lab-host driver, which must find it working. No device of this machine
 * is touched: everything runs inside the lab.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSeededImage } from '../helpers/images.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { labEnv } from '../lab/lab-env.js';

const IMAGE_BYTES = 64 << 20;
const INTX_CYCLES = 10_000;
const PINGS = 1_000;
/** A guest range reserved with memmap= for the edu DMA round trip (below edu's 28-bit default mask too). */
const DMA_SRC = 0x0400_0000;
const DMA_DST = 0x0408_0000;
/** Outside the guest's 256 MiB: the IOMMU must stop this DMA. */
const DMA_OUTSIDE = 0x3000_0000;

/** `@@pt-begin NAME` … `@@pt-end NAME rc=N` blocks of the lab script's output. */
function sections(out: string): Map<string, { text: string; rc: number }> {
  const m = new Map<string, { text: string; rc: number }>();
  for (const s of out.matchAll(/^@@pt-begin (\S+)\n([\s\S]*?)^@@pt-end \1 rc=(\d+)$/gm)) m.set(s[1]!, { text: s[2]!, rc: Number(s[3]) });
  return m;
}

/** The probe guest's script: each device found by its IDs in the guest's sysfs, then driven by its own driver. */
const GUEST = `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
edu=$(find_dev 0x1234:0x11e8); nic=$(find_dev 0x8086:0x10d3); nvme=$(find_dev 0x1b36:0x0010)
bar=$(head -1 $edu/resource | cut -d' ' -f1)
section edu-devmem sh -c "devmem $bar 32; devmem $(printf 0x%x $((bar + 4))) 32 0x12345678; devmem $(printf 0x%x $((bar + 4))) 32; devmem $(printf 0x%x $((bar + 8))) 32 5; sleep 1; devmem $(printf 0x%x $((bar + 8))) 32"
echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id
section edu-id edu-tool $edu id
section edu-intx edu-tool $edu intx ${INTX_CYCLES}
section edu-dma edu-tool $edu dma ${DMA_SRC} ${DMA_DST} 2048
section edu-fault edu-tool $edu dma-to ${DMA_OUTSIDE} 2048
section edu-alive edu-tool $edu id
eth=$(ls $nic/net); ip link set $eth up
for i in $(seq 300); do [ "$(cat /sys/class/net/$eth/carrier 2>/dev/null)" = 1 ] && break; sleep 0.2; done
section nic-link cat /sys/class/net/$eth/carrier
for i in $(seq 300); do ip -6 addr show dev $eth | grep -v tentative | grep -q "inet6 fe80" && break; sleep 0.2; done
section nic-ping ping6 -c ${PINGS} -A -W 10 -I $eth "@PEER@%$eth"
section nic-msix sh -c "grep -E '$eth' /proc/interrupts; ls $nic/msi_irqs | wc -l"
for i in $(seq 100); do [ -d $nvme/nvme ] && [ -b /dev/$(ls $nvme/nvme)n1 ] && break; sleep 0.2; done
blk=/dev/$(ls $nvme/nvme)n1
section nvme-read sh -c "dd if=$blk bs=1M count=64 2>/dev/null | sha256sum"
section nvme-write sh -c "printf hvmpt-guest-write | dd of=$blk bs=512 seek=100 conv=notrunc,fsync 2>/dev/null; dd if=$blk bs=512 skip=100 count=1 2>/dev/null | head -c 17; echo"
`;

const plan = (passthrough: string, boot = "{ kind: probe, report: false, script: 'true' }"): string =>
  `memory: { size: 256M }\npci:\n  passthrough:\n${passthrough}machine:\n  boot: ${boot}\n  timeout: 3000\n`;

test('VFIO pass-through in a lab with an IOMMU: refusals first; edu, e1000e and nvme driven by the probe guest\'s own drivers; IOMMU faults reported; every device handed back working', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessCommand(t, 'gcc', 'gcc')) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-vfio-lab-'));
  try {
    const tool = join(work, 'edu-tool');
    const cc = run('gcc', ['-O2', '-static', '-o', tool, join(REPO_ROOT, 'tools/guest/c/edu-tool.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    // The nvme's image: random bytes (seeded), its sha256 known here; the lab uses it copy-on-write.
    const image = join(work, 'nvme.img');
    const { bytes, sha256: imageSha } = writeSeededImage(image, IMAGE_BYTES, 0x9e3779b9);
    // The guest writes these bytes at sector 100; the lab host must read them back after the hand-back.
    const written = Uint8Array.from(bytes);
    written.set(new TextEncoder().encode('hvmpt-guest-write'), 100 * 512);
    const writtenSha = createHash('sha256').update(written).digest('hex');
    const vblk = join(work, 'vblk.img');
    writeFileSync(vblk, new Uint8Array(1 << 20));

    const guestBoot = `{ kind: probe, modules: [uio_pci_generic, e1000e, nvme], files: [{ path: bin/edu-tool, file: edu-tool }], cmdline: "memmap=1M$0x${DMA_SRC.toString(16)} memmap=1M$0x${DMA_DST.toString(16)}", script: ${JSON.stringify(GUEST)} }`;
    writeFileSync(join(work, 'all.in'), plan('    - { name: edu, host: "1234:11e8", at: "00:05.0" }\n    - { name: nic, host: "8086:10d3" }\n    - { name: disk, host: "1b36:0010" }\n', guestBoot));
    writeFileSync(join(work, 'missing.yaml'), plan('    - { host: "0000:07:1f.7" }\n'));
    // The second e1000e is the lab host's own, on its e1000e driver.
    writeFileSync(join(work, 'unbound.yaml'), plan('    - { host: "8086:10d3#1" }\n'));
    // The second edu sits behind a PCI bridge with the virtio disk: one IOMMU group.
    writeFileSync(join(work, 'mate.yaml'), plan('    - { host: "1234:11e8#1" }\n'));

    const H = `node ${join(REPO_ROOT, 'dist/hvmpt.mjs')}`;
    const script = `
set -u
cd ${work}
set -- $HVMPT_LAB_PCI
edu=$1 nic=$2 nvme=$3 edu2=$5 vblk=$6
sec() { n=$1; shift; echo "@@pt-begin $n"; "$@" 2>&1; echo "@@pt-end $n rc=$?"; }
# The lab waited for its peer's link-local address (duplicate-address detection is slow under TCG).
peer=$HVMPT_LAB_PEER_ADDR
sed "s/@PEER@/$peer/" all.in > all.yaml
sec refuse-missing ${H} run missing.yaml
sec bind ${H} bind $edu $nic $nvme
sec refuse-unbound ${H} run unbound.yaml
echo vfio-pci > /sys/bus/pci/devices/$edu2/driver_override; echo $edu2 > /sys/bus/pci/drivers_probe
sec refuse-mate ${H} run mate.yaml
sec run ${H} run all.yaml --report report.json
# The lab's /tmp is its own: the report comes back on stdout.
sec report cat report.json
sec unbind ${H} unbind $nic $nvme $edu
nif=$(ls /sys/bus/pci/devices/$nic/net); ip link set $nif up
for i in $(seq 300); do [ "$(cat /sys/class/net/$nif/carrier)" = 1 ] && break; sleep 0.2; done
sec back-nic sh -c "basename \\$(readlink /sys/bus/pci/devices/$nic/driver); cat /sys/class/net/$nif/carrier"
nb=/dev/$(ls /sys/bus/pci/devices/$nvme/nvme)n1
for i in $(seq 100); do [ -b $nb ] && break; sleep 0.2; done
sec back-nvme sh -c "basename \\$(readlink /sys/bus/pci/devices/$nvme/driver); dd if=$nb bs=1M count=64 2>/dev/null | sha256sum"
sec back-edu sh -c "basename \\$(readlink /sys/bus/pci/devices/$edu/driver 2>/dev/null) 2>/dev/null; od -An -tx4 -N4 /sys/bus/pci/devices/$edu/config"
`;
    const r = hvmpt(
      ['lab', '--iommu', 'intel', '--memory', '3G', '--device', 'edu,dma_mask=0xffffffff', '--device', 'e1000e', '--device', `nvme:${image}`,
        '--device', 'pci-bridge,id=br', '--device', 'edu,bus=br', '--device', `virtio-blk:${vblk},bus=br`, '--timeout', '5400', '--', script],
      { env: labEnv(), cwd: work },
    );
    const s = sections(r.stdout);
    const get = (name: string): { text: string; rc: number } => {
      const v = s.get(name);
      assert.ok(v, `the lab script ran ${name}; status ${r.status}; stderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-3000)}`);
      return v;
    };

    // Refusals, before anything starts, each saying what to do.
    assert.equal(get('refuse-missing').rc, 1);
    assert.match(get('refuse-missing').text, /pci\.passthrough\[0\]\.host: no PCI function 0000:07:1f\.7 on this host/);
    assert.equal(get('refuse-unbound').rc, 1);
    assert.match(get('refuse-unbound').text, /is bound to e1000e, not vfio-pci: run `hvmpt bind 0000:[0-9a-f:.]+` first/);
    assert.equal(get('refuse-mate').rc, 1);
    assert.match(get('refuse-mate').text, /IOMMU group \d+ of [0-9a-f:.]+ also holds [0-9a-f:.]+ \(bound to virtio-pci\): a group goes to one guest whole/);
    assert.equal(get('bind').rc, 0, get('bind').text);

    // The run: the guest's own drivers on the real devices.
    // The guest's console reaches the run's stdout as its tty wrote it, lines ending in CR LF.
    const run0 = get('run');
    const runOut = { rc: run0.rc, text: run0.text.replace(/\r/g, '') };
    assert.equal(runOut.rc, 0, runOut.text.slice(-4000));
    const guest = (name: string): string => {
      const m = new RegExp(`^@@hvmpt-begin ${name}\\n([\\s\\S]*?)^@@hvmpt-end ${name} rc=(\\d+)$`, 'm').exec(runOut.text);
      assert.ok(m, `the guest ran ${name}:\n${runOut.text.slice(-4000)}`);
      return m[1]!;
    };
    assert.deepEqual(guest('edu-devmem').trim().split('\n'), ['0x010000ED', '0xEDCBA987', '0x00000078'], 'ID, liveness inversion and factorial read with busybox devmem');
    assert.match(guest('edu-id'), /^id=0x010000ed live=0xedcba987 fact=120$/m);
    assert.match(guest('edu-intx'), new RegExp(`^intx cycles=${INTX_CYCLES} lost=0 doubled=0 wrong=0 per_s=\\d+$`, 'm'));
    assert.match(guest('edu-dma'), /^dma src=0x4000000 dst=0x4080000 len=2048 mismatched=0 /m);
    assert.match(runOut.text, new RegExp(`^hvmpt: edu \\([0-9a-f:.]+\\): IOMMU fault: DMA (read|write) at 0x${DMA_OUTSIDE.toString(16)} blocked`, 'm'));
    assert.match(guest('edu-alive'), /^id=0x010000ed /m, 'the device and the guest go on after the fault');
    assert.match(guest('nic-link'), /^1$/m);
    assert.match(guest('nic-ping'), new RegExp(`${PINGS} packets transmitted, ${PINGS} packets received, 0% packet loss`));
    const msix = guest('nic-msix').trim().split('\n');
    assert.ok(Number(msix.at(-1)) >= 2, `e1000e uses MSI-X vectors: ${msix.join(' | ')}`);
    assert.match(runOut.text, /^hvmpt: nic: MSI-X on, \d+ vectors$/m);
    assert.match(guest('nvme-read'), new RegExp(`^${imageSha}  -$`, 'm'));
    assert.match(guest('nvme-write'), /^hvmpt-guest-write$/m);
    const report = JSON.parse(get('report').text) as { barMappings: Array<{ device: string; action: string; detail?: string }>; iommuFaults: unknown[] };
    assert.ok(report.barMappings.some((m) => m.device === 'nic' && m.action === 'mapped' && /MSI-X table/.test(m.detail ?? '')), 'the MSI-X table is trapped, the rest of its BAR mapped');
    assert.ok(report.iommuFaults.length >= 1);

    // Hand-back: each device with its lab-host driver again, and working.
    assert.equal(get('unbind').rc, 0, get('unbind').text);
    assert.deepEqual(get('back-nic').text.trim().split('\n'), ['e1000e', '1']);
    assert.deepEqual(get('back-nvme').text.trim().split('\n'), ['nvme', `${writtenSha}  -`], 'the lab host reads the disk with the guest\'s write on it');
    assert.match(get('back-edu').text, /11e81234/);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
