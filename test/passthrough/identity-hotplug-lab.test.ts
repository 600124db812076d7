/**
 * Dynamic allocation without an IOMMU (docs/hotplug.md): one lab host with no IOMMU (hvmpt lab
 * --iommu none) booted with the identity carve of its own map, and a probe guest in that carve
 * (`memory.layout: identity`) that starts without the NIC. `hvmpt ctl attach` with
 * `backend: uio` hands the lab host's e1000e to it live through uio_pci_generic, INTx only; the
 * guest's acpiphp and e1000e bring it up and ping the lab's peer; `detach` has the guest eject
 * it and gives it back to the lab host's e1000e, whose link comes up. 20 rounds, with the
 * monitor's memory slots, irqfds and fds counted. A vfio attach of the nvme is refused there
 * (no IOMMU), the nvme left with the lab host's driver and the guest going on. Then the nvme
 * through uio twice, its image read whole by the guest's nvme driver on INTx each time, back
 * with the lab host's nvme between. Neither device shows the guest MSI or MSI-X: a hot-plugged
 * uio function hides them as one present at boot does. Last, a guest deaf to the hot-plug GPE:
 * `detach --force-after 5` takes the NIC back from under its e1000e driver, the guest goes on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSeededImage } from '../helpers/images.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { labEnv } from '../lab/lab-env.js';
import { DEAF_GUEST, NIC_GUEST_HELPERS } from './hotplug-guest.js';
import { labCarve } from './lab-carve.js';

const LAB_MEMORY = '3G';
const GUEST_SIZE = '256M';
const ABOVE = '1G';
const ROUNDS = 20;
const PINGS = 100;
const IMAGE_BYTES = 16 << 20;

interface Reply {
  readonly return?: Record<string, unknown>;
  readonly error?: { readonly class: string; readonly desc: string };
}

/** `@@ih-begin NAME` … `@@ih-end NAME rc=N` blocks of the lab script's output. */
function sections(out: string, mark: string): Map<string, { text: string; rc: number }> {
  const m = new Map<string, { text: string; rc: number }>();
  for (const s of out.matchAll(new RegExp(`^@@${mark}-begin (\\S+)\\n([\\s\\S]*?)^@@${mark}-end \\1 rc=(\\d+)$`, 'gm'))) m.set(s[1]!, { text: s[2]!, rc: Number(s[3]) });
  return m;
}

const GUEST = `
${NIC_GUEST_HELPERS}
echo @@ready
for r in $(seq ${ROUNDS}); do
  wait_nic; link_up
  section nic-ping-$r ping6 -c ${PINGS} -A -W 10 -I $eth "@PEER@%$eth"
  section nic-irq-$r sh -c "ls $nic/msi_irqs 2>/dev/null | wc -l; grep $eth /proc/interrupts"
  echo "@@nic-done $r"
  wait_gone $nic
  section nic-gone-$r sh -c "ls /sys/class/net | tr '\\n' ' '; echo"
done
for r in 1 2; do
  for i in $(seq 1200); do d=$(find_dev 0x1b36:0x0010); [ -n "$d" ] && [ -d "$d/nvme" ] && [ -b /dev/$(ls $d/nvme)n1 ] && break; sleep 0.25; done
  section nvme-read-$r sh -c "dd if=/dev/$(ls $d/nvme)n1 bs=1M count=${IMAGE_BYTES >> 20} 2>/dev/null | sha256sum"
  section nvme-irq-$r sh -c "ls $d/msi_irqs 2>/dev/null | wc -l; grep nvme /proc/interrupts; dmesg | grep -i -e nvme -e 'pci 0000:00' | tail -n 30"
  echo "@@nvme-done $r"
  wait_gone $d
done
${DEAF_GUEST}
# Time for the lab host's last status before the guest powers off.
sleep 10
section alive echo guest-alive
`;

test('hot-plug without an IOMMU: e1000e attached through uio into an identity guest and given back, 20 rounds with nothing leaked; nvme twice; a vfio attach refused; a deaf guest\'s NIC forced back', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-identity-hotplug-'));
  try {
    const { memmap } = labCarve(LAB_MEMORY, GUEST_SIZE, ABOVE);
    const image = join(work, 'nvme.img');
    const imageSha = writeSeededImage(image, IMAGE_BYTES, 0x1de7).sha256;
    writeFileSync(
      join(work, 'plan.in'),
      `memory: { size: ${GUEST_SIZE}, layout: identity, identity: { above: ${ABOVE} } }\npci:\n  hotplug: true\n` +
        `machine:\n  boot: { kind: probe, report: false, modules: [e1000e, nvme], script: ${JSON.stringify(GUEST)} }\n  timeout: 3000\n`,
    );
    const H = `node ${join(REPO_ROOT, 'dist/hvmpt.mjs')}`;
    const script = `
set -u
cd ${work}
export HVMPT_LOCK_DIR=/tmp/hvmpt-locks
set -- $HVMPT_LAB_PCI
nic=$1 nvme=$2
sec() { n=$1; shift; echo "@@ih-begin $n"; "$@" 2>&1; echo "@@ih-end $n rc=$?"; }
drv() { r=$(readlink /sys/bus/pci/devices/$1/driver); echo \${r##*/}; }
sed "s/@PEER@/$HVMPT_LAB_PEER_ADDR/g" plan.in > plan.yaml
${H} run plan.yaml --control unix:/tmp/ih.sock > run.out 2> run.err &
pid=$!
# A console marker: a line of its own (the console ends lines with CR LF); at most 15 minutes.
wait_for() { for i in $(seq 4500); do tr -d '\\r' < run.out | grep -qx "$1" && return 0; kill -0 $pid 2>/dev/null || return 1; sleep 0.2; done; echo "@@ih-begin timeout"; echo "$1"; echo "@@ih-end timeout rc=1"; kill $pid 2>/dev/null; return 1; }
ctl() { ${H} ctl /tmp/ih.sock "$@"; }
back() { for i in $(seq 300); do e=$(ls /sys/bus/pci/devices/$nic/net 2>/dev/null) && ip link set $e up && [ "$(cat /sys/class/net/$e/carrier 2>/dev/null)" = 1 ] && break; sleep 0.2; done; echo "$(drv $nic) $(cat /sys/class/net/$e/carrier 2>/dev/null)"; }
if wait_for @@ready; then
  sec ready true
  sec status-0 ctl status
  sec refuse-vfio ctl attach "{ name: disk, host: \\"$nvme\\" }"
  sec refused-driver drv $nvme
  for r in $(seq ${ROUNDS}); do
    sec attach-$r ctl attach "{ name: nic, host: \\"$nic\\", backend: uio }"
    wait_for "@@nic-done $r"
    sec detach-$r ctl detach nic
    sec back-$r back
    sec status-$r ctl status
  done
  for r in 1 2; do
    sec nvme-attach-$r ctl attach "{ name: disk, host: \\"$nvme\\", backend: uio }"
    wait_for "@@nvme-done $r"
    sec nvme-detach-$r ctl detach disk
    sec nvme-back-$r drv $nvme
  done
  sec force-attach ctl attach "{ name: nic, host: \\"$nic\\", backend: uio }"
  wait_for @@deaf
  sec force-detach ctl detach nic --force-after 5
  sec force-status ctl status
  sec force-back back
fi
wait $pid
rc=$?
echo "@@ih-begin run"; cat run.out; echo "@@ih-end run rc=$rc"
sec run-stderr cat run.err
`;
    const r = hvmpt(
      ['lab', '--iommu', 'none', '--memory', LAB_MEMORY, '--device', 'e1000e', '--device', `nvme:${image}`, '--append', memmap.join(' '), '--timeout', '3600', '--', script],
      { env: labEnv(), cwd: work },
    );
    // The lab takes many minutes: HVMPT_KEEP_LAB_OUTPUT=FILE keeps what it printed for a look after a failure.
    const keep = process.env['HVMPT_KEEP_LAB_OUTPUT'];
    if (keep !== undefined && keep !== '') writeFileSync(keep, r.stdout);
    const s = sections(r.stdout, 'ih');
    const get = (name: string): string => {
      const v = s.get(name);
      assert.ok(v !== undefined, `the lab ran ${name}; status ${r.status}; stderr:\n${r.stderr.slice(-3000)}\nrun stderr:\n${(s.get('run-stderr')?.text ?? '').slice(-3000)}\nstdout:\n${r.stdout.slice(-4000)}`);
      return v.text;
    };
    const reply = (name: string): Reply => JSON.parse(get(name)) as Reply;
    const ret = (name: string): Record<string, unknown> => {
      const v = reply(name).return;
      assert.ok(v !== undefined, `${name} succeeded: ${get(name)}`);
      return v;
    };
    const runOut = get('run').replace(/\r/g, '');
    const g = sections(runOut, 'hvmpt');
    const guest = (name: string): string => {
      const v = g.get(name);
      assert.ok(v, `the guest ran ${name}:\n${runOut.slice(-4000)}`);
      return v.text;
    };

    const status0 = ret('status-0');
    const count = (st: Record<string, unknown>): string => `memorySlots=${String(st['memorySlots'])} irqfds=${String(st['irqfds'])} fds=${String(st['fds'])}`;
    // No IOMMU: vfio-pci cannot take the nvme, and the refusal leaves it with the lab host's nvme driver.
    assert.match(reply('refuse-vfio').error?.desc ?? get('refuse-vfio'), /entry\.host: [0-9a-f:.]+ (could not be bound to vfio-pci|is in no IOMMU group)/);
    assert.equal(get('refused-driver').trim(), 'nvme');
    for (let n = 1; n <= ROUNDS; n++) {
      const a = ret(`attach-${n}`);
      assert.deepEqual(a['driver'], { before: 'e1000e', now: 'uio_pci_generic' }, get(`attach-${n}`));
      assert.match(String(a['source']), /uio_pci_generic/);
      assert.match(guest(`nic-ping-${n}`), new RegExp(`${PINGS} packets transmitted, ${PINGS} packets received, 0% packet loss`));
      const irq = guest(`nic-irq-${n}`).trim().split('\n');
      assert.equal(irq[0]?.trim(), '0', 'no MSI without an IOMMU');
      assert.match(irq.slice(1).join('\n'), /IO-APIC/, 'the NIC\'s interrupts come on INTx');
      const d = ret(`detach-${n}`);
      assert.deepEqual([d['detached'], d['how'], d['problems']], ['nic', 'ejected by the guest', []], get(`detach-${n}`));
      assert.deepEqual(d['host'], { address: String(a['host']), driver: 'e1000e' });
      assert.doesNotMatch(guest(`nic-gone-${n}`), /eth0/);
      assert.equal(get(`back-${n}`).trim(), 'e1000e 1', 'the lab host\'s e1000e has it again, link up');
      assert.equal(count(ret(`status-${n}`)), count(status0), `round ${n} leaves the monitor as it found it`);
    }
    // The nvme twice through uio (INTx): the image read whole each time, back with the lab host's nvme between.
    for (const n of [1, 2]) {
      assert.deepEqual(ret(`nvme-attach-${n}`)['driver'], { before: 'nvme', now: 'uio_pci_generic' }, get(`nvme-attach-${n}`));
      const irq = guest(`nvme-irq-${n}`);
      assert.match(guest(`nvme-read-${n}`), new RegExp(`^${imageSha}  -$`, 'm'), irq);
      assert.equal(irq.trim().split('\n')[0]?.trim(), '0', `no MSI without an IOMMU:\n${irq}`);
      assert.match(irq, /IO-APIC.*nvme0q0/, 'its queues\' interrupts come on INTx');
      assert.equal(ret(`nvme-detach-${n}`)['how'], 'ejected by the guest', get(`nvme-detach-${n}`));
      assert.equal(get(`nvme-back-${n}`).trim(), 'nvme');
    }
    // A guest deaf to the eject request: --force-after takes the device back, nothing leaks, and the guest goes on.
    assert.match(guest('nic-ping-force'), /5 packets transmitted, 5 packets received/);
    const forced = ret('force-detach');
    assert.deepEqual([forced['how'], forced['host']], ['forced', { address: String(ret('attach-1')['host']), driver: 'e1000e' }], get('force-detach'));
    assert.equal(count(ret('force-status')), count(status0), 'a forced removal leaves the monitor as it found it');
    assert.equal(get('force-back').trim(), 'e1000e 1');
    assert.match(guest('forced'), /^\s*ffff$/m, 'the function is gone from the guest\'s config space');
    assert.match(guest('forced'), /^ping-rc=1$/m, 'and its NIC with it');
    assert.match(guest('alive'), /^guest-alive$/m);
    assert.match(runOut, /^@@hvmpt-done rc=0$/m);
    assert.equal(s.get('run')?.rc, 0, get('run-stderr').slice(-3000));
    assert.equal(r.status, 0, r.stderr.slice(-2000));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
