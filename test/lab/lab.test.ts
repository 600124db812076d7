/**
 * `hvmpt lab` end to end: a lab host with an Intel IOMMU and a topology of QEMU devices
 * (behind a root port, behind a bridge, on the root bus), checked from inside by the lab
 * host's own sysfs, vfio, /dev/kvm, the hub and the disks; a second one with an AMD IOMMU
 * whose command runs past --timeout; one that creates and closes 300 VMs under load (KVM's
 * static keys held still); and the errors that need no boot.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { chooseLabAccel, LabTimeoutError, runLab } from '../../src/host/lab/index.js';

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** `hvmpt lab: device #N MODEL at BDF (vendor:device, id ID)` lines from stderr, by index. */
function printed(stderr: string): Map<number, { model: string; bdf: string; ids: string }> {
  const out = new Map<number, { model: string; bdf: string; ids: string }>();
  for (const m of stderr.matchAll(/^hvmpt lab: device #(\d+) (\S+) at ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) \(([0-9a-f]{4}:[0-9a-f]{4}), id \S+\)$/gm)) {
    out.set(Number(m[1]), { model: m[2]!, bdf: m[3]!, ids: m[4]! });
  }
  return out;
}

test('hvmpt lab: devices where sysfs finds them, vfio behind an Intel IOMMU, /dev/kvm, the hub, a read-only root, writable TMPDIR, the status passed on', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-lab-test-'));
  // A TMPDIR outside /tmp, so the lab has to make that one writable itself.
  const tmp = mkdtempSync(join(REPO_ROOT, 'dist', 'lab-tmpdir-'));
  try {
    const image = join(work, 'disk.img');
    writeFileSync(image, Buffer.alloc(8 << 20, 0xa5));
    const before = sha(image);
    const script = [
      'set -u',
      // The lab waited for its peer's address: there, and no longer tentative, when the command starts.
      'echo "peer-addr $HVMPT_LAB_PEER_ADDR $(ip -6 addr show dev $HVMPT_LAB_PEER | grep -c tentative)"',
      'for b in $HVMPT_LAB_PCI; do echo "pci $b $(cat /sys/bus/pci/devices/$b/vendor):$(cat /sys/bus/pci/devices/$b/device) parent=$(basename $(dirname $(readlink -f /sys/bus/pci/devices/$b)))"; done',
      'test -c /dev/kvm && echo kvm-present',
      // The process that holds KVM's static keys (src/host/lab/script.ts, KVM_KEEPER): its VMs and vCPUs.
      'for p in /proc/[0-9]*; do ls -l $p/fd 2>/dev/null | grep -q kvm-vm && echo "kvm-holder $(tr -d "\\0" < $p/cmdline) vm $(ls -l $p/fd | grep -c kvm-vm) vcpu $(ls -l $p/fd | grep -c kvm-vcpu)"; done',
      // The caller's environment goes in, but for what means nothing there (NOT_PASSED).
      'echo "env-passed ${HVMPT_LAB_TEST_VAR:-unset} ca ${NODE_EXTRA_CA_CERTS:-unset} kvm ${HVMPT_KVM:-unset}"',
      'node --input-type=module -e "const m = await import(\'' + join(REPO_ROOT, 'dist/src/vmm/kvm/probe.js') + '\'); console.log(\'probe\', m.probeKvm().kind)"',
      'touch /hvmpt-lab-write-test 2>/dev/null && echo root-writable || echo root-read-only',
      'echo x > "$TMPDIR/written" && echo "tmpdir-writable $TMPDIR"',
      'set -- $HVMPT_LAB_PCI',
      // vfio-pci takes the edu (device 2) through the IOMMU.
      'echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id',
      'echo "edu-driver $(basename $(readlink /sys/bus/pci/devices/$2/driver)) group $(basename $(readlink /sys/bus/pci/devices/$2/iommu_group)) dev $(ls /dev/vfio | tr "\\n" " ")"',
      // The disk: what is written reads back, and the image stays as it was (checked outside).
      'nv=$(ls /sys/bus/pci/devices/$4/nvme); printf "hvmpt-lab-disk" | dd of=/dev/${nv}n1 bs=512 conv=notrunc 2>/dev/null; sync',
      'echo "disk $(dd if=/dev/${nv}n1 bs=14 count=1 2>/dev/null)"',
      // The hub: the device's e1000e, alone in a network namespace so nothing is delivered
      // locally, reaches the lab host's own e1000e over IPv6 link-local, and that one counts it.
      'nic=$(ls /sys/bus/pci/devices/$3/net)',
      'unshare -n sleep 600 & ns=$!',
      'while [ "$(readlink /proc/$ns/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.2; done',
      'ip link set $nic netns $ns && nsenter -t $ns -n ip link set $nic up',
      'ready() { "$@" | grep -v tentative | grep -q "inet6 fe80"; }',
      'for i in $(seq 120); do ready nsenter -t $ns -n ip -6 addr show dev $nic && break; sleep 0.5; done',
      'peer=$HVMPT_LAB_PEER_ADDR',
      'rx=$(cat /sys/class/net/$HVMPT_LAB_PEER/statistics/rx_packets)',
      'nsenter -t $ns -n busybox ping6 -c 1 -W 10 -I $nic "$peer%$nic" >/dev/null && echo hub-ping-ok',
      'echo "peer-rx $(( $(cat /sys/class/net/$HVMPT_LAB_PEER/statistics/rx_packets) - rx ))"',
      'kill $ns',
      'echo to-stderr >&2',
      'exit 7',
    ].join('\n');
    const r = hvmpt(
      ['lab', '--iommu', 'intel', '--device', 'pcie-root-port,id=rp1', '--device', 'edu,bus=rp1', '--device', 'e1000e', '--device', `nvme:${image}`,
        '--device', 'pci-bridge,id=br1', '--device', `virtio-blk:${image},bus=br1`, '--timeout', '600', '--', script],
      { env: { ...process.env, TMPDIR: tmp, HVMPT_LAB_TEST_VAR: 'a b\'c', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', HVMPT_KVM: 'lab' }, cwd: work },
    );
    assert.equal(r.status, 7, `the command's status; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /^hvmpt lab: (TCG \(-cpu max\)|KVM \(-cpu host\)): /m);
    assert.match(r.stderr, /^to-stderr$/m);
    const lines = r.stdout.split('\n');
    const seen = new Map(lines.filter((l) => l.startsWith('pci ')).map((l) => {
      const [, bdf, ids, parent] = l.split(' ');
      return [bdf!, { ids: ids!.replace(/0x/g, ''), parent: parent!.slice('parent='.length) }];
    }));
    const dev = printed(r.stderr);
    assert.deepEqual([...dev.values()].map((d) => d.model), ['pcie-root-port', 'edu', 'e1000e', 'nvme', 'pci-bridge', 'virtio-blk']);
    // What hvmpt printed is what the lab host's sysfs shows, in $HVMPT_LAB_PCI's order.
    assert.deepEqual([...seen.keys()], [...dev.values()].map((d) => d.bdf));
    for (const d of dev.values()) assert.equal(seen.get(d.bdf)?.ids, d.ids, d.model);
    assert.deepEqual([...dev.values()].map((d) => d.ids), ['1b36:000c', '1234:11e8', '8086:10d3', '1b36:0010', '1b36:0001', seen.get(dev.get(6)!.bdf)!.ids]);
    assert.match(dev.get(6)!.ids, /^1af4:10(01|42)$/);
    // The placements: edu behind the root port, virtio-blk behind the bridge, the rest on the root bus.
    assert.equal(seen.get(dev.get(2)!.bdf)!.parent, dev.get(1)!.bdf);
    assert.equal(seen.get(dev.get(6)!.bdf)!.parent, dev.get(5)!.bdf);
    for (const i of [1, 3, 4, 5]) assert.equal(seen.get(dev.get(i)!.bdf)!.parent, 'pci0000:00', `device #${i} on the root bus`);
    assert.notEqual(dev.get(2)!.bdf.slice(5, 7), '00', 'edu is on a bus of its own');

    assert.match(r.stdout, /^peer-addr fe80::[0-9a-f:]+ 0$/m);
    assert.ok(lines.includes('kvm-present'), r.stdout);
    assert.deepEqual(lines.filter((l) => l.startsWith('kvm-holder ')), ['kvm-holder hvmpt-lab-kvm-keeper vm 2 vcpu 2'], 'one process holds two VMs, one vCPU each, for the lab host\'s life');
    assert.ok(lines.includes("env-passed a b'c ca unset kvm unset"), r.stdout);
    assert.ok(lines.includes('probe paging'), 'the monitor\'s probe finds a /dev/kvm that runs paging guests in the lab');
    assert.ok(lines.includes('root-read-only'), r.stdout);
    assert.ok(lines.includes(`tmpdir-writable ${tmp}`), r.stdout);
    assert.equal(existsSync(join(tmp, 'written')), false, 'writes in the lab stay there');
    assert.match(r.stdout, /^edu-driver vfio-pci group (\d+) dev (\d+ )*\1 /m);
    assert.ok(lines.includes('disk hvmpt-lab-disk'), r.stdout);
    assert.equal(sha(image), before, 'the image behind the disk is never written');
    assert.ok(lines.includes('hub-ping-ok'), r.stdout);
    assert.ok(Number(/^peer-rx (\d+)$/m.exec(r.stdout)?.[1]) >= 1, 'the ping crossed the hub');
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('hvmpt lab: an AMD IOMMU gives vfio groups; a command past --timeout is stopped with a typed error after its output so far', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const script = 'echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id; echo "amd $(ls /sys/class/iommu) $(basename $(readlink /sys/bus/pci/devices/$HVMPT_LAB_PCI/driver)) $(ls /dev/vfio | tr "\\n" " ")"; exec sleep 3600';
  const r = hvmpt(['lab', '--iommu', 'amd', '--device', 'edu', '--timeout', '20', '--', script]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^hvmpt: --timeout: the command ran past 20 s$/m);
  assert.match(r.stdout, /^amd ivhd\d+ vfio-pci (\d+ )*vfio $/m);
});

test('hvmpt lab: 300 VMs created and closed one after another while both CPUs schedule leave the lab host running (KVM\'s static keys held still)', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  // Without the lab's KVM keeper each VM here is the only one, and its start and end rewrite the
  // lab kernel's __schedule live; under TCG that wedged the lab host within 16 and 47 VMs in
  // two tries (docs/lab.md, Limits). The loads keep both CPUs in and out of __schedule.
  const script = [
    '(while :; do yes | head -c 2000000 > /dev/null; done) &',
    '(while :; do yes | head -c 2000000 > /dev/null; done) &',
    String.raw`perl -MPOSIX -e 'for my $i (1..300) { sysopen(my $k, "/dev/kvm", 2) or die "/dev/kvm: $!\n"; my $vm = ioctl($k, 0xAE01, 0); defined $vm or die "KVM_CREATE_VM: $!\n"; POSIX::close($vm); close $k } print "vms 300\n"'`,
  ].join('\n');
  const r = hvmpt(['lab', '--cpus', '2', '--timeout', '300', '--', script]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^vms 300$/m);
});

test('hvmpt lab: a lab host that never comes up is a typed error with its console', (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const r = hvmpt(['lab', '--append', 'rdinit=/no-such-init', '--', 'true']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^hvmpt: lab host: the lab host stopped before it came up; its console ended with:\n/m);
  assert.match(r.stderr, /Kernel panic/);
});

test('hvmpt lab: bad device specs, images and options are typed errors naming the spec, before anything boots', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-lab-spec-'));
  try {
    const cases: Array<[string[], RegExp]> = [
      [['--device', 'floppy'], /^hvmpt: --device: #1 'floppy': unknown device 'floppy' \(one of edu, e1000e, nvme, virtio-blk, pcie-root-port, pci-bridge\)$/m],
      [['--device', 'edu', '--device', `nvme:${join(dir, 'missing.img')}`], new RegExp(`^hvmpt: --device: #2 'nvme:.*missing\\.img': image .*missing\\.img: ENOENT$`, 'm')],
      [['--device', 'nvme'], /#1 'nvme': nvme needs an image: nvme:IMAGE/],
      [['--device', `edu:${dir}`], /#1 'edu:.*': edu takes no image/],
      [['--device', 'edu,bus=rp9'], /#1 'edu,bus=rp9': bus 'rp9' is neither pcie\.0 nor the id of an earlier pcie-root-port or pci-bridge/],
      [['--device', 'edu,addr=40'], /slot 0x40 is past 0x1f/],
      [['--device', 'pcie-root-port,id=p', '--device', 'edu,bus=p,addr=1'], /#2 'edu,bus=p,addr=1': slot 1 is not available on p \(a root-port takes slots 0-0\)/],
      [['--device', 'edu,addr=3', '--device', 'edu,addr=3'], /#2 'edu,addr=3': pcie\.0 03\.0 is taken/],
      [['--iommu', 'amd', '--device', 'edu,addr=1'], /pcie\.0 01\.0 is taken by the AMD IOMMU/],
      [['--device', 'pci-bridge,id=b', '--device', 'pcie-root-port,bus=b'], /a pcie-root-port goes on the root bus \(pcie\.0\), not on b/],
      [['--device', 'e1000e,netdev=x'], /netdev= is the lab's to set/],
      [['--device', 'edu,id=hvmpt-9p'], /ids starting with 'hvmpt-' are the lab's own/],
      [['--device', 'edu,id=a', '--device', 'edu,id=a'], /id 'a' is already used/],
      [['--device', 'edu,oops'], /'oops' is not KEY=VALUE/],
      [['--memory', '100M'], /^hvmpt: --memory: 100M is too little for the lab host \(at least 256M\)$/m],
      [['--cpus', '0'], /^hvmpt: --cpus: '0' is not a positive whole number up to 255$/m],
      [['--cpus', '1000'], /^hvmpt: --cpus: '1000' is not a positive whole number up to 255$/m],
      // Past 2^31 ms a timer fires at once: such a timeout would stop the command as soon as it started.
      [['--timeout', '1e10'], /^hvmpt: --timeout: '1e10' is not a positive number of seconds up to 2147483$/m],
    ];
    for (const [args, want] of cases) {
      const r = hvmpt(['lab', ...args, '--', 'true']);
      // Option values are usage errors (exit 2), a device spec's too; an image that cannot be read is the lab's input (exit 1).
      assert.equal(r.status, /missing\.img/.test(args.join(' ')) ? 1 : 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want, args.join(' '));
    }
    const usage = hvmpt(['lab', '--iommu', 'arm', '--', 'true']);
    assert.equal(usage.status, 2);
    // QEMU missing: the error names it and the package (the system's QEMU, found on PATH: the
    // one from backports is found by its path in .cache/lab-qemu).
    const noQemu = hvmpt(['lab', '--', 'true'], { env: { ...process.env, PATH: '/nonexistent', HVMPT_LAB_QEMU: 'system' } });
    assert.equal(noQemu.status, 1);
    assert.match(noQemu.stderr, /^hvmpt: lab host: cannot run qemu-system-x86_64: .*ENOENT \(Debian package qemu-system-x86\); scripts\/setup\.sh installs it$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hvmpt lab: a deadline stops a lab host that has not come up, with a typed error naming it and the console so far', async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-lab-deadline-'));
  try {
    // A QEMU that prints a line and then hangs, like a lab kernel stuck before the lab's marker.
    const fake = join(dir, 'qemu');
    writeFileSync(fake, '#!/bin/sh\necho "stuck in early boot"\nexec sleep 120\n');
    chmodSync(fake, 0o755);
    const deadlineMs = Date.now() + 3000;
    const begun = Date.now();
    await assert.rejects(
      runLab({ command: ['true'], accel: chooseLabAccel({ paging: false, why: 'test' }), qemu: fake, bootTimeoutS: 600, deadlineMs, log: () => {}, stdout: () => {}, stderr: () => {} }),
      (err: unknown) => {
        assert.ok(err instanceof LabTimeoutError, String(err));
        assert.equal(err.where.input, 'deadlineMs');
        assert.equal(err.where.at, new Date(deadlineMs).toISOString());
        assert.match(err.message, /the lab reached its deadline before the command started; its console ended with:\nstuck in early boot$/);
        return true;
      },
    );
    // Stopped at the deadline, not at the boot timeout (600 s) nor QEMU's own end (120 s).
    assert.ok(Date.now() - begun < 60_000, `stopped after ${Date.now() - begun} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
