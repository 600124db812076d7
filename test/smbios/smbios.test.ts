import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeEntryPoint,
  decodeStructures,
  dword,
  encodeSmbios,
  encodeStructure,
  EP,
  fixEntryPointChecksums,
  guestSmbios,
  guestSmbiosStructures,
  SmbiosDecodeError,
  SmbiosEncodeError,
  structureString,
  word,
  type SmbiosFacts,
  uuidFromText,
} from '../../src/hw/smbios/index.js';
import { parseStructuredText, PlanError, validate } from '../../src/plan/load.js';
import { planSchema } from '../../src/plan/schema.js';
import { corpus, fuzzSmbios } from '../../fuzz/smbios.js';
import { skipUnlessCommand } from '../helpers/require.js';

const GiB = 1n << 30n;
const UUID = '4c4c4544-0031-3610-8039-b4c04f4e3532';

/** A guest with RAM below and above 4 GiB, more than one 16 GiB memory device, a UUID. */
const FACTS: SmbiosFacts = {
  cpus: 3,
  ram: [
    { start: 0n, end: 0xa0000n },
    { start: 0x10_0000n, end: 0x8000_0000n },
    { start: 4n * GiB, end: 4n * GiB + 30n * GiB },
  ],
  manufacturer: 'ACME Appliances',
  product: 'Edge Box 3',
  version: '1.2',
  serial: 'SN-0042',
  family: 'Edge',
  uuid: uuidFromText(UUID),
  cpuMhz: 2400,
};

/** dmidecode's --dump-bin layout: the entry point at 0 pointing at the table at 32. */
function dump(anchor: Uint8Array, tables: Uint8Array): Uint8Array {
  const ep = Uint8Array.from(anchor);
  new DataView(ep.buffer).setUint32(EP.tableAddress, 32, true);
  fixEntryPointChecksums(ep);
  const out = new Uint8Array(32 + tables.length);
  out.set(ep);
  out.set(tables, 32);
  return out;
}

function dmidecode(bytes: Uint8Array, ...args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-smbios-'));
  try {
    const f = join(dir, 'dmi.bin');
    writeFileSync(f, bytes);
    const r = spawnSync('dmidecode', ['--from-dump', f, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout + r.stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** dmidecode's decode of each structure: its handle line's type and its `Key: value` lines. */
function sections(out: string): Array<{ type: number; title: string; fields: Map<string, string> }> {
  return out
    .split(/\n(?=Handle 0x)/)
    .slice(1)
    .map((block) => {
      const lines = block.split('\n');
      const type = Number(/DMI type (\d+)/.exec(lines[0]!)![1]);
      const fields = new Map<string, string>();
      for (const l of lines.slice(2)) {
        const m = /^\t([^\t:][^:]*): (.*)$/.exec(l);
        if (m !== null) fields.set(m[1]!, m[2]!);
      }
      return { type, title: lines[1] ?? '', fields };
    });
}

test('dmidecode (Debian) decodes the guest SMBIOS as the facts say: system, chassis, processors, memory, mapped ranges', (t) => {
  if (!skipUnlessCommand(t, 'dmidecode', 'dmidecode')) return;
  const { anchor, tables } = guestSmbios(FACTS);
  const out = dmidecode(dump(anchor, tables));
  assert.match(out, /SMBIOS 2\.8 present\./);
  assert.doesNotMatch(out, /invalid|wrong|truncated|Unknown Type|out of spec|<BAD/i, out);
  const s = sections(out);
  const one = (type: number) => {
    const all = s.filter((x) => x.type === type);
    assert.equal(all.length, 1, `one type ${type}`);
    return all[0]!.fields;
  };
  const sys = one(1);
  assert.deepEqual(
    ['Manufacturer', 'Product Name', 'Version', 'Serial Number', 'UUID', 'Wake-up Type', 'Family'].map((k) => sys.get(k)),
    ['ACME Appliances', 'Edge Box 3', '1.2', 'SN-0042', UUID, 'Power Switch', 'Edge'],
  );
  assert.equal(one(3).get('Manufacturer'), 'ACME Appliances');
  const cpus = s.filter((x) => x.type === 4);
  // Three vCPUs are the three cores of one package, as QEMU lays out -smp 3.
  assert.deepEqual(cpus.map((c) => c.fields.get('Socket Designation')), ['CPU 0']);
  assert.deepEqual(
    ['Status', 'Current Speed', 'Core Count', 'Core Enabled', 'Thread Count'].map((k) => cpus[0]!.fields.get(k)),
    ['Populated, Enabled', '2400 MHz', '3', '3', '3'],
  );
  // 2 GiB - 1 MiB + 640 KiB + 30 GiB of RAM: rounded up to whole MiB, two 16 GiB-at-most devices.
  const array = one(16);
  assert.equal(array.get('Number Of Devices'), '2');
  assert.equal(array.get('Maximum Capacity'), '32 GB');
  assert.deepEqual(s.filter((x) => x.type === 17).map((d) => [d.fields.get('Size'), d.fields.get('Locator')]), [['16 GB', 'DIMM 0'], ['16 GB', 'DIMM 1']]);
  const mapped = s.filter((x) => x.type === 19).map((m) => [m.fields.get('Starting Address'), m.fields.get('Ending Address'), m.fields.get('Range Size')]);
  assert.deepEqual(mapped, [
    ['0x00000000000', '0x0000009FFFF', '640 kB'],
    ['0x00000100000', '0x0007FFFFFFF', '2047 MB'],
    ['0x00100000000', '0x0087FFFFFFF', '30 GB'],
  ]);
  assert.equal(one(32).get('Status'), 'No errors detected');
  assert.ok(s.some((x) => x.type === 127));
});

test('dmidecode reads the extended fields: memory above 2 TiB, a 64 GiB device, a range past 4 TiB', (t) => {
  if (!skipUnlessCommand(t, 'dmidecode', 'dmidecode')) return;
  const big: SmbiosFacts = { cpus: 1, ram: [{ start: 0n, end: 0x8000_0000n }, { start: 4n * GiB, end: 5n * 1024n * GiB }] };
  const structures = guestSmbiosStructures(big);
  const extra = encodeStructure({ type: 17, handle: 0x200, arrayHandle: 0x104, size: 64n * GiB, locator: 'BIG', manufacturer: '' });
  const base = encodeSmbios(structures);
  // Splice the extra device in before the end-of-table structure and fix the entry point.
  const endAt = decodeStructures(base.tables).at(-1)!.offset;
  const tables = new Uint8Array(base.tables.length + extra.length);
  tables.set(base.tables.subarray(0, endAt));
  tables.set(extra, endAt);
  tables.set(base.tables.subarray(endAt), endAt + extra.length);
  const anchor = Uint8Array.from(base.anchor);
  const v = new DataView(anchor.buffer);
  v.setUint16(EP.tableLength, tables.length, true);
  v.setUint16(EP.structureCount, v.getUint16(EP.structureCount, true) + 1, true);
  fixEntryPointChecksums(anchor);
  const s = sections(dmidecode(dump(anchor, tables)));
  assert.equal(s.find((x) => x.type === 16)!.fields.get('Maximum Capacity'), '5118 GB');
  assert.equal(s.find((x) => x.fields.get('Locator') === 'BIG')!.fields.get('Size'), '64 GB');
  const high = s.filter((x) => x.type === 19).at(-1)!.fields;
  // dmidecode 3.4 prints the extended (byte) fields with a stray "k" after them.
  assert.deepEqual([high.get('Starting Address'), high.get('Ending Address'), high.get('Range Size')], ['0x0000000100000000k', '0x000004FFFFFFFFFFk', '5116 GB']);
});

test('encode then decode: entry point fields and checksums, every structure, strings by number', () => {
  const { anchor, tables } = guestSmbios(FACTS);
  const ep = decodeEntryPoint(anchor);
  const structures = decodeStructures(tables);
  assert.deepEqual(ep.version, { major: 2, minor: 8 });
  assert.equal(ep.tableLength, tables.length);
  assert.equal(ep.tableAddress, 0);
  assert.equal(ep.structureCount, structures.length);
  assert.equal(ep.maxStructureSize, Math.max(...structures.map((s, i) => (structures[i + 1]?.offset ?? tables.length) - s.offset)));
  assert.deepEqual(structures.map((s) => s.type), [1, 3, 4, 16, 17, 17, 19, 19, 19, 32, 127]);
  assert.equal(new Set(structures.map((s) => s.handle)).size, structures.length, 'handles are unique');
  assert.ok(structures.every((s) => s.handle >= 0x100), 'handle 0 is left for the firmware\'s type 0');
  const sys = structures[0]!;
  assert.deepEqual([4, 5, 6, 7, 0x19, 0x1a].map((o) => structureString(sys, o)), ['ACME Appliances', 'Edge Box 3', '1.2', 'SN-0042', '', 'Edge']);
  // The mapped ranges in KiB, ends inclusive (all below 4 TiB, so no extended fields).
  const ranges = structures.filter((s) => s.type === 19).map((s) => [dword(s, 4), dword(s, 8)]);
  assert.deepEqual(ranges, [[0, 0x27f], [0x400, 0x1f_ffff], [0x40_0000, 0x21f_ffff]]);
  assert.deepEqual(structures.filter((s) => s.type === 17).map((s) => word(s, 0x0c)), [16384, 16384]);
});

test('bad facts are refused with the structure and field named, before anything is built', () => {
  const cases: Array<[Partial<SmbiosFacts>, RegExp]> = [
    [{ manufacturer: 'Ünïcode' }, /type 1 handle 0x100\.manufacturer: must be printable ASCII/],
    [{ product: 'x'.repeat(65) }, /type 1 handle 0x100\.product/],
    [{ serial: 'a\u0000b' }, /serial/],
    [{ uuid: new Uint8Array(15) }, /\.uuid: a UUID has 16 bytes/],
    [{ cpuMhz: 70_000 }, /type 4 handle 0x102\.maxSpeed: 70000 is outside 0\.\.65535/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(() => guestSmbios({ ...FACTS, ...bad }), (e: unknown) => e instanceof SmbiosEncodeError && message.test(e.message), String(message));
  }
  assert.throws(() => encodeSmbios([{ type: 32, handle: 1, status: 0 }]), /must end with a type 127/);
  assert.throws(
    () => encodeSmbios([{ type: 32, handle: 1, status: 0 }, { type: 127, handle: 1 }]),
    /handle 0x1 is used twice/,
  );
  assert.throws(() => encodeStructure({ type: 19, handle: 1, arrayHandle: 0, start: 0n, end: 0x10n, partitionWidth: 1 }), /KiB-aligned/);
});

test('a plan\'s machine.smbios is checked by path: strings, UUID form', () => {
  const parsePlan = (text: string, input: string) => validate(planSchema, parseStructuredText(text, input), input);
  const bad = (smbios: string, path: string): void => {
    assert.throws(
      () => parsePlan(`machine:\n  smbios: ${smbios}\n`, 'plan.yaml'),
      (e: unknown) => e instanceof PlanError && e.problems.some((p) => p.path === path),
      smbios,
    );
  };
  bad('{ uuid: not-a-uuid }', 'machine.smbios.uuid');
  bad('{ manufacturer: "tab\\there" }', 'machine.smbios.manufacturer');
  bad('{ vendor: x }', 'machine.smbios');
  bad('true', 'machine.smbios');
  assert.equal(parsePlan('machine:\n  smbios: false\n', 'plan.yaml').machine.smbios, false);
});

test('fuzz: mutated SMBIOS (bit flips, truncation, lying lengths) decodes or fails with SmbiosDecodeError, never anything else', () => {
  const stats = fuzzSmbios(corpus(), 5000, 20261125);
  assert.equal(stats.accepted + stats.rejected, 5000);
  assert.ok(stats.rejected > 500 && stats.accepted > 500, `both outcomes occur: ${JSON.stringify(stats)}`);
});
