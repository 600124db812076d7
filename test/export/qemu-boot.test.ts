/**
 * The QEMU export, run for real: the emulated part of examples/desktop.yaml (its bus without the
 * functions replayed from a capture, its SSDT, SMBIOS and the e1000's iPXE ROM) plus one
 * placeholder per other QEMU model hvmpt maps, exported with `hvmpt export --to qemu` and run by
 * qemu-system-x86_64 (TCG) as exported, booting the probe guest (Debian's kernel and the guest
 * harness's initrd, which the export writes out as files). Linux is the oracle: it must see the planned topology and IDs, each QEMU model as
 * src/export/qemu-models.ts describes it (IDs, class, revision, pin, BAR sizes, ROM, MSI/MSI-X),
 * the plan's SSDT byte for byte among its ACPI tables with no ACPI error, and the plan's SMBIOS.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { QEMU_MODELS } from '../../src/export/qemu-models.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import { CAP_MSI, CAP_MSIX, walkCapabilities } from '../../src/hw/pci/capabilities.js';
import { bootGuest } from '../../src/host/guest/index.js';
import { skipUnlessBootFirmware, skipUnlessCommand } from '../helpers/require.js';
import { DESKTOP, exportIn, scratch } from './helpers.js';

const work = scratch('hvmpt-qemu-boot-');

/** Slots for the models desktop.yaml does not already use (it has e1000 at 03.0 and edu behind 05.0). */
const EXTRA_SLOTS = [6, 7, 8, 9, 10];

interface GuestFunction {
  readonly bdf: string;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystem: number;
  readonly classCode: number;
  readonly revision: number;
  readonly config: Uint8Array;
  /** Sizes of BAR 0-5 and the ROM (index 6), 0 for none. */
  readonly sizes: bigint[];
}

function guestFunctions(pci: string, resources: string, config: string): Map<string, GuestFunction> {
  const res = new Map<string, bigint[]>();
  let current: string | undefined;
  for (const line of resources.split('\n')) {
    if (/^0000:/.test(line)) {
      current = line.trim();
      res.set(current, []);
    } else if (current !== undefined && /^0x/.test(line)) {
      const [start, end] = line.trim().split(/\s+/).map((x) => BigInt(x));
      const sizes = res.get(current)!;
      if (sizes.length < 7) sizes.push(end! > start! || (end === start && start !== 0n) ? end! - start! + 1n : 0n);
    }
  }
  const cfg = new Map(config.split('\n').filter((l) => /^0000:/.test(l)).map((l) => {
    const [bdf, ...bytes] = l.trim().split(/\s+/);
    return [bdf!, Uint8Array.from(bytes.map((b) => parseInt(b, 16)))] as const;
  }));
  const out = new Map<string, GuestFunction>();
  for (const line of pci.split('\n').filter((l) => /^0000:/.test(l))) {
    const [bdf, vendor, device, sv, sd, cls, rev] = line.trim().split(/\s+/);
    out.set(bdf!.replace(/^0000:/, ''), {
      bdf: bdf!,
      vendor: Number(vendor),
      device: Number(device),
      subsystemVendor: Number(sv),
      subsystem: Number(sd),
      classCode: Number(cls),
      revision: Number(rev),
      config: cfg.get(bdf!) ?? new Uint8Array(0),
      sizes: res.get(bdf!) ?? [],
    });
  }
  return out;
}

// The test's time includes the wait for a guest slot (other boots on this machine): generous.
test('the QEMU export of the desktop bus boots under QEMU: Linux sees the planned bus, each QEMU model as mapped, the plan\'s SSDT and SMBIOS', { timeout: 3_600_000 }, async (t) => {
  if (!skipUnlessCommand(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!skipUnlessBootFirmware(t, false)) return;
  // The probe guest (Debian's kernel, a busybox initrd hvmpt builds) runs this instead of its report.
  const script = String.raw`
pcilist() { for d in /sys/bus/pci/devices/*; do echo "$(basename $d) $(cat $d/vendor) $(cat $d/device) $(cat $d/subsystem_vendor) $(cat $d/subsystem_device) $(cat $d/class) $(cat $d/revision)"; done; }
resources() { for d in /sys/bus/pci/devices/*; do basename $d; head -n 7 $d/resource; done; }
configs() { for d in /sys/bus/pci/devices/*; do echo "$(basename $d) $(od -An -tx1 -v -N 256 $d/config | tr -s '\n ' '  ')"; done; }
ssdts() { for f in /sys/firmware/acpi/tables/SSDT*; do echo "$(basename $f) $(od -An -tx1 -v $f | tr -s '\n ' '  ')"; done; }
dmi() { for k in sys_vendor product_name product_serial product_uuid chassis_vendor; do echo "$k=$(cat /sys/class/dmi/id/$k)"; done; }
acpierrors() { dmesg | grep -E 'ACPI (Error|Exception|BIOS Error)'; return 0; }
section pci pcilist
section resources resources
section config configs
section ssdt ssdts
section dmi dmi
section acpierrors acpierrors
`;

  // The desktop example's emulated bus, without what it replays from the ASUS capture.
  const desktop = parse(readFileSync(DESKTOP, 'utf8')) as { pci: { bridges: unknown[]; emulated: unknown[] }; acpi: unknown; machine: { roms: unknown[]; smbios: unknown } };
  const extra = QEMU_MODELS.filter((m) => m.device !== 'e1000' && m.device !== 'edu').map((m, i) => ({
    name: `m-${m.device}`,
    at: `00:${EXTRA_SLOTS[i]!.toString(16).padStart(2, '0')}.0`,
    model: 'generic',
    options: {
      vendor: m.ids.vendorId,
      device: m.ids.deviceId,
      class: m.ids.classCode,
      revision: m.ids.revision,
      subsystemVendor: m.ids.subsystemVendorId,
      subsystem: m.ids.subsystemId,
      interruptPin: m.pin === 0 ? 'none' : 'ABCD'[m.pin - 1],
      bars: m.bars.map((b) => ({ bar: b.index, kind: b.kind, size: Number(b.size) })),
      // A ROM BAR with no file: the export keeps the model's default ROM, whose size the guest shows.
      ...(m.defaultRom === undefined ? {} : { romSize: Number(m.defaultRom) }),
    },
  }));
  const plan = {
    name: 'desktop-emulated',
    memory: { size: '256M' },
    pci: { bridges: desktop.pci.bridges, emulated: [...desktop.pci.emulated, ...extra] },
    acpi: desktop.acpi,
    machine: { roms: desktop.machine.roms, smbios: desktop.machine.smbios, serial: 'stdout', boot: { kind: 'probe', script, report: false } },
  };
  const planFile = join(work, 'desktop-emulated.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const filesDir = join(work, 'files');
  const e = exportIn(planFile, 'qemu', { filesDir });
  mkdirSync(filesDir, { recursive: true });
  for (const f of e.files) writeFileSync(join(filesDir, f.name), f.bytes);
  // Nothing of this bus is dropped: every note is about the machine or a model's registers.
  assert.deepEqual(e.notes.filter((n) => /^cannot express: pci\.emulated\[\d+\]: .* no QEMU device model/.test(n)), []);
  const args = e.text.trimEnd().split('\n');
  // This machine's /dev/kvm may not run a paging kernel: software emulation instead.
  args[args.indexOf('-accel') + 1] = 'tcg';
  const run = await bootGuest({ commandLine: args, timeoutMs: 600_000 });
  assert.equal(run.rc, 0, run.output.slice(-3000));

  const seen = guestFunctions(run.section('pci'), run.section('resources'), run.section('config'));
  const visible = e.model.functions.filter((f) => !f.hidden);
  // The topology: the planned functions at their planned addresses, and QEMU's pc extras (noted).
  assert.deepEqual([...seen.keys()].sort(), [...visible.map((f) => formatBdf(f.bdf)), '00:01.1', '00:01.3'].sort());
  assert.ok(e.notes.some((n) => n.startsWith('differs: pci: QEMU\'s pc machine also has 00:01.1')));
  for (const f of visible) {
    const g = seen.get(formatBdf(f.bdf))!;
    const ids = f.ids!;
    assert.deepEqual([g.vendor, g.device, g.classCode >> 8], [ids.vendorId, ids.deviceId, ids.classCode >> 8], `${f.id}: IDs and class`);
    if (f.kind === 'chipset' || f.bridge) continue;
    const m = QEMU_MODELS.find((x) => x.ids.vendorId === ids.vendorId && x.ids.deviceId === ids.deviceId)!;
    // The model table against Linux: the model is what the table says it is.
    assert.deepEqual([g.subsystemVendor, g.subsystem, g.classCode, g.revision], [m.ids.subsystemVendorId, m.ids.subsystemId, m.ids.classCode, m.ids.revision], `${m.device}: subsystem, class, revision`);
    assert.equal(g.config[0x3d], m.pin, `${m.device}: interrupt pin`);
    const bars = [0, 1, 2, 3, 4, 5].map((i) => m.bars.find((b) => b.index === i)?.size ?? 0n);
    assert.deepEqual(g.sizes.slice(0, 6), bars, `${m.device}: BAR sizes`);
    const caps = walkCapabilities((o, s) => (s === 1 ? g.config[o]! : s === 2 ? g.config[o]! | (g.config[o + 1]! << 8) : new DataView(g.config.buffer).getUint32(o, true)), g.config.length, 0).caps;
    assert.deepEqual([caps.some((c) => c.id === CAP_MSI), caps.some((c) => c.id === CAP_MSIX)], [m.msi, m.msix], `${m.device}: MSI, MSI-X`);
    // And the plan's own BAR sizes where the plan and the model agree (the notes name any other).
    for (const b of f.bars.filter((x) => x.index < 6)) assert.equal(g.sizes[b.index], b.size, `${f.id}: BAR${b.index}`);
    const rom = f.bars.find((b) => b.index === 6)?.size ?? 0n;
    assert.equal(g.sizes[6], rom, `${f.id}: ROM BAR`);
  }

  // The plan's SSDT, byte for byte, among the tables Linux loaded; no ACPI errors.
  const ssdt = e.files.find((f) => f.name.startsWith('acpi-0-ssdt'))!;
  const tables = run.section('ssdt').split('\n').filter((l) => l.startsWith('SSDT')).map((l) => Uint8Array.from(l.trim().split(/\s+/).slice(1).map((b) => parseInt(b, 16))));
  assert.ok(tables.some((x) => Buffer.from(x).equals(Buffer.from(ssdt.bytes))), `the guest's SSDTs do not include ${ssdt.what}`);
  assert.equal(run.section('acpierrors').trim(), '');

  const dmi = Object.fromEntries(run.section('dmi').trim().split('\n').map((l) => l.split('=') as [string, string]));
  assert.deepEqual(dmi, {
    sys_vendor: 'hvmpt',
    product_name: 'Desktop pass-through example',
    product_serial: 'DESKTOP-0001',
    product_uuid: '68766d70-0000-4000-8000-000000000001',
    chassis_vendor: 'hvmpt',
  });
});
