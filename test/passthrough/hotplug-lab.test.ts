/**
 * Dynamic allocation end to end, in one lab host with an Intel IOMMU (docs/hotplug.md): a
 * probe guest starts without the NIC; `hvmpt ctl attach` hands the lab host's e1000e to it
 * live (ACPI PCI hot-plug), the guest's acpiphp and e1000e bring it up and ping the lab's peer;
 * `detach` has the guest eject it and gives it back to the lab host's e1000e, whose link comes
 * up — many times in a row, with the monitor's memory slots, irqfds, MSI GSIs and fds counted
 * through `ctl status`. Then the nvme twice (the image's sha256 read by the guest each time),
 * the refusals (a dedicated device, a full bus, a group mate the host uses) with the guest
 * going on untouched, and a guest that stops listening to the hot-plug GPE, whose device
 * `--force-after` takes back. The lab host's side runs hotplug-driver.ts.
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

const ROUNDS = 20;
const PINGS = 100;
const IMAGE_BYTES = 16 << 20;

/** A control socket reply, and the shapes of the ones read here (docs/hotplug.md). */
interface Reply {
  readonly return?: unknown;
  readonly error?: { readonly class: string; readonly desc: string };
}
interface Status {
  readonly memorySlots: number;
  readonly irqfds: number;
  readonly msiGsis: number;
  readonly fds: number;
  readonly hotplug: { readonly slots: number[]; readonly occupied: number[]; readonly free: number[] };
  readonly devices: unknown[];
}
interface Detached {
  readonly detached: string;
  readonly how: string;
  readonly problems: string[];
  readonly host: { readonly driver?: string | null };
}

/** `@@pt-begin NAME` … `@@pt-end NAME rc=N` blocks of the driver's output. */
function sections(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of out.matchAll(/^@@pt-begin (\S+)\n([\s\S]*?)\n?^@@pt-end \1 rc=\d+$/gm)) m.set(s[1]!, s[2]!);
  return m;
}

/** The probe guest: waits for each device by its IDs, drives it with its own driver, waits for it to go. */
const GUEST = `
${NIC_GUEST_HELPERS}
section slots ls /sys/bus/pci/slots
section bus-0 sh -c 'ls /sys/bus/pci/devices'
echo @@ready
for r in $(seq ${ROUNDS}); do
  wait_nic; echo "@@nic-bound $r"; link_up
  section nic-ping-$r ping6 -c ${PINGS} -A -W 10 -I $eth "@PEER@%$eth"
  echo "@@nic-done $r"
  wait_gone $nic
  section nic-gone-$r sh -c "ls /sys/class/net | tr '\\n' ' '; echo; ls /sys/bus/pci/devices | tr '\\n' ' '; echo"
done
for r in 1 2; do
  for i in $(seq 2400); do d=$(find_dev 0x1b36:0x0010); [ -n "$d" ] && [ -d "$d/nvme" ] && [ -b /dev/$(ls $d/nvme)n1 ] && break; sleep 0.25; done
  section nvme-read-$r sh -c "dd if=/dev/$(ls $d/nvme)n1 bs=1M count=${IMAGE_BYTES >> 20} 2>/dev/null | sha256sum"
  echo "@@nvme-done $r"
  wait_gone $d
done
${DEAF_GUEST}
section alive sh -c 'echo guest-alive; cat /proc/uptime'
`;

/** 28 functions with no BARs on slots 04-1f and the dedicated edu on 03: slot 02 is the one hot-plug slot. */
const FILLERS = Array.from({ length: 28 }, (_, i) => i + 4)
  .map((s) => `    - { name: f${s.toString(16)}, at: "00:${s.toString(16).padStart(2, '0')}.0", model: generic, options: { vendor: 0x1b36, device: 0x00ff, class: 0xff0000 } }\n`)
  .join('');

test('hot-plug in a lab with an IOMMU: e1000e attached and detached many times with nothing leaked, nvme twice, refusals with the guest untouched, a deaf guest\'s device forced back', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-hotplug-lab-'));
  try {
    const image = join(work, 'nvme.img');
    const { sha256: imageSha } = writeSeededImage(image, IMAGE_BYTES, 0x2545f491);
    const vblk = join(work, 'vblk.img');
    writeFileSync(vblk, new Uint8Array(1 << 20));
    const boot = `{ kind: probe, report: false, modules: [e1000e, nvme], script: ${JSON.stringify(GUEST)} }`;
    writeFileSync(
      join(work, 'plan.in'),
      `memory: { size: 512M }\npci:\n  hotplug: true\n  passthrough:\n    - { name: edu, host: "1234:11e8", at: "00:03.0" }\n  emulated:\n${FILLERS}machine:\n  boot: ${boot}\n  timeout: 5000\n`,
    );
    const H = `node ${join(REPO_ROOT, 'dist/hvmpt.mjs')}`;
    const script = `
set -u
cd ${work}
set -- $HVMPT_LAB_PCI
edu=$1 nic=$2 nvme=$3 edu2=$5 vblk=$6
for i in $(seq 300); do peer=$(ip -6 addr show dev $HVMPT_LAB_PEER | grep -v tentative | sed -n "s/.*inet6 \\(fe80::[0-9a-f:]*\\).*/\\1/p"); [ -n "$peer" ] && break; sleep 0.2; done
sed "s/@PEER@/$peer/g" plan.in > /tmp/hotplug.yaml
${H} bind $edu >/dev/null
node ${join(REPO_ROOT, 'dist/test/passthrough/hotplug-driver.js')} ${join(REPO_ROOT, 'dist/hvmpt.mjs')} /tmp/hotplug.yaml /tmp/hotplug.sock $nic $nvme $edu2 $vblk ${ROUNDS}
`;
    const r = hvmpt(
      ['lab', '--iommu', 'intel', '--memory', '3G', '--device', 'edu', '--device', 'e1000e', '--device', `nvme:${image}`,
        '--device', 'pci-bridge,id=br', '--device', 'edu,bus=br', '--device', `virtio-blk:${vblk},bus=br`, '--timeout', '5400', '--', script],
      { env: labEnv(), cwd: work },
    );
    // The lab takes minutes: HVMPT_KEEP_LAB_OUTPUT=FILE keeps what it printed for a look after a failure.
    const keep = process.env['HVMPT_KEEP_LAB_OUTPUT'];
    if (keep !== undefined && keep !== '') writeFileSync(keep, r.stdout);
    const s = sections(r.stdout);
    const get = (name: string): string => {
      const v = s.get(name);
      assert.ok(v !== undefined, `the lab ran ${name}; status ${r.status}; driver error: ${s.get('driver-error') ?? '-'}\nstderr:\n${r.stderr.slice(-3000)}\nrun stderr:\n${(s.get('run-stderr') ?? '').slice(-3000)}\nconsole:\n${(s.get('run-console') ?? r.stdout).slice(-3000)}`);
      return v;
    };
    const reply = (name: string): Reply => JSON.parse(get(name)) as Reply;
    const ret = <T>(name: string): T => {
      const v = reply(name).return;
      assert.ok(v !== undefined, `${name} succeeded: ${get(name)}`);
      return v as T;
    };
    const refusal = (name: string): string => {
      const e = reply(name).error;
      assert.ok(e !== undefined, `${name} was refused: ${get(name)}`);
      return e.desc;
    };
    const console_ = get('run-console');
    const guest = (name: string): string => {
      const m = new RegExp(`^@@hvmpt-begin ${name}\\n([\\s\\S]*?)^@@hvmpt-end ${name} rc=(\\d+)$`, 'm').exec(console_);
      assert.ok(m, `the guest ran ${name}:\n${console_.slice(-3000)}`);
      return m[1]!;
    };
    assert.equal(s.get('driver-error'), undefined, s.get('driver-error'));

    // The guest starts without the NIC: one hot-plug slot (02), the rest held by the plan.
    const status0 = ret<Status>('status-0');
    assert.deepEqual(status0.hotplug, { slots: [2], occupied: [], free: [2] });
    assert.match(guest('slots'), /(^|\s)2(\s|$)/, 'Linux registered slot 2 (every root slot with a _SUN is listed)');
    assert.doesNotMatch(guest('bus-0'), /0000:00:02\.0/);

    // Refusals, each naming what was wrong, the guest's bus as it was.
    // Through hvmpt ctl: exit 1, the reply's error on stdout.
    const dedicated = JSON.parse(get('refuse-dedicated')) as { status: number; stdout: string };
    assert.equal(dedicated.status, 1);
    assert.deepEqual((JSON.parse(dedicated.stdout) as Reply).error, {
      class: 'ControlRefusal',
      desc: 'edu is dedicated (a real device is dedicated unless its plan entry says use: { allocation: dynamic }): it stays with the guest for the run',
    });
    assert.match(refusal('refuse-mate'), /entry\.host: IOMMU group \d+ of [0-9a-f:.]+ also holds [0-9a-f:.]+ \(used by the host's virtio-pci driver\): a group goes to one guest whole/);
    assert.deepEqual(get('mate-driver').split(' '), ['-', 'virtio-pci'], 'the refused attach left the group as it was');
    assert.deepEqual(ret<Status>('status-refused').devices, status0.devices);
    assert.match(refusal('refuse-full'), /^root bus 00 is full: its 1 hot-plug slot \(2\) all hold a device; detach one first$/);
    assert.equal(get('full-driver'), 'nvme', 'a full bus is refused before the device leaves its host driver');
    const nicRow = ret<{ devices: Array<Record<string, unknown>> }>('devices-1').devices.find((d) => d['name'] === 'nic');
    assert.deepEqual([nicRow?.['bdf'], nicRow?.['use'], nicRow?.['removable'], nicRow?.['hotplugged']], ['00:02.0', 'dynamic', true, true]);

    // Every round: attached, driven by the guest's e1000e, ejected by the guest, the lab host's again.
    const counts: string[] = [];
    for (let n = 1; n <= ROUNDS; n++) {
      const attach = ret<{ bdf: string; driver: unknown }>(`attach-${n}`);
      assert.equal(attach.bdf, '0000:00:02.0', get(`attach-${n}`));
      assert.deepEqual(attach.driver, { before: 'e1000e', now: 'vfio-pci' });
      assert.match(guest(`nic-ping-${n}`), new RegExp(`${PINGS} packets transmitted, ${PINGS} packets received, 0% packet loss`));
      const detach = ret<Detached>(`detach-${n}`);
      assert.deepEqual([detach.detached, detach.how, detach.problems, detach.host.driver], ['nic', 'ejected by the guest', [], 'e1000e'], get(`detach-${n}`));
      assert.doesNotMatch(guest(`nic-gone-${n}`), /eth0|0000:00:02\.0/, 'the guest\'s interface and function are gone');
      assert.equal(get(`back-${n}`), 'e1000e 1', 'the lab host\'s e1000e has it again, link up');
      const st = ret<Status>(`status-${n}`);
      assert.deepEqual(st.hotplug.free, [2]);
      counts.push(`memorySlots=${st.memorySlots} irqfds=${st.irqfds} msiGsis=${st.msiGsis} fds=${st.fds}`);
    }
    // Before any attach: the dedicated edu's memory slots and INTx irqfd, and the run's own fds.
    const before = `memorySlots=${status0.memorySlots} irqfds=${status0.irqfds} msiGsis=${status0.msiGsis} fds=${status0.fds}`;
    assert.deepEqual([...new Set(counts)], [before], `nothing leaks from round to round: ${counts.join(' | ')}`);
    const attachMs = Array.from({ length: ROUNDS }, (_, i) => Number(get(`attach-ms-${i + 1}`))).sort((a, b) => a - b);
    const detachMs = Array.from({ length: ROUNDS }, (_, i) => Number(get(`detach-ms-${i + 1}`))).sort((a, b) => a - b);
    t.diagnostic(`attach to guest driver bound, median ${attachMs[ROUNDS >> 1]} ms; detach to host driver bound, median ${detachMs[ROUNDS >> 1]} ms; ${counts[0]}`);

    // The nvme twice: the image read whole each time, handed back to the lab host's nvme between.
    for (const n of [1, 2]) {
      assert.equal(ret<{ attached: string }>(`nvme-attach-${n}`).attached, 'disk', get(`nvme-attach-${n}`));
      assert.match(guest(`nvme-read-${n}`), new RegExp(`^${imageSha}  -$`, 'm'));
      assert.equal(ret<Detached>(`nvme-detach-${n}`).how, 'ejected by the guest');
      assert.equal(get(`nvme-back-${n}`), 'nvme');
    }

    // A guest deaf to the eject request: --force-after takes the device back, and the guest goes on.
    assert.match(guest('nic-ping-force'), /5 packets transmitted, 5 packets received/);
    const forced = ret<Detached>('force-detach');
    assert.deepEqual([forced.how, forced.host.driver], ['forced', 'e1000e'], get('force-detach'));
    assert.ok(Number(get('force-ms')) >= 5000, 'it waited --force-after first');
    assert.equal(get('force-back'), 'e1000e 1');
    assert.match(guest('forced'), /^\s*ffff$/m, 'the function is gone from the guest\'s config space');
    assert.match(guest('forced'), /^ping-rc=1$/m, 'and its NIC with it');
    assert.match(guest('alive'), /^guest-alive$/m);
    assert.match(console_, /^@@hvmpt-done rc=0$/m);
    assert.equal(get('run-exit'), '0', get('run-stderr').slice(-3000));
    assert.equal(r.status, 0, r.stderr.slice(-2000));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
