import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cleanupScratch, loadCorpus, newTally, runCase } from '../../../fuzz/acpi-tables.js';
import { setChecksum } from '../../../src/hw/acpi/checksum.js';
import { parseAcpidump } from '../../../src/hw/acpi/dump/acpidump.js';
import { AcpiParseError } from '../../../src/hw/acpi/errors.js';
import { decodeTable, decodeTableOrRaw, encodeTable, splitTableBytes } from '../../../src/hw/acpi/tables/table.js';
import { fixture } from '../../helpers/paths.js';

function fixtureTable(machine: string, name: string): Uint8Array {
  const file = fixture('acpi', `${machine}.acpidump.txt`);
  const image = parseAcpidump(readFileSync(file, 'latin1'), file).find((t) => t.name === name);
  assert.ok(image !== undefined, `${machine} has ${name}`);
  return image.data.slice();
}

/** Patches bytes, keeps the table's own length and checksum honest so the body is what fails. */
function patched(data: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = data.slice();
  bytes.forEach((b, i) => (out[at + i] = b));
  if (out.length >= 36 && out[0] !== 0x52) setChecksum(out, 9);
  return out;
}

function rejects(data: Uint8Array, at: RegExp, message: RegExp): void {
  assert.throws(
    () => decodeTable(data, { input: 'test' }),
    (err: unknown) => {
      assert.ok(err instanceof AcpiParseError, `expected AcpiParseError, got ${String(err)}`);
      assert.equal(err.where.input, 'test');
      assert.match(err.where.at ?? '', at);
      assert.match(err.message, message);
      return true;
    },
  );
}

test('subtable lengths of 0 and lengths past the end are typed errors at the right offset (no endless loop)', () => {
  const apic = fixtureTable('qemu-kvm-q35-bochs', 'apic'); // entries from 0x2c
  rejects(patched(apic, 0x2d, [0]), /^offset 0x2c$/, /MADT entry 0 has length 0/);
  rejects(patched(apic, 0x2d, [1]), /^offset 0x2c$/, /less than its 2-byte header/);
  rejects(patched(apic, 0x2d, [0xff]), /^offset 0x2c$/, /running .* past the end/);
  rejects(patched(apic, 0x35, [4]), /^offset 0x36$/, /Processor Local APIC\) needs 6 bytes, only 2/);
  const dmar = fixtureTable('server-hp-proliant-dl360-g7-intel', 'dmar'); // structures from 0x30, scopes from 0x40
  rejects(patched(dmar, 0x32, [0, 0]), /^offset 0x30$/, /DMAR structure 0 has length 0/);
  rejects(patched(dmar, 0x41, [0]), /^offset 0x40$/, /device scope 0 has length 0/);
  rejects(patched(dmar, 0x41, [0x40]), /^offset 0x40$/, /past the end/);
  const ivrs = fixtureTable('minipc-asus-pn50-amd-renoir', 'ivrs'); // blocks from 0x30
  rejects(patched(ivrs, 0x32, [0, 0]), /^offset 0x30$/, /IVRS block 0 has length 0/);
  rejects(patched(ivrs, 0x13d, [0xff]), /^offset 0x128$/, /needs 277 bytes/); // an F0h entry's UID length overruns its block
  const srat = fixtureTable('server-supermicro-x8dtt-intel', 'srat');
  rejects(patched(srat, 0x31, [0]), /^offset 0x30$/, /SRAT entry 0 has length 0/);
});

test('decodeTableOrRaw keeps a malformed typed table as raw bytes with the problem, for pass-through', () => {
  const apic = patched(fixtureTable('qemu-kvm-q35-bochs', 'apic'), 0x2d, [0]);
  const { table, problem } = decodeTableOrRaw(apic, { input: 'test' });
  assert.equal(table.kind, 'raw');
  assert.ok(problem instanceof AcpiParseError && /length 0/.test(problem.message));
  assert.deepEqual(encodeTable(table), apic);
  const fine = decodeTableOrRaw(fixtureTable('qemu-kvm-q35-bochs', 'apic'));
  assert.equal(fine.table.kind, 'madt');
  assert.equal(fine.problem, undefined);
  assert.throws(() => decodeTableOrRaw(apic.subarray(0, 40)), AcpiParseError);
});

test('lying counts and table lengths are typed errors', () => {
  const slit = fixtureTable('server-supermicro-x8dtt-intel', 'slit');
  // 2^32 localities: count^2 overflows 64 bits if computed carelessly.
  rejects(patched(slit, 0x24, [0, 0, 0, 0, 1, 0, 0, 0]), /^offset 0x24$/, /claims 4294967296 localities/);
  rejects(patched(slit, 0x24, [3]), /^offset 0x24$/, /claims 3 localities \(9 matrix bytes\), only 4/);
  const facp = fixtureTable('qemu-kvm-q35-bochs', 'facp');
  rejects(facp.subarray(0, 100), /^offset 0x4$/, /declares length 244 but 100 bytes/);
  const short = facp.slice(0, 100);
  new DataView(short.buffer).setUint32(4, 100, true);
  rejects(short, /^offset 0x24$/, /FADT needs 80 bytes, only 64/);
  rejects(patched(facp, 4, [8, 0, 0, 0]), /^offset 0x4$/, /less than the 36-byte header/);
  rejects(new Uint8Array([0x41, 0x50]), /^offset 0x0$/, /too few for a table/);
  const rsdp = new Uint8Array(36);
  rsdp.set([...'RSD PTR '].map((c) => c.charCodeAt(0)));
  rsdp[15] = 2;
  new DataView(rsdp.buffer).setUint32(20, 20, true);
  rejects(rsdp, /^offset 0x/, /RSDP declares length 20, less than 36|declares length 20 but 36/);
});

test('a buffer longer than its table is split, not silently decoded as one', () => {
  const mcfg = fixtureTable('qemu-kvm-q35-bochs', 'mcfg');
  const longer = new Uint8Array(mcfg.length + 5);
  longer.set(mcfg);
  rejects(longer, /^offset 0x3c$/, /declares length 60 but 65 bytes/);
  const { table, excess } = splitTableBytes(longer);
  assert.equal(excess.length, 5);
  assert.deepEqual(encodeTable(decodeTable(table)), mcfg);
});

test('fuzz sample: 3000 mutations of the fixtures through every reader end in a model or a typed error', () => {
  const corpus = loadCorpus(fixture('acpi'));
  assert.ok(corpus.tables.length > 200 && corpus.dumps.length > 50);
  const tally = newTally();
  try {
    for (let i = 0; i < 3000; i++) runCase(corpus, 20240601, i, tally);
  } finally {
    cleanupScratch();
  }
  assert.deepEqual(
    tally.crashes.map((c) => `case ${c.index} (${c.target}; ${c.how}): ${c.error.split('\n')[0]}`),
    [],
  );
  assert.equal(tally.cases, 3000);
  // Both outcomes occur in quantity: the mutations reach the decoders and are not all rejected early.
  assert.ok(tally.decoded > 600, `${tally.decoded} decoded`);
  assert.ok(tally.rejected > 600, `${tally.rejected} rejected`);
});
