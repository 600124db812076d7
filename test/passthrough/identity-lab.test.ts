/**
 * Pass-through without an IOMMU, end to end, in one lab host with no IOMMU (hvmpt lab --iommu
 * none) booted with the carve `hvmpt e820 carve` computed from that lab host's own firmware
 * map (read once by a short lab boot with the same --memory, cached under .cache/). QEMU's edu,
 * nvme and e1000e are the "real hardware", bound to uio_pci_generic; a probe guest runs with
 * `memory.layout: identity` and drives them with its own Linux drivers on INTx. The lab host
 * reads and writes the guest's RAM at the same physical addresses through /dev/mem, canaries
 * outside the carve must survive a hostile guest, and the refusals come with their kernel
 * parameter. No device of this machine is touched: everything runs inside the lab.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSeededImage } from '../helpers/images.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { labEnv } from '../lab/lab-env.js';
import { labCarve } from './lab-carve.js';

const LAB_MEMORY = '3G';
const GUEST_SIZE = '256M';
/** The carve starts at or above 1 GiB: away from the lab host's kernel image and early allocations. */
const ABOVE = '1G';
const IMAGE_BYTES = 64 << 20;
const INTX_CYCLES = 10_000;
const PINGS = 1_000;

const hex = (v: bigint): string => '0x' + v.toString(16);

/** `@@pt-begin NAME` … `@@pt-end NAME rc=N` blocks of the lab script's output. */
function sections(out: string, mark = 'pt'): Map<string, { text: string; rc: number }> {
  const m = new Map<string, { text: string; rc: number }>();
  for (const s of out.matchAll(new RegExp(`^@@${mark}-begin (\\S+)\\n([\\s\\S]*?)^@@${mark}-end \\1 rc=(\\d+)$`, 'gm'))) m.set(s[1]!, { text: s[2]!, rc: Number(s[3]) });
  return m;
}

/** A 32-bit little-endian value as a busybox printf octal escape string (a BAR written through sysfs config). */
function le32Octal(v: bigint): string {
  let s = '';
  for (let i = 0n; i < 4n; i++) s += '\\' + ((v >> (8n * i)) & 0xffn).toString(8).padStart(3, '0');
  return s;
}

test('identity pass-through without an IOMMU: guest frame == machine frame; edu DMA and INTx, nvme and e1000e on INTx through uio; protection under attack; refusals', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessCommand(t, 'gcc', 'gcc')) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-identity-lab-'));
  try {
    // The carve, as hvmpt computes it from the lab host's own map.
    const { memmap, start, end } = labCarve(LAB_MEMORY, GUEST_SIZE, ABOVE);
    // Guest-reserved (memmap= in the guest) so its kernel leaves them alone: DMA source and
    // destination, and one word each way between guest and lab host.
    const src = start + 0x400_0000n;
    const dst = src + 0x10_0000n;
    const g2h = src + 0x20_0000n;
    const h2g = src + 0x30_0000n;
    const guestReserve = `memmap=4M$${hex(src)}`;
    // Outside the carve: a reserved canary page the lab host writes, and host RAM.
    const canary = end + 0x400_0000n;
    const hostRam = end + 0x1000_0000n;

    const tool = join(work, 'edu-tool');
    const cc = run('gcc', ['-O2', '-static', '-o', tool, join(REPO_ROOT, 'tools/guest/c/edu-tool.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    const image = join(work, 'nvme.img');
    const { sha256: imageSha } = writeSeededImage(image, IMAGE_BYTES, 0x2545f491);
    const vblk = join(work, 'vblk.img');
    writeFileSync(vblk, new Uint8Array(1 << 20));

    const bar = (v: bigint): string => `printf '${le32Octal(v)}' | dd of=$edu/config bs=4 seek=4 count=1 conv=notrunc 2>/dev/null`;
    const GUEST = `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
edu=$(find_dev 0x1234:0x11e8); nic=$(find_dev 0x8086:0x10d3); nvme=$(find_dev 0x1b36:0x0010)
section frame-g2h sh -c "devmem ${hex(g2h)} 32 0x1d3a7e57; devmem ${hex(g2h)} 32"
section frame-h2g sh -c 'for i in $(seq 3000); do v=$(devmem ${hex(h2g)} 32); [ "$v" = 0xC0FFEE11 ] && echo $v && exit 0; sleep 0.1; done; echo "timeout $v"; exit 1'
section no-msi sh -c "for d in $edu $nic $nvme; do ls $d/msi_irqs 2>/dev/null | wc -l; done"
echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id
section edu-id edu-tool $edu id
section edu-dma edu-tool $edu dma ${hex(src)} ${hex(dst)} 2048
eth=$(ls $nic/net); ip link set $eth up
for i in $(seq 300); do [ "$(cat /sys/class/net/$eth/carrier 2>/dev/null)" = 1 ] && break; sleep 0.2; done
section nic-link cat /sys/class/net/$eth/carrier
for i in $(seq 300); do ip -6 addr show dev $eth | grep -v tentative | grep -q "inet6 fe80" && break; sleep 0.2; done
section nic-ping ping6 -c ${PINGS} -A -W 10 -I $eth "@PEER@%$eth"
section nic-intx grep -E "$eth" /proc/interrupts
for i in $(seq 100); do [ -d $nvme/nvme ] && [ -b /dev/$(ls $nvme/nvme)n1 ] && break; sleep 0.2; done
blk=/dev/$(ls $nvme/nvme)n1
section nvme-read sh -c "dd if=$blk bs=1M count=64 2>/dev/null | sha256sum"
section nvme-intx grep -E "nvme" /proc/interrupts
section edu-intx timeout 1500 edu-tool $edu intx ${INTX_CYCLES}
section hostile sh -c "${bar(canary).replace(/"/g, '\\"')}; devmem ${hex(canary)} 32 0xbad0bad0; ${bar(hostRam).replace(/"/g, '\\"')}; devmem ${hex(hostRam)} 32 0xbad1bad1; ${bar(0x100000n).replace(/"/g, '\\"')}; devmem ${hex(canary + 4n)} 32 0xbad2bad2; echo done"
section alive echo alive
`;
    const probe = (script: string, cmdline: string, modules: string): string =>
      `{ kind: probe, modules: [${modules}], files: [{ path: bin/edu-tool, file: edu-tool }], cmdline: "${cmdline}", script: ${JSON.stringify(script)} }`;
    const identity = `memory: { size: ${GUEST_SIZE}, layout: identity, identity: { above: ${ABOVE} } }\n`;
    writeFileSync(
      join(work, 'all.in'),
      `${identity}pci:\n  passthrough:\n    - { name: edu, host: "1234:11e8", backend: uio, at: "00:05.0" }\n    - { name: nic, host: "8086:10d3", backend: uio, at: "00:03.0" }\n    - { name: disk, host: "1b36:0010", backend: uio, at: "00:04.0" }\n` +
        `machine:\n  boot: ${probe(GUEST, guestReserve, 'uio_pci_generic, e1000e, nvme')}\n  timeout: 3000\n`,
    );
    // A second guest for the same range, while the first runs.
    writeFileSync(join(work, 'second.yaml'), `${identity}machine:\n  boot: { kind: probe, report: false, script: 'true' }\n  timeout: 600\n`);
    // A range the lab host was not booted with: System RAM.
    writeFileSync(join(work, 'sysram.yaml'), `memory: { size: ${GUEST_SIZE}, layout: identity, identity: { above: ${hex(hostRam)} } }\nmachine:\n  boot: { kind: probe, report: false, script: 'true' }\n  timeout: 600\n`);
    // A second edu on the same host IRQ as a virtio disk whose driver takes INTx (vectors=0: no MSI-X).
    writeFileSync(join(work, 'shared.yaml'), `${identity}pci:\n  passthrough:\n    - { host: "1234:11e8#1", backend: uio }\nmachine:\n  boot: { kind: probe, report: false, script: 'true' }\n  timeout: 600\n`);
    // The same DMA on an ordinary layout: guest RAM large enough to hold the same guest-physical
    // addresses, which the device (no IOMMU, no identity) reaches as machine addresses in the carve.
    const ORDINARY = `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
edu=$(find_dev 0x1234:0x11e8)
echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id
section edu-dma edu-tool $edu dma ${hex(src)} ${hex(dst)} 2048
`;
    const ordinaryRam = ((end + 0x400_0000n + 0xfffffn) >> 20n) << 20n;
    writeFileSync(
      join(work, 'ordinary.yaml'),
      `memory: { size: ${ordinaryRam >> 20n}M }\npci:\n  passthrough:\n    - { name: edu, host: "1234:11e8", backend: uio, at: "00:05.0" }\nmachine:\n  boot: ${probe(ORDINARY, guestReserve, 'uio_pci_generic')}\n  timeout: 1200\n`,
    );

    const H = `node ${join(REPO_ROOT, 'dist/hvmpt.mjs')}`;
    const script = `
set -u
cd ${work}
export HVMPT_LOCK_DIR=/tmp/hvmpt-locks
set -- $HVMPT_LAB_PCI
edu=$1 nic=$2 nvme=$3 vblk=$4 edu2=$5
sec() { n=$1; shift; echo "@@pt-begin $n"; "$@" 2>&1; echo "@@pt-end $n rc=$?"; }
for i in $(seq 300); do peer=$(ip -6 addr show dev $HVMPT_LAB_PEER | grep -v tentative | sed -n "s/.*inet6 \\(fe80::[0-9a-f:]*\\).*/\\1/p"); [ -n "$peer" ] && break; sleep 0.2; done
sed "s/@PEER@/$peer/" all.in > all.yaml
sec cmdline cat /proc/cmdline
sec bind ${H} bind $edu $nic $nvme --driver uio_pci_generic
sec canary-before sh -c "busybox devmem ${hex(canary)} 32 0x5afec0de; busybox devmem ${hex(canary + 4n)} 32 0x600dcafe; busybox devmem ${hex(canary)} 32; busybox devmem ${hex(canary + 4n)} 32"
sec refuse-sysram ${H} run sysram.yaml
${H} bind $edu2 --driver uio_pci_generic >/dev/null 2>&1
sec irqs sh -c "cat /sys/bus/pci/devices/$vblk/irq /sys/bus/pci/devices/$edu2/irq"
sec refuse-shared ${H} run shared.yaml
${H} run all.yaml --report report.json > run.out 2>&1 &
pid=$!
for i in $(seq 30000); do grep -q '^@@hvmpt-end frame-g2h' run.out && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
# Through read() and write() of /dev/mem (write-back, as the monitor maps it): an O_SYNC mmap (busybox devmem) is refused while the monitor's mapping is up (PAT memtype conflict).
sec host-reads sh -c "dd if=/dev/mem bs=4096 skip=${g2h / 4096n} count=1 2>/dev/null | od -An -tx4 -N4"
sec host-writes sh -c "printf '\\021\\356\\377\\300' | dd of=/dev/mem bs=4 seek=${h2g / 4n} count=1 conv=notrunc 2>/dev/null; dd if=/dev/mem bs=4096 skip=${h2g / 4096n} count=1 2>/dev/null | od -An -tx4 -N4"
sec refuse-second ${H} run second.yaml
wait $pid
rc=$?
echo "@@pt-begin run"; cat run.out; echo "@@pt-end run rc=$rc"
sec report cat report.json
sec canary-after sh -c "busybox devmem ${hex(canary)} 32; busybox devmem ${hex(canary + 4n)} 32"
sec dst-cleared sh -c "busybox devmem ${hex(dst)} 32 0; busybox devmem ${hex(dst)} 32"
sec ordinary ${H} run ordinary.yaml
sec ordinary-landed busybox devmem ${hex(dst)} 32
`;
    const r = hvmpt(
      ['lab', '--iommu', 'none', '--memory', LAB_MEMORY, '--device', 'edu,dma_mask=0xffffffff', '--device', 'e1000e', '--device', `nvme:${image}`, '--device', `virtio-blk:${vblk},vectors=0,addr=04.0`, '--device', 'edu,addr=08.0', '--append', [...memmap, `memmap=4K$${hex(canary)}`].join(' '), '--timeout', '5400', '--', script],
      { env: labEnv(), cwd: work },
    );
    const s = sections(r.stdout);
    const get = (name: string): { text: string; rc: number } => {
      const v = s.get(name);
      assert.ok(v, `the lab script ran ${name}; status ${r.status}; stderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-3000)}`);
      return v;
    };
    assert.ok(get('cmdline').text.includes(memmap[0]!), `the lab host booted with the carve ${memmap[0]}: ${get('cmdline').text}`);
    assert.equal(get('bind').rc, 0, get('bind').text);

    // Refusals, each naming the kernel parameter to add.
    const sysram = get('refuse-sysram');
    assert.equal(sysram.rc, 1, sysram.text);
    assert.match(sysram.text, /the host was not booted with the carve: .*add memmap=256M\$\S+ to the host kernel's command line/);
    assert.match(sysram.text, /is System RAM in \/proc\/iomem/);
    const shared = get('refuse-shared');
    assert.equal(shared.rc, 1, shared.text);
    assert.match(shared.text, /INTx line \(IRQ \d+\) is shared with [0-9a-f:.]+ \(virtio-pci, on INTx\): identity mode cannot accept a shared INTx line/, `IRQs of the virtio disk and the second edu: ${get('irqs').text}`);
    const second = get('refuse-second');
    assert.equal(second.rc, 1, second.text);
    assert.match(second.text, new RegExp(`identity RAM \\[${hex(start)}, ${hex(end)}\\) is held by another guest \\(hvmpt process \\d+`));

    // The run: the guest's own drivers on the real devices, in identity RAM.
    const run0 = get('run');
    const runOut = run0.text.replace(/\r/g, '');
    assert.equal(run0.rc, 0, runOut.slice(-4000));
    assert.match(runOut, /^hvmpt: warning: identity layout: the guest's RAM is the host's own .*without an IOMMU a passed-through device can DMA anywhere/m);
    const g = sections(runOut, 'hvmpt');
    const guest = (name: string): string => {
      const v = g.get(name);
      assert.ok(v, `the guest ran ${name}:\n${runOut.slice(-4000)}`);
      return v.text;
    };
    // 1. Guest frame == machine frame, both ways.
    assert.match(guest('frame-g2h'), /^0x1D3A7E57$/m);
    assert.match(get('host-reads').text, /^\s*1d3a7e57$/m, 'the lab host reads at machine address X what the guest wrote at guest address X');
    assert.match(get('host-writes').text, /^\s*c0ffee11$/m);
    assert.match(guest('frame-h2g'), /^0xC0FFEE11$/m, 'the guest reads at X what the lab host wrote at X');
    // MSI and MSI-X hidden: every driver on INTx.
    assert.deepEqual(guest('no-msi').trim().split('\n'), ['0', '0', '0']);
    // 2. edu: DMA with no IOMMU and no mapping, INTx through uio.
    assert.match(guest('edu-id'), /^id=0x010000ed live=0xedcba987 fact=120$/m);
    assert.match(guest('edu-intx'), new RegExp(`^intx cycles=${INTX_CYCLES} lost=0 doubled=0 wrong=0 per_s=\\d+$`, 'm'));
    assert.match(guest('edu-dma'), new RegExp(`^dma src=${hex(src)} dst=${hex(dst)} len=2048 mismatched=0 `, 'm'));
    // 4. e1000e on INTx.
    assert.match(guest('nic-link'), /^1$/m);
    // busybox's adaptive ping (-A) stops at the count of replies; when replies are slow (a nested
    // lab) it has sent a few more by then, which it does not wait for: every sequence number up
    // to the count must have its reply.
    const ping = guest('nic-ping');
    assert.match(ping, new RegExp(`\\d+ packets transmitted, ${PINGS} packets received, 0% packet loss`));
    const seqs = new Set([...ping.matchAll(/bytes from .*: seq=(\d+) /g)].map((m) => Number(m[1])));
    for (let i = 0; i < PINGS; i++) assert.ok(seqs.has(i), `ping ${i} was answered`);
    assert.match(guest('nic-intx'), /IO-APIC/);
    // 3. nvme on INTx.
    assert.match(guest('nvme-read'), new RegExp(`^${imageSha}  -$`, 'm'));
    assert.match(guest('nvme-intx'), /IO-APIC/);
    // 5. Protection under attack: nothing mapped, refusals reported, canaries intact, monitor alive.
    assert.match(guest('hostile'), /^done$/m);
    assert.match(guest('alive'), /^alive$/m);
    const report = JSON.parse(get('report').text) as { barMappings: Array<{ device: string; action: string; new: { address: string } | null; detail?: string }> };
    for (const at of [canary, hostRam, 0x100000n]) {
      const m = report.barMappings.find((e) => e.device === 'edu' && e.new !== null && BigInt(e.new.address) === at);
      assert.ok(m, `the report lists edu's BAR moved to ${hex(at)}: ${JSON.stringify(report.barMappings.filter((e) => e.device === 'edu'))}`);
      assert.equal(m.action, 'refused', JSON.stringify(m));
      assert.match(m.detail ?? '', /left disabled/);
    }
    assert.ok(report.barMappings.some((e) => e.device === 'disk' && e.action === 'mapped'), 'the nvme BAR was mapped inside the window');
    assert.deepEqual(get('canary-before').text.trim().split('\n').slice(-2), ['0x5AFEC0DE', '0x600DCAFE']);
    assert.deepEqual(get('canary-after').text.trim().split('\n'), ['0x5AFEC0DE', '0x600DCAFE'], 'the canary outside the carve is unchanged');

    // 2b. The same DMA on an ordinary layout: the data is missing from the guest, and it landed at machine address DST in the carve.
    const ord = get('ordinary');
    const ordOut = ord.text.replace(/\r/g, '');
    assert.match(ordOut, /^hvmpt: warning: backend uio in an ordinary layout/m);
    const od = sections(ordOut, 'hvmpt').get('edu-dma');
    assert.ok(od, ordOut.slice(-3000));
    const mismatched = /mismatched=(\d+)/.exec(od.text);
    assert.ok(mismatched !== null && Number(mismatched[1]) > 0, `the ordinary layout's guest misses the DMA'd data: ${od.text}`);
    assert.match(get('ordinary-landed').text, /^0x18110A03$/m, 'the device wrote the pattern at machine address DST');
    assert.equal(r.status, 0, r.stderr.slice(-2000));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
