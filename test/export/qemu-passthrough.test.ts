/**
 * The pass-through half of the QEMU export's acceptance, in a lab host (`hvmpt lab --iommu intel`
 * with QEMU's edu, e1000e and nvme as the "real" devices): one plan passes the three through
 * (vfio), and the probe guest boots twice on the lab host — once on hvmpt's monitor (`hvmpt run`),
 * once under `qemu-system-x86_64 -accel kvm` running the plan's QEMU export as written
 * (`--format sh`, its vfio-pci devices included). Linux in the guest must see the same PCI
 * functions both times — addresses, IDs, class, revision, BAR and ROM sizes, the driver that bound
 * — but for the two functions QEMU's pc machine adds, which the export notes; and each time the
 * guest's own drivers must work the devices: edu-tool on uio_pci_generic reads edu's ID, liveness
 * and factorial, e1000e pings the lab host over the hub, nvme reads the image whose digest is
 * known here. A nested lab run is slow here (20 minutes or more on a loaded machine): everything
 * happens in one lab boot.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseProbeReport, type ProbePciFunction } from '../../src/host/guest/probe.js';
import { labEnv } from '../lab/lab-env.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';

const IMAGE_BYTES = 16 << 20;
const PINGS = 20;

/** The probe guest's script (after its report): each device found by its IDs, then used by its own driver. */
const GUEST = `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
edu=$(find_dev 0x1234:0x11e8); nic=$(find_dev 0x8086:0x10d3); nvme=$(find_dev 0x1b36:0x0010)
echo 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id
section edu-id edu-tool $edu id
eth=$(ls $nic/net); ip link set $eth up
for i in $(seq 300); do ip -6 addr show dev $eth | grep -v tentative | grep -q "inet6 fe80" && break; sleep 0.2; done
section nic-ping ping6 -c ${PINGS} -W 10 -I $eth "@PEER@%$eth"
for i in $(seq 100); do [ -d $nvme/nvme ] && [ -b /dev/$(ls $nvme/nvme)n1 ] && break; sleep 0.2; done
section nvme-read sh -c "dd if=/dev/$(ls $nvme/nvme)n1 bs=1M count=${IMAGE_BYTES >> 20} 2>/dev/null | sha256sum"
`;

/** The lab host's script: bind, run on hvmpt, export, run the export. Its markers are its own (`@@pt`). */
const LAB = (work: string): string => String.raw`set -u
W=$(mktemp -d)
set -- $HVMPT_LAB_PCI
EDU=$1; NIC=$2; NVME=$3
# The lab host's end of the hub: the lab waited for its link-local address.
peer=$HVMPT_LAB_PEER_ADDR
[ -n "$peer" ] || { echo "the lab host's $HVMPT_LAB_PEER has no link-local address" >&2; exit 5; }
sed -e "s/@PEER@/$peer/" -e "s/@EDU@/$EDU/" -e "s/@NIC@/$NIC/" -e "s/@NVME@/$NVME/" ${work}/plan.in > $W/pt.yaml
node dist/hvmpt.mjs bind "$EDU" "$NIC" "$NVME" >&2 || exit 3
echo "@@pt hvmpt-run"
node dist/hvmpt.mjs run $W/pt.yaml --no-lab; echo "@@pt hvmpt-run-rc=$?"
node dist/hvmpt.mjs export $W/pt.yaml --to qemu --format sh --out $W/run.sh --files $W/files || exit 4
echo "@@pt qemu"
timeout 1800 sh $W/run.sh; echo "@@pt qemu-rc=$?"
`;

/** What the comparison holds a function to: everything Linux reports but the IRQ number and the addresses. */
function shape(f: ProbePciFunction): unknown {
  return {
    bdf: f.bdf,
    ids: [f.vendor, f.device, f.subsystemVendor, f.subsystemDevice, f.classCode, f.revision],
    driver: f.driver,
    sizes: f.resources.map((r) => [r.index, r.end - r.start + 1n]),
  };
}

test('QEMU export, pass-through: in a lab host with an IOMMU the probe guest sees the same PCI functions, IDs, BARs and drivers under the exported QEMU command line as under hvmpt run, and its own drivers work edu, e1000e and nvme both times', { timeout: 5_400_000 }, async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessCommand(t, 'gcc', 'gcc')) return;
  const dir = mkdtempSync(join(REPO_ROOT, 'dist', 'export-pt-'));
  let out: string;
  let imageSha: string;
  try {
    const tool = join(dir, 'edu-tool');
    const cc = run('gcc', ['-O2', '-static', '-o', tool, join(REPO_ROOT, 'tools/guest/c/edu-tool.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    // The nvme's image: random bytes whose digest is known here; the lab uses it copy-on-write.
    const bytes = randomBytes(IMAGE_BYTES);
    const image = join(dir, 'nvme.img');
    writeFileSync(image, bytes);
    imageSha = createHash('sha256').update(bytes).digest('hex');
    const boot = `{ kind: probe, modules: [uio_pci_generic, e1000e, nvme], files: [{ path: bin/edu-tool, file: ${tool} }], script: ${JSON.stringify(GUEST)} }`;
    writeFileSync(
      join(dir, 'plan.in'),
      'name: pt\nmemory: { size: 256M }\npci:\n  passthrough:\n' +
        '    - { name: edu, host: "@EDU@", at: "00:05.0" }\n    - { name: nic, host: "@NIC@", at: "00:06.0" }\n    - { name: disk, host: "@NVME@", at: "00:07.0" }\n' +
        `machine:\n  boot: ${boot}\n  timeout: 1800\n`,
    );
    writeFileSync(join(dir, 'pt.sh'), LAB(dir));
    const r = hvmpt(
      ['lab', '--iommu', 'intel', '--device', 'edu', '--device', 'e1000e', '--device', `nvme:${image}`, '--memory', '3G', '--timeout', '5000', '--', `sh ${join(dir, 'pt.sh')}`],
      { env: labEnv(), cwd: REPO_ROOT },
    );
    assert.equal(r.status, 0, `${r.stderr.slice(-3000)}\n${r.stdout.slice(-6000)}`);
    out = r.stdout.replace(/\r/g, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const at = (mark: string): number => {
    const i = out.indexOf(mark);
    assert.ok(i >= 0, `the lab printed ${mark}:\n${out.slice(-6000)}`);
    return i;
  };
  const onHvmpt = out.slice(at('@@pt hvmpt-run\n'), at('@@pt qemu\n'));
  const onQemu = out.slice(at('@@pt qemu\n'));
  const hv = parseProbeReport(onHvmpt);
  const qe = parseProbeReport(onQemu);
  // One subtest per check, so that one lab boot reports every failure.
  for (const [who, text, g, rc] of [['hvmpt run', onHvmpt, hv, 'hvmpt-run-rc'], ['QEMU export', onQemu, qe, 'qemu-rc']] as const) {
    await t.test(`${who}: the guest ran to the end and its own drivers worked edu (uio_pci_generic), e1000e (ping) and nvme (read)`, () => {
      assert.match(text, new RegExp(`@@pt ${rc}=0`), text.slice(-6000));
      assert.equal(g.rc, 0, `the probe guest's script ended: ${text.slice(-4000)}`);
      const section = (name: string): string => {
        const s = g.sections.get(name);
        assert.ok(s, `the guest ran ${name}: ${text.slice(-4000)}`);
        return s.output;
      };
      assert.match(section('edu-id'), /^id=0x010000ed live=0xedcba987 fact=120$/m);
      assert.match(section('nic-ping'), new RegExp(`${PINGS} packets transmitted, ${PINGS} packets received, 0% packet loss`));
      assert.match(section('nvme-read'), new RegExp(`^${imageSha}  -$`, 'm'));
    });
  }
  await t.test('the two PCI listings match but for the two functions QEMU\'s pc machine adds (the export\'s differs note)', () => {
    const extras = new Set(['0000:00:01.1', '0000:00:01.3']);
    assert.deepEqual(qe.pci.filter((f) => !extras.has(f.bdf)).map(shape), hv.pci.map(shape));
    assert.deepEqual(qe.pci.filter((f) => extras.has(f.bdf)).map((f) => f.bdf), [...extras]);
    const byBdf = (bdf: string): ProbePciFunction | undefined => hv.pci.find((f) => f.bdf === bdf);
    assert.deepEqual([byBdf('0000:00:05.0')?.vendor, byBdf('0000:00:05.0')?.device], [0x1234, 0x11e8]);
    assert.deepEqual([byBdf('0000:00:06.0')?.device, byBdf('0000:00:06.0')?.driver], [0x10d3, 'e1000e']);
    assert.deepEqual([byBdf('0000:00:07.0')?.device, byBdf('0000:00:07.0')?.driver], [0x0010, 'nvme']);
  });
});
