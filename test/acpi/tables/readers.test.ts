import assert from 'node:assert/strict';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAcpidump } from '../../../src/hw/acpi/dump/acpidump.js';
import { decodeTable, encodeTable, splitTableBytes } from '../../../src/hw/acpi/tables/table.js';
import { loadAcpiSource, looksLikeBinaryTable } from '../../../src/host/acpi/source.js';
import { SYSFS_TABLES, readTableDirectory } from '../../../src/host/acpi/tables-dir.js';
import { fixture } from '../../helpers/paths.js';
import { haveCommand } from '../../helpers/require.js';
import { run } from '../../helpers/run.js';
import { scratch } from './iasl.js';

const X230 = fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt');

test('a sysfs-style directory (tables, dynamic/, data/) reads every table and keeps data files apart', () => {
  const s = scratch('hvmpt-tables-dir-');
  try {
    const images = parseAcpidump(readFileSync(X230, 'latin1'), X230);
    mkdirSync(join(s.dir, 'dynamic'));
    mkdirSync(join(s.dir, 'data'));
    // Linux names the root tables by signature (SSDT1..n) and puts run-time loaded SSDTs in dynamic/.
    // The last two SSDTs go to dynamic/ as SSDT9 and SSDT10, which must list in natural order.
    let ssdt = 0;
    for (const im of images) {
      if (im.signature !== 'SSDT') writeFileSync(join(s.dir, im.name.toUpperCase()), im.data);
      else if (++ssdt <= 6) writeFileSync(join(s.dir, `SSDT${ssdt}`), im.data);
      else writeFileSync(join(s.dir, 'dynamic', `SSDT${ssdt + 2}`), im.data);
    }
    writeFileSync(join(s.dir, 'data', 'BERT'), new Uint8Array([1, 2, 3]));
    const dir = readTableDirectory(s.dir);
    assert.equal(dir.tables.length, images.length);
    assert.deepEqual(dir.data.map((d) => [d.name, d.data.length]), [['data/BERT', 3]]);
    assert.deepEqual(
      dir.tables.filter((t) => t.name.startsWith('dynamic/')).map((t) => t.name),
      ['dynamic/SSDT9', 'dynamic/SSDT10'],
    );
    for (const t of dir.tables) {
      const table = decodeTable(splitTableBytes(t.data).table, { input: t.origin });
      assert.deepEqual(encodeTable(table), t.data, t.name);
    }
    const source = loadAcpiSource(s.dir);
    assert.equal(source.kind, 'directory');
    const one = loadAcpiSource(join(s.dir, 'FACP'));
    assert.equal(one.kind, 'binary');
    assert.deepEqual(one.tables.map((t) => [t.name, t.signature]), [['FACP', 'FACP']]);
  } finally {
    s.done();
  }
});

test('input sniffing: acpidump text is not mistaken for a binary table, nor the reverse', () => {
  const text = new Uint8Array(readFileSync(X230));
  assert.equal(looksLikeBinaryTable(text), false);
  assert.equal(loadAcpiSource(X230).kind, 'acpidump');
  const image = parseAcpidump(readFileSync(X230, 'latin1'), X230)[0]!;
  assert.equal(looksLikeBinaryTable(image.data), true);
});

test('acpixtract .dat files read as binary tables, one file or a directory of them', (t) => {
  if (!haveCommand('acpixtract')) {
    process.stdout.write(`SKIPPED (no acpixtract; install Debian package acpica-tools or run scripts/setup.sh): ${t.name}\n`);
    t.skip('no acpixtract');
    return;
  }
  const s = scratch('hvmpt-dat-');
  try {
    assert.equal(run('acpixtract', ['-a', X230], { cwd: s.dir }).status, 0);
    const source = loadAcpiSource(s.dir);
    const images = parseAcpidump(readFileSync(X230, 'latin1'), X230);
    assert.equal(source.tables.length, images.length);
    for (const t of source.tables) {
      const im = images.find((i) => `${i.name}.dat` === t.name);
      assert.ok(im !== undefined, t.name);
      assert.deepEqual(t.data, im.data);
    }
    const dsdt = loadAcpiSource(join(s.dir, 'dsdt.dat'));
    assert.deepEqual([dsdt.kind, dsdt.tables[0]!.name, dsdt.tables[0]!.signature], ['binary', 'dsdt', 'DSDT']);
  } finally {
    s.done();
  }
});

test("this machine's own tables (/sys/firmware/acpi/tables) decode and re-encode byte for byte", (t) => {
  try {
    accessSync(join(SYSFS_TABLES, 'DSDT'), constants.R_OK);
  } catch {
    process.stdout.write(`SKIPPED (${SYSFS_TABLES} is absent or readable by root only): ${t.name}\n`);
    t.skip('no readable firmware tables');
    return;
  }
  const dir = readTableDirectory(SYSFS_TABLES);
  assert.ok(dir.tables.length > 0);
  for (const image of dir.tables) {
    const { table } = splitTableBytes(image.data, image.origin);
    assert.deepEqual(encodeTable(decodeTable(table, { input: image.origin })), table, image.name);
  }
  // acpidump reads the same tables from the same place: what it prints must be what hvmpt read.
  if (!haveCommand('acpidump')) return;
  const dump = run('acpidump', []);
  if (dump.status !== 0) return;
  for (const im of parseAcpidump(dump.stdout, 'acpidump')) {
    if (im.signature === 'RSDP' || im.signature === 'XSDT' || im.signature === 'RSDT') continue; // read from memory, not sysfs
    assert.ok(dir.tables.some((t) => t.data.length === im.data.length && t.data.every((b, i) => b === im.data[i])), `acpidump's ${im.name} is among the sysfs tables`);
  }
});
