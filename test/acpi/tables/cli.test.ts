import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture } from '../../helpers/paths.js';
import { hvmpt } from '../../helpers/run.js';
import { scratch } from './iasl.js';

const Q35 = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');

test('hvmpt acpi --help lists decode and extract; each subcommand has help', () => {
  const r = hvmpt(['acpi', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /decode/);
  assert.match(r.stdout, /extract/);
  for (const sub of ['decode', 'extract']) {
    const h = hvmpt(['acpi', sub, '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /Example/);
  }
});

test('acpi decode lists every table and its fields with offsets', () => {
  const r = hvmpt(['acpi', 'decode', Q35]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /acpidump text, 6 table\(s\)/);
  assert.match(r.stdout, /apic +APIC +144 bytes +madt/);
  assert.match(r.stdout, /\[024h +4\] localApicAddress +0xfee00000/);
  assert.match(r.stdout, /\[08Ch +8\] xDsdt +0x000000007ffdfd80/);
  assert.match(r.stdout, /entries\[5\]\.type +0x02 +Interrupt Source Override/);
  assert.match(r.stdout, /waet: WAET — Windows ACPI Emulated Devices \(kept raw\)/);
});

test('acpi decode --json gives the typed models; --table filters', () => {
  const r = hvmpt(['acpi', 'decode', Q35, '--json', '--table', 'MADT,mcfg']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    format: string;
    tables: Array<{ name: string; checksumOk: boolean; model: { kind: string; entries?: Array<{ type: string; gsi?: number }>; allocations?: Array<{ baseAddress: string }> } }>;
  };
  assert.equal(out.format, 'acpidump');
  assert.deepEqual(out.tables.map((t) => t.name), ['mcfg', 'apic']);
  assert.ok(out.tables.every((t) => t.checksumOk));
  assert.equal(out.tables[0]!.model.allocations![0]!.baseAddress, '0xb0000000');
  assert.deepEqual(out.tables[1]!.model.entries!.filter((e) => e.type === 'interruptOverride').map((e) => e.gsi), [2, 5, 9, 10, 11]);
  const none = hvmpt(['acpi', 'decode', Q35, '--table', 'DMAR']);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no DMAR table here \(it has MCFG, APIC, WAET, DSDT, FACP, FACS\)/);
});

test('acpi decode reads a .dat file and a directory; a missing input names itself', () => {
  const s = scratch('hvmpt-cli-');
  try {
    const x = hvmpt(['acpi', 'extract', Q35, '--out', s.dir]);
    assert.equal(x.status, 0, x.stderr);
    const one = hvmpt(['acpi', 'decode', join(s.dir, 'facp.dat')]);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /binary table, 1 table\(s\)/);
    const dir = hvmpt(['acpi', 'decode', s.dir, '--json']);
    assert.equal(dir.status, 0, dir.stderr);
    assert.equal((JSON.parse(dir.stdout) as { tables: unknown[] }).tables.length, 6);
    // A truncated .dat file is still a binary table, and the error says what is wrong with it.
    const cut = join(s.dir, 'cut.dat');
    writeFileSync(cut, readFileSync(join(s.dir, 'apic.dat')).subarray(0, 100));
    const truncated = hvmpt(['acpi', 'decode', cut]);
    assert.equal(truncated.status, 1);
    assert.match(truncated.stderr, /cut\.dat.*offset 0x4: table declares length 144, only 100 bytes there/);
    const missing = hvmpt(['acpi', 'decode', join(s.dir, 'nope')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^hvmpt: .*nope: cannot open: ENOENT/);
  } finally {
    s.done();
  }
});

test('a malformed table: decode lists the rest and exits 1 naming table and offset; extract --reencode writes nothing', () => {
  const s = scratch('hvmpt-cli-bad-');
  try {
    // The q35 MADT's first entry length (offset 0x2d) set to 0.
    const text = readFileSync(Q35, 'latin1').replace(
      '    0020: 01 00 00 00 00 00 E0 FE 01 00 00 00 00 08 00 00',
      '    0020: 01 00 00 00 00 00 E0 FE 01 00 00 00 00 00 00 00',
    );
    assert.notEqual(text, readFileSync(Q35, 'latin1'));
    const bad = join(s.dir, 'bad.txt');
    writeFileSync(bad, text);
    const d = hvmpt(['acpi', 'decode', bad]);
    assert.equal(d.status, 1);
    assert.match(d.stdout, /apic +APIC +144 bytes +NOT DECODED/);
    assert.match(d.stdout, /facp: FACP/);
    assert.match(d.stderr, /bad\.txt: line 7 \(APIC\): offset 0x2c: MADT entry 0 has length 0/);
    const out = join(s.dir, 'out');
    const e = hvmpt(['acpi', 'extract', bad, '--out', out, '--reencode']);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /offset 0x2c/);
    assert.equal(existsSync(out), false, 'nothing written');
    // Without --reencode the bytes are copied as they are, as acpixtract does.
    const raw = hvmpt(['acpi', 'extract', bad, '--out', out]);
    assert.equal(raw.status, 0, raw.stderr);
    assert.equal(readdirSync(out).length, 6);
  } finally {
    s.done();
  }
});

test('acpi extract: usage errors', () => {
  const noOut = hvmpt(['acpi', 'extract', Q35]);
  assert.equal(noOut.status, 2);
  assert.match(noOut.stderr, /--out/);
  const s = scratch('hvmpt-cli-usage-');
  try {
    const dir = hvmpt(['acpi', 'extract', s.dir, '--out', join(s.dir, 'o')]);
    assert.equal(dir.status, 1);
    assert.match(dir.stderr, /extract reads acpidump text/);
    const empty = join(s.dir, 'empty.txt');
    writeFileSync(empty, 'hello\n');
    const e = hvmpt(['acpi', 'extract', empty, '--out', join(s.dir, 'o')]);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /empty\.txt: no tables found/);
  } finally {
    s.done();
  }
});
