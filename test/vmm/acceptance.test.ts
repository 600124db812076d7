import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GRUB_BEGIN_MARK, GRUB_END_MARK, GRUB_SMBIOS_MARK } from '../../src/host/firmware/grub.js';
import { decodeTable, type Madt } from '../../src/hw/acpi/tables/index.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import type { SeenAcpi } from '../../src/vmm/acpi-readback.js';
import { loadPlan } from '../../src/plan/schema.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import type { MappingLogEntry } from '../../src/vmm/pci-runtime.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { merge, show, subtract, type Range } from '../helpers/ranges.js';
import { limitMs, limitS } from '../helpers/limits.js';

/**
 * The issue's end-to-end acceptance, on examples/desktop.yaml (an emulated device, a fake
 * PCI-PCI bridge with a device behind it, a hidden host device, a device with iPXE's ROM, an
 * identity memory layout, hvmpt's generated ACPI tables with an SSDT the plan adds). Firmware
 * nobody here wrote is the witness, in one boot:
 * 1. GRUB's `lspci -i` shows exactly the plan's topology, with the BAR addresses SeaBIOS
 *    assigned; those equal the monitor's update-mapping log, and every one lies in a window
 *    the generated DSDT gives the host bridge;
 * 2. GRUB's `lsmmap` equals the plan's guest E820 (less SeaBIOS's own, known reservations),
 *    the ECAM window the MCFG names reserved in it;
 * 3. GRUB's `lsacpi` lists exactly the tables the generator made for this plan (signature and
 *    OEM table id), every checksum valid, every header field and the MADT's entries as our
 *    bytes decode; the tables the guest's memory holds (found from the RSDP after the run)
 *    are byte for byte the generator's, but for the pointers SeaBIOS's loader relocates; and
 *    GRUB's halt powers off through the FADT's PM1a_CNT with the DSDT's \_S5 type;
 * 4. SeaBIOS's log shows the option ROM run and no errors.
 */
const PLAN = join(REPO_ROOT, 'examples', 'desktop.yaml');

interface GrubDevice {
  readonly bdf: string;
  readonly ids: string;
  readonly cls: string;
  readonly bars: Map<number, bigint>;
}

function parseLspci(lines: string[]): GrubDevice[] {
  const out: GrubDevice[] = [];
  for (const line of lines) {
    const dev = /^([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ([0-9a-f]{4}:[0-9a-f]{4}) \[([0-9a-f]{4})\]/.exec(line);
    if (dev !== null) {
      out.push({ bdf: dev[1]!, ids: dev[2]!, cls: dev[3]!, bars: new Map() });
      continue;
    }
    const bar = /^\s+(?:IO space|32-bit memory space|64-bit memory space) (\d) at 0x([0-9a-f]+)/.exec(line);
    if (bar !== null) out[out.length - 1]!.bars.set(Number(bar[1]), BigInt('0x' + bar[2]!));
  }
  return out;
}

/** GRUB's terminal wraps at 80 columns: a line of exactly 80 characters goes on in the next. */
function unwrap(lines: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (line.length === 80 && i + 1 < lines.length) line += lines[++i]!;
    out.push(line);
  }
  return out;
}

/** One table in GRUB's lsacpi: signature, length, revision, checksum, OEM ID, table ID, OEM revision, creator and its revision. */
const LSACPI_LINE = /^(.{4}) +(\d+)B rev=(\d+) chksum=0x([0-9a-f]{2}) \((valid|invalid)\) OEM=(.{6}) (.{8}) OEMrev=([0-9a-f]{8}) (.{4})  ([0-9a-f]{8})$/;

const h = (v: number, digits: number): string => v.toString(16).padStart(digits, '0');

/** The lines GRUB's lsacpi prints for a MADT (grub-core/commands/lsacpi.c's format). */
function grubMadt(madt: Madt): string[] {
  const lines = [`Local APIC=${h(madt.localApicAddress, 8)}  Flags=${h(madt.flags, 8)}`];
  for (const e of madt.entries) {
    if (e.type === 'localApic') lines.push(`  LAPIC ACPI_ID=${h(e.processorUid, 2)} APIC_ID=${h(e.apicId, 2)} Flags=${h(e.flags, 8)}`);
    else if (e.type === 'ioApic') lines.push(`  IOAPIC ID=${h(e.ioApicId, 2)} address=${h(e.address, 8)} GSI=${h(e.gsiBase, 8)}`);
    else if (e.type === 'interruptOverride') lines.push(`  Int Override bus=${e.bus.toString(16)} src=${e.source.toString(16)} GSI=${h(e.gsi, 8)} Flags=${h(e.flags, 4)}`);
    else if (e.type === 'localApicNmi') lines.push(`  LAPIC_NMI ACPI_ID=${h(e.processorUid, 2)} Flags=${h(e.flags, 4)} lint=${h(e.lint, 2)}`);
    else lines.push(`(a ${e.type} entry this test does not format)`);
  }
  return lines;
}

test('acceptance: examples/desktop.yaml through SeaBIOS and GRUB — PCI topology and BARs, E820, ACPI, option ROM', { timeout: limitMs(300_000) }, (t) => {
  if (!skipUnlessKvm(t)) return;
  if (!skipUnlessBootFirmware(t)) return;
  // What the plan says, composed here without booting anything.
  const plan = loadPlan(PLAN);
  const composed = composePlanFile(PLAN, plan);

  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-accept-'));
  let serial: string;
  let debug: string;
  let report: { reason: { kind: string }; barMappings: MappingLogEntry[]; deviceFaults: unknown[]; fwCfgRefusals: string[]; acpi: SeenAcpi; vcpuExits: number[] };
  let stderr: string;
  try {
    const r = hvmpt(['run', PLAN, '--timeout', String(limitS(240)), '--firmware-log', join(dir, 'seabios.log'), '--report', join(dir, 'report.json')]);
    serial = r.stdout.replace(/\r/g, '');
    debug = readFileSync(join(dir, 'seabios.log'), 'latin1');
    report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as typeof report;
    stderr = r.stderr;
    assert.equal(r.status, 0, `stderr:\n${r.stderr}\nserial:\n${serial}\nlog:\n${debug}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(report.reason.kind, 'poweroff');
  assert.deepEqual(report.deviceFaults, []);
  assert.deepEqual(report.fwCfgRefusals, []);
  const body = unwrap(serial.slice(serial.indexOf(GRUB_BEGIN_MARK) + GRUB_BEGIN_MARK.length, serial.indexOf(GRUB_END_MARK)).split('\n'));
  const mmapAt = body.findIndex((l) => l.startsWith('base_addr'));
  const acpiAt = body.findIndex((l) => /RSDP/.test(l));
  const lspci = parseLspci(body.slice(0, mmapAt));

  // 1. The topology: every function the plan makes visible, at the address firmware numbered it, nothing else.
  const topology = composed.pci.topology;
  const expected = topology
    .reachable()
    .map(({ fn, bdf }) => `${formatBdf(bdf)} ${fn.read(0, 2).toString(16).padStart(4, '0')}:${fn.read(2, 2).toString(16).padStart(4, '0')} [${(fn.read(0x0a, 2)).toString(16).padStart(4, '0')}]`)
    .sort();
  assert.deepEqual(lspci.map((d) => `${d.bdf} ${d.ids} [${d.cls}]`).sort(), expected);
  for (const hidden of composed.pci.hidden) {
    const ids = `${hidden.fn.read(0, 2).toString(16).padStart(4, '0')}:${hidden.fn.read(2, 2).toString(16).padStart(4, '0')}`;
    assert.ok(!lspci.some((d) => d.ids === ids), `hidden ${ids} must not be on the guest's bus`);
  }
  assert.ok(lspci.some((d) => d.ids === '1b36:0001'), 'the fake bridge');
  assert.ok(lspci.some((d) => d.ids === '1234:11e8' && d.bdf.startsWith('01:')), 'the emulated device behind it');
  // BARs: the last mapping the monitor logged for each endpoint BAR is what GRUB reads. (GRUB
  // reads a bridge's bus numbers and windows as if they were BARs 2-5, so bridges are skipped.)
  const finalMap = new Map<string, bigint | null>();
  for (const m of report.barMappings) if (m.bar !== 'rom') finalMap.set(`${m.bdf}#${m.bar}`, m.new === null ? null : BigInt(m.new.address));
  let compared = 0;
  for (const d of lspci.filter((x) => x.cls !== '0604')) {
    for (const [bar, address] of d.bars) {
      assert.equal(finalMap.get(`${d.bdf}#${bar}`), address, `${d.bdf} BAR${bar}: GRUB reads 0x${address.toString(16)}, the mapping log says ${String(finalMap.get(`${d.bdf}#${bar}`))}`);
      compared++;
    }
  }
  const mappedNow = [...finalMap.entries()].filter(([, a]) => a !== null).length;
  assert.equal(compared, mappedNow, 'every BAR the monitor mapped is one GRUB lists');
  assert.ok(compared >= 6, `BARs compared: ${compared}`);
  // Each lies in a window the DSDT's host bridge _CRS declares (the monitor logs which).
  const placed = report.barMappings.filter((m) => m.new !== null);
  assert.ok(placed.length >= compared && placed.every((m) => m.window !== undefined && m.window !== 'outside'), placed.map((m) => `${m.device} ${m.bar} ${m.new?.address} ${m.window}`).join('\n'));

  // 2. The memory map: GRUB's lsmmap against the plan's E820, SeaBIOS's own areas aside.
  const grubMap = body.slice(mmapAt, acpiAt).flatMap((l) => {
    const m = /^base_addr = 0x([0-9a-f]+), length = 0x([0-9a-f]+), (available|reserved) RAM/.exec(l);
    return m === null ? [] : [{ start: BigInt('0x' + m[1]!), end: BigInt('0x' + m[1]!) + BigInt('0x' + m[2]!), ram: m[3] === 'available' }];
  });
  const planRam = composed.e820.filter((e) => e.type === 'usable');
  const planHoles = composed.e820.filter((e) => e.type !== 'usable');
  const lowRamTop = planRam.filter((r) => r.end <= 1n << 32n).reduce((a, r) => (r.end > a ? r.end : a), 0n);
  // SeaBIOS reserves its EBDA below 640K, owns the legacy window 640K-1M (it lists only its
  // own 0xF0000 segment there), reserves its ROM below 4G and the top of RAM below 4G for the
  // tables it builds (never more than a MiB here).
  const firmwareAreas: Range[] = [
    { start: 0x9fc00n, end: 0xa0000n },
    { start: 0xa0000n, end: 0x100000n },
    { start: 0xfffc0000n, end: 1n << 32n },
    { start: lowRamTop - 0x100000n, end: lowRamTop },
  ];
  const grubRam = merge(grubMap.filter((e) => e.ram));
  const grubReserved = merge(grubMap.filter((e) => !e.ram));
  assert.deepEqual(show(subtract(grubRam, firmwareAreas)), show(subtract(merge(planRam), firmwareAreas)), 'RAM');
  assert.deepEqual(show(subtract(grubReserved, firmwareAreas)), show(subtract(merge(planHoles), firmwareAreas)), 'holes');
  const carved = subtract(merge(planRam), grubRam);
  assert.ok(carved.every((c) => firmwareAreas.some((f) => f.start <= c.start && c.end <= f.end)), `RAM SeaBIOS took: ${show(carved).join(' ')}`);

  // The ECAM window the MCFG names is reserved, as the plan's E820 has it.
  const ecam = BigInt(composed.config.pci!.ecamBase);
  assert.ok(grubReserved.some((r) => r.start <= ecam && ecam + 0x1000_0000n <= r.end), `ECAM at 0x${ecam.toString(16)} reserved`);

  // 3. ACPI: the RSDP, the XSDT the loader built, then exactly the tables the generator made.
  const smbiosAt = body.indexOf(GRUB_SMBIOS_MARK);
  assert.ok(smbiosAt > acpiAt, 'GRUB printed its SMBIOS lines after lsacpi');
  const acpi = body.slice(acpiAt, smbiosAt);
  assert.ok(acpi.some((l) => /^RSDPv2 signature:RSD PTR  chksum:[0-9a-f]+ \(valid\)/.test(l)));
  const listed = acpi.flatMap((l) => {
    const m = LSACPI_LINE.exec(l);
    return m === null ? [] : [{ sig: m[1]!, length: Number(m[2]), rev: Number(m[3]), checksum: parseInt(m[4]!, 16), valid: m[5] === 'valid', oemId: m[6]!, tableId: m[7]!, oemRev: parseInt(m[8]!, 16), creator: m[9]!, creatorRev: parseInt(m[10]!, 16) }];
  });
  const guest = composed.acpi;
  assert.equal(guest.source, 'generated');
  const inXsdt = guest.tables.filter((t) => t.signature !== 'DSDT' && t.signature !== 'FACS');
  assert.deepEqual(
    listed.map((l) => `${l.sig} ${l.tableId.trimEnd()} ${l.valid ? 'valid' : 'invalid'}`),
    ['XSDT HVMPT valid', ...inXsdt.map((t) => `${t.signature} ${t.oemTableId.trimEnd()} valid`)],
  );
  assert.deepEqual(inXsdt.map((t) => t.signature), ['FACP', 'APIC', 'MCFG', 'SSDT'], 'FADT, MADT, MCFG and the plan\'s SSDT');
  assert.ok(inXsdt.some((t) => t.signature === 'SSDT' && t.origin === 'plan' && t.oemTableId.trimEnd() === 'FWCFG'));
  // Every header field GRUB prints is what our bytes say (a checksum the loader fixes excepted: the FADT's).
  for (const [i, t] of inXsdt.entries()) {
    const l = listed[i + 1]!;
    const h = decodeTable(t.bytes);
    const header = 'header' in h ? h.header : undefined;
    assert.ok(header !== undefined);
    assert.deepEqual(
      [l.length, l.rev, l.oemId, l.tableId, l.oemRev, l.creator, l.creatorRev],
      [t.bytes.length, header.revision, header.oemId.padEnd(6), header.oemTableId.padEnd(8), header.oemRevision, header.creatorId.padEnd(4), header.creatorRevision],
      t.signature,
    );
    if (t.signature !== 'FACP') assert.equal(l.checksum, t.bytes[9], `${t.signature} checksum`);
  }
  // The MADT as GRUB decodes it: our vCPU's Local APIC, KVM's IOAPIC, our overrides and NMI.
  const madt = decodeTable(inXsdt.find((t) => t.signature === 'APIC')!.bytes) as Madt;
  const madtAt = acpi.findIndex((l) => l.startsWith('Local APIC='));
  assert.deepEqual(acpi.slice(madtAt, madtAt + 1 + madt.entries.length), grubMadt(madt));
  const cpus = plan.machine.cpus;
  assert.equal(cpus, 2, 'the desktop plan has two vCPUs');
  assert.deepEqual(madt.entries.flatMap((e) => (e.type === 'localApic' ? [e.apicId] : [])), [0, 1], 'a Local APIC per vCPU, APIC ID = vCPU ID');
  assert.ok(madt.entries.some((e) => e.type === 'ioApic' && e.address === 0xfec0_0000 && e.ioApicId === 0), "KVM's in-kernel IOAPIC");

  // Byte for byte: what the guest's memory holds (the monitor reads it from the RSDP on) is
  // what the generator made; the FADT differs only in the DSDT and FACS pointers SeaBIOS's
  // loader relocated (and its checksum), and those point at our DSDT and FACS.
  assert.deepEqual(report.acpi.problems, []);
  const seen = report.acpi.tables.map((x) => ({ ...x, data: new Uint8Array(Buffer.from(x.bytes, 'base64')) }));
  assert.ok(seen.every((x) => x.checksumValid), 'every table in guest memory has a valid checksum');
  assert.deepEqual(seen.map((x) => x.signature).sort(), ['XSDT', ...guest.tables.map((t) => t.signature)].sort());
  const at = (sig: string): (typeof seen)[number] => seen.find((x) => x.signature === sig)!;
  for (const t of guest.tables) {
    const got = at(t.signature).data;
    if (t.signature !== 'FACP') {
      assert.ok(Buffer.from(got).equals(Buffer.from(t.bytes)), `${t.signature} in guest memory is the generator's, byte for byte`);
      continue;
    }
    const want = Uint8Array.from(t.bytes);
    const v = new DataView(want.buffer);
    v.setUint32(36, Number(at('FACS').address), true);
    v.setUint32(40, Number(at('DSDT').address), true);
    v.setBigUint64(140, BigInt(at('DSDT').address), true);
    want[9] = got[9]!;
    assert.ok(Buffer.from(got).equals(Buffer.from(want)), 'the FADT in guest memory is the generator\'s with the loader\'s pointers');
  }
  // GRUB read those very tables: the XSDT at the address the RSDP gives, and the same checksums.
  const xsdtLine = acpi.find((l) => /XSDT=[0-9a-f]{16}/.test(l));
  assert.equal(BigInt('0x' + /XSDT=([0-9a-f]{16})/.exec(xsdtLine ?? '')![1]!), BigInt(at('XSDT').address));
  for (const l of listed) assert.equal(l.checksum, at(l.sig).data[9], `${l.sig}: GRUB's checksum is the one in guest memory`);
  // GRUB's halt found \_S5 in our DSDT and wrote it to the FADT's PM1a_CNT: a clean power-off.
  assert.equal(report.reason.kind, 'poweroff');
  assert.match(stderr, new RegExp(`guest powered off \\(ACPI PM1a_CNT SLP_EN with SLP_TYP ${guest.pm.s5SleepType} \\(S5\\)\\)`));

  // The SMBIOS SeaBIOS installed from fw_cfg is the plan's: GRUB's smbios command reads the
  // system structure's manufacturer, product, serial and UUID (byte order included).
  const smbios = composed.config.fwCfgFiles?.some((f) => f.name === 'etc/smbios/smbios-tables');
  assert.ok(smbios, 'the monitor hands SMBIOS to the firmware');
  const planned = loadPlan(PLAN).machine.smbios;
  assert.ok(planned !== false && planned !== undefined);
  assert.deepEqual(body.slice(smbiosAt + 1, smbiosAt + 5), [planned.manufacturer, planned.product, planned.serial, planned.uuid]);
  // ... and the processor structure's core and thread counts: the vCPUs are one package's cores.
  assert.deepEqual(body.slice(smbiosAt + 5, smbiosAt + 7).map(Number), [cpus, cpus]);
  // SeaBIOS started every vCPU (INIT/SIPI through KVM's LAPICs) and counted them; each ran
  // in its own thread, the others' port exits served by the boot vCPU's.
  assert.match(debug, new RegExp(`^Found ${cpus} cpu\\(s\\) max supported ${cpus} cpu\\(s\\)$`, 'm'));
  assert.equal(report.vcpuExits.length, cpus);
  assert.ok(report.vcpuExits.every((n) => n > 0), `every vCPU ran: ${report.vcpuExits.join(', ')} exits`);

  // 4. SeaBIOS ran the e1000's iPXE ROM (its boot entry is for the device at slot 3) and reported no errors.
  assert.match(debug, /Running option rom at c[0-9a-f]00:0003/);
  assert.match(debug, /Searching bootorder for: \/pci@i0cf8\/\*@3/);
  const rom = report.barMappings.filter((m) => m.device === 'nic' && m.bar === 'rom');
  assert.ok(rom.some((m) => m.new !== null && m.action !== 'refused' && m.action !== 'unbacked'), 'the ROM BAR was served while SeaBIOS copied it');
  assert.doesNotMatch(debug, /WARNING|ERROR|timeout|fail|unknown scancode|panic/i);
});
