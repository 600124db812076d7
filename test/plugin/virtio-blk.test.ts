/**
 * The virtio-blk example plug-in with real drivers on both sides of the boot:
 * 1. Debian's SeaBIOS finds the disk with its own virtio-blk driver and boots the GRUB this test
 *    installed on it (boot.img in the MBR, core.img behind it, as grub-bios-setup lays them
 *    out); GRUB's biosdisk then lists the disk and dumps a sector of it.
 * 2. Linux in the probe guest drives it with virtio_pci/virtio_blk over MSI-X and reads the
 *    whole disk: its sha256 is the image's (a paging /dev/kvm: `hvmpt run` takes a lab host
 *    where this machine's cannot).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseProbeReport } from '../../src/host/guest/probe.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware, skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { skipUnlessKvm } from '../vmm/kvm-helpers.js';

const PLUGIN = join(REPO_ROOT, 'examples', 'plugins', 'virtio-blk.js');
const SECTOR = 512;
const DISK_SECTORS = 8192;
const PARTITION = 2048;
const DATA_MARK = 'hvmpt-virtio-blk-sector-2048';

/** A 4 MiB disk: GRUB's boot.img in the MBR with one partition, core.img from sector 1, a marker at the partition's start. */
function grubDisk(dir: string, config: string): string {
  const cfg = join(dir, 'embed.cfg');
  const core = join(dir, 'core.img');
  writeFileSync(cfg, config);
  const mk = run('grub-mkimage', ['-O', 'i386-pc', '-d', '/usr/lib/grub/i386-pc', '-p', '(hd0,msdos1)/boot/grub', '-c', cfg, '-o', core, 'biosdisk', 'part_msdos', 'serial', 'terminal', 'terminfo', 'echo', 'ls', 'hexdump', 'halt']);
  assert.equal(mk.status, 0, mk.stderr);
  const disk = new Uint8Array(DISK_SECTORS * SECTOR);
  const v = new DataView(disk.buffer);
  disk.set(readFileSync('/usr/lib/grub/i386-pc/boot.img'), 0);
  v.setBigUint64(0x5c, 1n, true); // GRUB_BOOT_MACHINE_KERNEL_SECTOR: core.img's first sector
  const coreBytes = readFileSync(core);
  assert.ok(coreBytes.length < (PARTITION - 1) * SECTOR, 'core.img fits before the partition');
  disk.set(coreBytes, SECTOR);
  v.setBigUint64(SECTOR + 500, 2n, true); // diskboot.img's blocklist: the rest of core.img starts at sector 2
  const entry = 0x1be;
  disk[entry] = 0x80;
  disk[entry + 4] = 0x83;
  v.setUint32(entry + 8, PARTITION, true);
  v.setUint32(entry + 12, DISK_SECTORS - PARTITION, true);
  disk.set(new TextEncoder().encode(DATA_MARK), PARTITION * SECTOR);
  for (let i = PARTITION * SECTOR + 512; i < disk.length; i++) disk[i] = (i * 31 + 7) & 0xff;
  const image = join(dir, 'disk.img');
  writeFileSync(image, disk);
  return image;
}

const GRUB_CONFIG = [
  'serial --unit=0 --speed=115200',
  'terminal_input serial',
  'terminal_output serial',
  'echo hvmpt-disk-boot',
  'ls',
  `hexdump -n 28 (hd0)${PARTITION}+1`,
  'echo hvmpt-disk-end',
  'halt',
].join('\n');

test('SeaBIOS boots GRUB from the virtio-blk plug-in, and GRUB reads the disk through it', (t) => {
  if (!skipUnlessKvm(t)) return;
  if (!skipUnlessBootFirmware(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-virtio-blk-'));
  try {
    const image = grubDisk(dir, GRUB_CONFIG);
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: 128M }\npci:\n  plugins:\n    - { name: disk, module: ${PLUGIN}, at: "00:05.0", options: { image: ${image}, readOnly: true } }\nmachine:\n  boot: { kind: disk }\n  timeout: 600\n`);
    const r = hvmpt(['run', plan, '--no-lab', '--firmware-log', join(dir, 'seabios.log'), '--report', join(dir, 'report.json')]);
    assert.equal(r.status, 0, `stderr:\n${r.stderr}\nserial:\n${r.stdout}`);
    const log = readFileSync(join(dir, 'seabios.log'), 'latin1');
    assert.match(log, /found virtio-blk at 00:05\.0/, 'SeaBIOS\'s own virtio-blk driver found the disk');
    assert.match(log, /Booting from Hard Disk/);
    const out = r.stdout.slice(r.stdout.indexOf('hvmpt-disk-boot'));
    assert.match(out, /^\(hd0\)/m, 'GRUB\'s biosdisk sees the disk');
    assert.match(out, /\|hvmpt-virtio-blk\|\s+00000010 .*\|-sector-2048\|/, 'GRUB read sector 2048 through the BIOS disk services');
    assert.match(out, /hvmpt-disk-end/);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { plugins: Array<{ device: string; failed: string | null; dmaRefused: string[] }> };
    assert.deepEqual(report.plugins.map((p) => [p.device, p.failed, p.dmaRefused.length]), [['disk', null, 0]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Linux\'s virtio_blk reads the plug-in\'s disk over MSI-X: sha256 of /dev/vda is the image\'s', { timeout: 2_400_000 }, (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-virtio-blk-linux-'));
  try {
    const image = grubDisk(dir, GRUB_CONFIG);
    const sha = createHash('sha256').update(readFileSync(image)).digest('hex');
    const plan = join(dir, 'plan.yaml');
    const script = 'section sha sha256sum /dev/vda\nsection irq sh -c "grep virtio /proc/interrupts"\nsection size cat /sys/block/vda/size';
    writeFileSync(plan, `memory: { size: 256M }\npci:\n  plugins:\n    - { name: disk, module: ${PLUGIN}, at: "00:05.0", options: { image: ${image}, readOnly: true } }\nmachine:\n  boot: { kind: probe, report: false, modules: [virtio_pci, virtio_blk], script: ${JSON.stringify(script)} }\n  timeout: 1500\n`);
    const r = hvmpt(['run', plan, '--report', join(dir, 'report.json')]);
    assert.equal(r.status, 0, `stderr:\n${r.stderr.slice(-3000)}\nserial:\n${r.stdout.slice(-3000)}`);
    const probe = parseProbeReport(r.stdout);
    assert.equal(probe.sections.get('sha')?.output.trim().split(/\s+/)[0], sha);
    assert.equal(probe.sections.get('size')?.output.trim(), String(DISK_SECTORS));
    assert.match(probe.sections.get('irq')?.output ?? '', /PCI-MSI.*virtio0-requests|virtio0-req/, 'the queue\'s interrupt is an MSI-X vector');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
