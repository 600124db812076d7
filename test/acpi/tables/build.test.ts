import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checksumOk } from '../../../src/hw/acpi/checksum.js';
import { formatAcpidump, parseAcpidump } from '../../../src/hw/acpi/dump/acpidump.js';
import { AcpiEncodeError } from '../../../src/hw/acpi/errors.js';
import type { Dmar } from '../../../src/hw/acpi/tables/dmar.js';
import type { Facs } from '../../../src/hw/acpi/tables/facs.js';
import { FadtBootArch, FadtFlag, type Fadt } from '../../../src/hw/acpi/tables/fadt.js';
import { tableHeader } from '../../../src/hw/acpi/tables/header.js';
import type { Hpet } from '../../../src/hw/acpi/tables/hpet.js';
import type { Ivrs } from '../../../src/hw/acpi/tables/ivrs.js';
import { MADT_CPU_ENABLED, MADT_PCAT_COMPAT, intiFlags, type Madt } from '../../../src/hw/acpi/tables/madt.js';
import type { Mcfg } from '../../../src/hw/acpi/tables/mcfg.js';
import type { Rsdp } from '../../../src/hw/acpi/tables/rsdp.js';
import type { Rsdt, Xsdt } from '../../../src/hw/acpi/tables/sdt.js';
import type { Slit } from '../../../src/hw/acpi/tables/slit.js';
import type { Srat } from '../../../src/hw/acpi/tables/srat.js';
import { decodeTable, encodeTable, readTableHeader, tableChecksumOk, traceTable, type AcpiTable } from '../../../src/hw/acpi/tables/table.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { run } from '../../helpers/run.js';
import { NAMES, compareFields, parseAcpicaFields, parseTemplateFields, rsdpSource } from './acpica.js';
import { compile, disassemble, scratch } from './iasl.js';

/**
 * Tables built from typed values, as the guest-table generator will build them: lengths and
 * checksums are computed, and ACPICA (iasl) must read them the way the model says — then
 * compile its own disassembly back to the very same bytes.
 */

const gas = (spaceId: number, bitWidth: number, address: bigint) => ({ spaceId, bitWidth, bitOffset: 0, accessSize: 0, address });

const madt: Madt = {
  kind: 'madt',
  header: tableHeader('APIC', 5),
  localApicAddress: 0xfee00000,
  flags: MADT_PCAT_COMPAT,
  entries: [
    ...[0, 1, 2, 3].map((i) => ({ type: 'localApic' as const, processorUid: i, apicId: i, flags: MADT_CPU_ENABLED })),
    { type: 'ioApic', ioApicId: 0, address: 0xfec00000, gsiBase: 0 },
    { type: 'interruptOverride', bus: 0, source: 0, gsi: 2, flags: intiFlags('conforms', 'conforms') },
    { type: 'interruptOverride', bus: 0, source: 9, gsi: 9, flags: intiFlags('high', 'level') },
    { type: 'localApicNmi', processorUid: 0xff, flags: intiFlags('conforms', 'conforms'), lint: 1 },
    { type: 'localX2apic', x2apicId: 0x100, flags: MADT_CPU_ENABLED, processorUid: 4 },
    { type: 'localX2apicNmi', flags: 0, processorUid: 0xffffffff, lint: 1 },
  ],
};

const fadt6: Fadt = {
  kind: 'fadt',
  header: tableHeader('FACP', 6, { oemTableId: 'GUEST' }),
  firmwareCtrl: 0x7ffe0000,
  dsdt: 0x7ffe0040,
  preferredPmProfile: 0,
  sciInterrupt: 9,
  smiCommand: 0xb2,
  acpiEnable: 0xf1,
  acpiDisable: 0xf0,
  s4biosRequest: 0,
  pstateControl: 0,
  pm1aEventBlock: 0x600,
  pm1bEventBlock: 0,
  pm1aControlBlock: 0x604,
  pm1bControlBlock: 0,
  pm2ControlBlock: 0,
  pmTimerBlock: 0x608,
  gpe0Block: 0x620,
  gpe1Block: 0,
  pm1EventLength: 4,
  pm1ControlLength: 2,
  pm2ControlLength: 0,
  pmTimerLength: 4,
  gpe0BlockLength: 16,
  gpe1BlockLength: 0,
  gpe1Base: 0,
  cstControl: 0,
  c2Latency: 0xfff,
  c3Latency: 0xfff,
  flushSize: 0,
  flushStride: 0,
  dutyOffset: 0,
  dutyWidth: 0,
  dayAlarm: 0,
  monthAlarm: 0,
  century: 0x32,
  iapcBootArch: FadtBootArch.i8042,
  flags: FadtFlag.wbinvd | FadtFlag.procC1 | FadtFlag.sleepButton | FadtFlag.rtcS4 | FadtFlag.resetRegSup | FadtFlag.usePlatformClock,
  resetRegister: gas(1, 8, 0xcf9n),
  resetValue: 0x0f,
  armBootArch: 0,
  minorRevision: 3,
  xFirmwareCtrl: 0n,
  xDsdt: 0x7ffe0040n,
  xPm1aEventBlock: gas(1, 32, 0x600n),
  xPm1bEventBlock: gas(0, 0, 0n),
  xPm1aControlBlock: gas(1, 16, 0x604n),
  xPm1bControlBlock: gas(0, 0, 0n),
  xPm2ControlBlock: gas(0, 0, 0n),
  xPmTimerBlock: gas(1, 32, 0x608n),
  xGpe0Block: gas(1, 128, 0x620n),
  xGpe1Block: gas(0, 0, 0n),
  sleepControlRegister: gas(0, 0, 0n),
  sleepStatusRegister: gas(0, 0, 0n),
  hypervisorVendorId: 0x54504d5648n, // "HVMPT"
};

/** An ACPI 1.0 FADT: the same registers, and nothing after `flags`. */
const fadt1: Fadt = (() => {
  const { kind, header, firmwareCtrl, dsdt, preferredPmProfile, sciInterrupt, smiCommand, acpiEnable, acpiDisable } = fadt6;
  const rest = Object.fromEntries(
    Object.entries(fadt6).filter(([k]) => !/^(reset|arm|minor|x[A-Z]|sleep|hypervisor)/.test(k) && !['kind', 'header'].includes(k)),
  ) as Omit<Fadt, 'kind' | 'header'>;
  return { ...rest, kind, header: { ...header, revision: 1 }, firmwareCtrl, dsdt, preferredPmProfile, sciInterrupt, smiCommand, acpiEnable, acpiDisable };
})();

const mcfg: Mcfg = { kind: 'mcfg', header: tableHeader('MCFG', 1), allocations: [{ baseAddress: 0xb0000000n, segment: 0, startBus: 0, endBus: 0xff }] };

const hpet: Hpet = {
  kind: 'hpet',
  header: tableHeader('HPET', 1),
  eventTimerBlockId: 0x8086a201,
  baseAddress: gas(0, 64, 0xfed00000n),
  hpetNumber: 0,
  minimumTick: 0x80,
  pageProtection: 0,
};

const dmar: Dmar = {
  kind: 'dmar',
  header: tableHeader('DMAR', 1),
  hostAddressWidth: 38,
  flags: 1,
  structures: [
    {
      type: 'drhd',
      flags: 1,
      size: 0,
      segment: 0,
      registerBaseAddress: 0xfed90000n,
      scopes: [
        { scopeType: 3, flags: 0, enumerationId: 2, startBus: 0xf0, path: [{ device: 0x1f, function: 0 }] },
        { scopeType: 4, flags: 0, enumerationId: 0, startBus: 0, path: [{ device: 0x1f, function: 7 }] },
      ],
    },
    {
      type: 'rmrr',
      segment: 0,
      baseAddress: 0x7d000000n,
      endAddress: 0x7f7fffffn,
      scopes: [{ scopeType: 1, flags: 0, enumerationId: 0, startBus: 0, path: [{ device: 0x1c, function: 4 }, { device: 0, function: 0 }] }],
    },
    { type: 'atsr', flags: 0, segment: 0, scopes: [{ scopeType: 2, flags: 0, enumerationId: 0, startBus: 0, path: [{ device: 3, function: 0 }] }] },
    { type: 'rhsa', registerBaseAddress: 0xfed90000n, proximityDomain: 1 },
    { type: 'andd', deviceNumber: 1, objectName: '\\_SB.PCI0.I2C0\u0000' },
  ],
};

const ivrs: Ivrs = {
  kind: 'ivrs',
  header: tableHeader('IVRS', 2),
  ivInfo: 0x00203041,
  blocks: [
    {
      type: 'ivhd',
      blockType: 0x10,
      flags: 0xb0,
      deviceId: 0x0002,
      capabilityOffset: 0x40,
      baseAddress: 0xfd300000n,
      segment: 0,
      iommuInfo: 0,
      featureInfo: 0x80048f6e,
      entries: [
        { form: 'device4', entryType: 3, deviceId: 0x0008, dataSetting: 0 },
        { form: 'device4', entryType: 4, deviceId: 0xfffe, dataSetting: 0 },
        { form: 'alias', entryType: 0x43, deviceId: 0xff00, dataSetting: 0, sourceDeviceId: 0x00a5 },
        { form: 'device4', entryType: 4, deviceId: 0xffff, dataSetting: 0 },
        { form: 'device8', entryType: 0x46, deviceId: 0x0100, dataSetting: 0, data: 0x80000000 },
        { form: 'special', entryType: 0x48, deviceId: 0, dataSetting: 0xd7, handle: 0x21, sourceDeviceId: 0x00a0, variety: 1 },
        { form: 'special', entryType: 0x48, deviceId: 0, dataSetting: 0, handle: 0, sourceDeviceId: 0x00a0, variety: 2 },
      ],
    },
    { type: 'ivmd', blockType: 0x21, flags: 0x07, deviceId: 0x0010, auxData: 0, startAddress: 0x9d000000n, memoryLength: 0x100000n },
  ],
};

const srat: Srat = {
  kind: 'srat',
  header: tableHeader('SRAT', 3),
  tableRevision: 1,
  entries: [
    { type: 'processorAffinity', proximityDomainLow: 0, apicId: 0, flags: 1, localSapicEid: 0, proximityDomainHigh: 0, clockDomain: 0 },
    { type: 'processorAffinity', proximityDomainLow: 1, apicId: 2, flags: 1, localSapicEid: 0, proximityDomainHigh: 0, clockDomain: 0 },
    { type: 'memoryAffinity', proximityDomain: 0, baseAddress: 0n, length: 0x80000000n, flags: 1 },
    { type: 'memoryAffinity', proximityDomain: 1, baseAddress: 0x100000000n, length: 0x80000000n, flags: 3 },
    { type: 'x2apicAffinity', proximityDomain: 1, x2apicId: 0x100, flags: 1, clockDomain: 0 },
  ],
};

const slit: Slit = {
  kind: 'slit',
  header: tableHeader('SLIT', 1),
  distances: [
    [10, 21],
    [21, 10],
  ],
};

const xsdt: Xsdt = { kind: 'xsdt', header: tableHeader('XSDT', 1), entries: [0x7ffe1000n, 0x7ffe2000n, 0x17ffe3000n] };
const rsdt: Rsdt = { kind: 'rsdt', header: tableHeader('RSDT', 1), entries: [0x7ffe1000, 0x7ffe2000] };
const facs: Facs = { kind: 'facs', hardwareSignature: 0x1234, firmwareWakingVector: 0, globalLock: 0, flags: 0, xFirmwareWakingVector: 0n, version: 2, ospmFlags: 0 };

const BUILT: ReadonlyArray<readonly [string, AcpiTable]> = [
  ['madt', madt],
  ['fadt6', fadt6],
  ['fadt1', fadt1],
  ['mcfg', mcfg],
  ['hpet', hpet],
  ['dmar', dmar],
  ['ivrs', ivrs],
  ['srat', srat],
  ['slit', slit],
  ['xsdt', xsdt],
  ['rsdt', rsdt],
  ['facs', facs],
];

test('tables built from typed values have computed lengths and valid checksums, and decode back to the same bytes', () => {
  for (const [name, table] of BUILT) {
    const bytes = encodeTable(table);
    assert.ok(tableChecksumOk(bytes), `${name} checksum`);
    assert.equal(new DataView(bytes.buffer).getUint32(4, true), bytes.length, `${name} length field`);
    assert.deepEqual(encodeTable(decodeTable(bytes)), bytes, `${name} survives a decode`);
  }
  assert.equal(encodeTable(madt).length, 44 + 4 * 8 + 12 + 2 * 10 + 6 + 16 + 12);
  assert.equal(encodeTable(fadt6).length, 276, 'a FADT with every field is the ACPI 6 size');
  assert.equal(encodeTable(fadt1).length, 116, 'a FADT without the 2.0 fields is the ACPI 1.0 size');
  assert.equal(encodeTable(xsdt).length, 36 + 3 * 8);
  assert.equal(encodeTable(facs).length, 64);
  const decodedMadt = decodeTable(encodeTable(madt));
  assert.ok(decodedMadt.kind === 'madt');
  if (decodedMadt.kind === 'madt') {
    assert.deepEqual(decodedMadt.entries[4], { type: 'ioApic', ioApicId: 0, reserved: 0, address: 0xfec00000, gsiBase: 0 });
    assert.deepEqual(decodedMadt.entries[6], { type: 'interruptOverride', bus: 0, source: 9, gsi: 9, flags: 0x0d });
  }
});

function withCreatorOf(table: AcpiTable, compiled: Uint8Array): AcpiTable {
  if (table.kind === 'rsdp' || table.kind === 'facs') return table;
  const h = readTableHeader(compiled);
  return { ...table, header: { ...table.header, creatorId: h.creatorId, creatorRevision: h.creatorRevision } };
}

test('iasl reads every built table as the model says and compiles its disassembly back to the same bytes', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const s = scratch('hvmpt-built-');
  try {
    for (const [name, table] of BUILT) {
      const bytes = encodeTable(table);
      const { dsl, log } = disassemble(s.dir, name, bytes);
      assert.doesNotMatch(dsl + log, /Incorrect checksum|Invalid|terminates|Unknown/i, `${name}: iasl has no complaint`);
      const c = compareFields(parseAcpicaFields(dsl), traceTable(table), NAMES);
      assert.deepEqual(c.problems, [], name);
      assert.ok(c.matched >= 9, `${name}: ${c.matched} fields`);
      // iasl stamps its own compiler ID and version into what it compiles; the rest, checksum
      // included, must be hvmpt's bytes.
      const recompiled = compile(s.dir, `${name}-re`, dsl);
      assert.deepEqual(recompiled, encodeTable(withCreatorOf(table, recompiled)), `${name}: iasl recompiles its disassembly to hvmpt's bytes`);
    }
  } finally {
    s.done();
  }
});

test('an RSDP v2 built from values carries both checksums as iasl computes them; v1 is 20 bytes', (t) => {
  const v2: Rsdp = { kind: 'rsdp', revision: 2, oemId: 'HVMPT ', rsdtAddress: 0x7ffe0000, xsdtAddress: 0x7ffe0100n };
  const v1: Rsdp = { kind: 'rsdp', revision: 0, oemId: 'HVMPT ', rsdtAddress: 0x7ffe0000 };
  const b2 = encodeTable(v2);
  const b1 = encodeTable(v1);
  assert.equal(b2.length, 36);
  assert.equal(b1.length, 20);
  assert.ok(checksumOk(b2, 0, 20) && checksumOk(b2, 0, 36) && checksumOk(b1, 0, 20));
  assert.deepEqual(decodeTable(b2), { ...v2, reserved: new Uint8Array(3) });
  assert.deepEqual(decodeTable(b1), v1);
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const s = scratch('hvmpt-rsdp-');
  try {
    for (const [name, rsdp, bytes] of [['rsdp2', v2, b2], ['rsdp1', v1, b1]] as const) {
      assert.deepEqual(compile(s.dir, name, rsdpSource(rsdp)), bytes, `${name} equals iasl's compilation`);
      const c = compareFields(parseTemplateFields(rsdpSource(rsdp)).filter((f) => !/Checksum/.test(f.name)), traceTable(rsdp), NAMES);
      assert.deepEqual(c.problems, []);
    }
  } finally {
    s.done();
  }
});

test('a table set written as acpidump text is read back by acpixtract (rsdp.dat, xsdt.dat, ssdt1/2.dat) and by hvmpt', (t) => {
  const ssdt = (id: string): AcpiTable => ({ kind: 'definitionBlock', header: tableHeader('SSDT', 2, { oemTableId: id }), aml: new Uint8Array([0x10, 0x05, 0x5c, 0x5f, 0x53, 0x42, 0x5f]) });
  const set: Array<{ signature: string; address: bigint; data: Uint8Array }> = [
    { signature: 'RSDP', address: 0xf0000n, data: encodeTable({ kind: 'rsdp', revision: 2, oemId: 'HVMPT ', rsdtAddress: 0, xsdtAddress: 0x7ffe0000n }) },
    { signature: 'XSDT', address: 0x7ffe0000n, data: encodeTable(xsdt) },
    { signature: 'FACP', address: 0x7ffe1000n, data: encodeTable(fadt6) },
    { signature: 'SSDT', address: 0x7ffe2000n, data: encodeTable(ssdt('ONE')) },
    { signature: 'SSDT', address: 0x7ffe3000n, data: encodeTable(ssdt('TWO')) },
  ];
  const text = formatAcpidump(set);
  const back = parseAcpidump(text, 'built.txt');
  assert.deepEqual(
    back.map((b) => [b.name, b.signature, b.address, b.data]),
    set.map((x, i) => [['rsdp', 'xsdt', 'facp', 'ssdt1', 'ssdt2'][i], x.signature, x.address, x.data]),
  );
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const s = scratch('hvmpt-acpixtract-');
  try {
    const file = join(s.dir, 'built.txt');
    run('sh', ['-c', `cat > ${JSON.stringify(file)}`], { input: text });
    const out = join(s.dir, 'out');
    run('mkdir', [out]);
    const r = run('acpixtract', ['-a', file], { cwd: out });
    assert.equal(r.status, 0, r.stdout);
    assert.deepEqual(readdirSync(out).sort(), ['facp.dat', 'rsdp.dat', 'ssdt1.dat', 'ssdt2.dat', 'xsdt.dat']);
    for (const b of back) assert.ok(readFileSync(join(out, `${b.name}.dat`)).equals(b.data), b.name);
  } finally {
    s.done();
  }
});

test('values that do not fit are refused with the model path, before anything is half-written', () => {
  const bad = (table: AcpiTable, at: RegExp, message: RegExp): void => {
    assert.throws(
      () => encodeTable(table),
      (err: unknown) => err instanceof AcpiEncodeError && at.test(err.where.at ?? '') && message.test(err.message),
    );
  };
  bad({ ...madt, entries: [{ type: 'localApic', processorUid: 256, apicId: 0, flags: 1 }] }, /^entries\[0\]\.processorUid$/, /0\.\.0xff/);
  bad({ ...madt, localApicAddress: -1 }, /^localApicAddress$/, /integer/);
  bad({ ...madt, header: { ...madt.header, oemId: 'TOO-LONG-ID' } }, /^header\.oemId$/, /longer than 6/);
  bad({ ...madt, header: { ...madt.header, signature: 'XXXX' } }, /^header\.signature$/, /must have signature APIC/);
  bad({ ...madt, entries: [{ type: 'localApic', processorUid: 0, apicId: 0, flags: 1, trailing: new Uint8Array(300) }] }, /^entries\[0\]$/, /8-bit length/);
  bad({ ...slit, distances: [[10, 20], [20]] }, /^distances\[1\]$/, /2x2/);
  bad({ kind: 'definitionBlock', header: tableHeader('APIC', 2), aml: new Uint8Array(0) }, /^header\.signature$/, /DSDT, SSDT/);
  bad({ ...mcfg, allocations: [{ baseAddress: 1n << 64n, segment: 0, startBus: 0, endBus: 0 }] }, /^allocations\[0\]\.baseAddress$/, /64-bit/);
  bad({ ...ivrs, blocks: [{ type: 'ivmd', blockType: 0x10, flags: 0, deviceId: 0, auxData: 0, startAddress: 0n, memoryLength: 0n }] }, /^blocks\[0\]\.blockType$/, /not an IVMD/);
  // A required field missing (a model from JSON, past the type checker).
  const missing = { ...hpet } as Partial<Hpet>;
  delete missing.minimumTick;
  bad(missing as Hpet, /^minimumTick$/, /missing/);
});

test('SATC and SIDP (newer than the local iasl) and an IVHD 40h with an ACPI HID entry round-trip through the codec', () => {
  const newer: Dmar = {
    ...dmar,
    structures: [
      { type: 'satc', flags: 1, segment: 0, scopes: [{ scopeType: 1, flags: 0, enumerationId: 0, startBus: 0, path: [{ device: 2, function: 0 }] }] },
      { type: 'sidp', segment: 0, scopes: [{ scopeType: 1, flags: 0, enumerationId: 0, startBus: 0, path: [{ device: 0x14, function: 3 }] }] },
    ],
  };
  const ivrs40: Ivrs = {
    ...ivrs,
    blocks: [
      {
        type: 'ivhd',
        blockType: 0x40,
        flags: 0xb0,
        deviceId: 2,
        capabilityOffset: 0x40,
        baseAddress: 0xfd300000n,
        segment: 0,
        iommuInfo: 0,
        featureInfo: 0x40200,
        efrImage: 0x206d73ef22254aden,
        entries: [{ form: 'acpiHid', entryType: 0xf0, deviceId: 0xa5, dataSetting: 0x40, hid: 'AMDI0020', cid: '', uidFormat: 2, uid: '\\_SB.FUR0' }],
      },
    ],
  };
  for (const table of [newer, ivrs40]) {
    const bytes = encodeTable(table);
    assert.ok(tableChecksumOk(bytes));
    assert.deepEqual(encodeTable(decodeTable(bytes)), bytes);
  }
  const back = decodeTable(encodeTable(ivrs40));
  assert.ok(back.kind === 'ivrs' && back.blocks[0]!.type === 'ivhd');
  if (back.kind === 'ivrs' && back.blocks[0]!.type === 'ivhd') {
    assert.equal(back.blocks[0].entries[0]!.form, 'acpiHid');
    assert.deepEqual(back.blocks[0].entries[0], { form: 'acpiHid', entryType: 0xf0, deviceId: 0xa5, dataSetting: 0x40, hid: 'AMDI0020', cid: '\0'.repeat(8), uidFormat: 2, uid: '\\_SB.FUR0' });
    assert.equal(encodeTable(ivrs40).length, 48 + 40 + 22 + 9);
  }
});

test('a FADT of any length keeps exactly the fields its length covers; a partial field stays as trailing bytes', () => {
  const full = encodeTable(fadt6);
  const cut = (length: number): Uint8Array => {
    const b = full.slice(0, length);
    new DataView(b.buffer).setUint32(4, length, true);
    return encodeTable(decodeTable(b)); // recompute the checksum
  };
  const cases: ReadonlyArray<readonly [number, keyof Fadt, keyof Fadt | undefined, number]> = [
    [116, 'flags', 'resetRegister', 0], // ACPI 1.0
    [129, 'resetValue', 'armBootArch', 0], // ACPI 2.0 drafts
    [132, 'minorRevision', 'xFirmwareCtrl', 0],
    [150, 'xDsdt', 'xPm1aEventBlock', 2], // a GAS cut short
    [244, 'xGpe1Block', 'sleepControlRegister', 0], // ACPI 2.0-4.0
    [268, 'sleepStatusRegister', 'hypervisorVendorId', 0], // ACPI 5.0
    [276, 'hypervisorVendorId', undefined, 0], // ACPI 6.x
    [280, 'hypervisorVendorId', undefined, 4], // a future revision's bytes
  ];
  for (const [length, last, absent, trailing] of cases) {
    const bytes = length <= 276 ? cut(length) : encodeTable({ ...fadt6, trailing: new Uint8Array([1, 2, 3, 4]) });
    const f = decodeTable(bytes);
    assert.ok(f.kind === 'fadt');
    if (f.kind !== 'fadt') continue;
    assert.notEqual(f[last], undefined, `${length}: ${String(last)} present`);
    if (absent !== undefined) assert.equal(f[absent], undefined, `${length}: ${String(absent)} absent`);
    assert.equal(f.trailing?.length ?? 0, trailing, `${length}: trailing bytes`);
    assert.deepEqual(encodeTable(f), bytes, `${length}: byte for byte`);
    assert.equal(encodeTable(f).length, length);
  }
});
