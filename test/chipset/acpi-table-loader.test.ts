import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AcpiLinkError, linkAcpiTables } from '../../src/hw/chipset/acpi-table-loader.js';
import { decodeTable, tableChecksumOk, tableSignature } from '../../src/hw/acpi/tables/index.js';
import { loadAcpiSource } from '../../src/host/acpi/source.js';
import { fixture } from '../helpers/paths.js';

/**
 * Runs an etc/table-loader script the way SeaBIOS's romfile_loader_execute does: allocate each
 * file at an address, add the source file's address to each pointer, fix each checksum.
 */
function execute(files: ReadonlyArray<{ name: string; data: Uint8Array }>, at: Record<string, number>): Map<string, Uint8Array> {
  const mem = new Map(files.map((f) => [f.name, Uint8Array.from(f.data)]));
  const script = mem.get('etc/table-loader')!;
  const v = new DataView(script.buffer);
  const name = (o: number): string => Buffer.from(script.subarray(o, o + 56)).toString('latin1').replace(/\0.*$/s, '');
  for (let o = 0; o < script.length; o += 128) {
    const cmd = v.getUint32(o, true);
    if (cmd === 1) {
      const file = name(o + 4);
      assert.ok(at[file] !== undefined && at[file] % v.getUint32(o + 60, true) === 0, `${file} aligned`);
    } else if (cmd === 2) {
      const dest = mem.get(name(o + 4))!;
      const src = name(o + 60);
      const off = v.getUint32(o + 116, true);
      const size = v.getUint8(o + 120);
      const dv = new DataView(dest.buffer);
      if (size === 4) dv.setUint32(off, dv.getUint32(off, true) + at[src]!, true);
      else dv.setBigUint64(off, dv.getBigUint64(off, true) + BigInt(at[src]!), true);
    } else if (cmd === 3) {
      const f = mem.get(name(o + 4))!;
      const off = v.getUint32(o + 60, true);
      const start = v.getUint32(o + 64, true);
      const len = v.getUint32(o + 68, true);
      let sum = 0;
      for (let i = start; i < start + len; i++) sum += f[i]!;
      f[off] = (f[off]! - sum) & 0xff;
    } else assert.fail(`unknown loader command ${cmd}`);
  }
  return mem;
}

test('ACPI linker: QEMU\'s q35 tables (a real dump) become RSDP -> XSDT/RSDT -> tables with every address and checksum right', () => {
  const src = loadAcpiSource(fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt'));
  const linked = linkAcpiTables(src.tables.map((t) => t.data));
  assert.deepEqual(linked.files.map((f) => f.name), ['etc/acpi/rsdp', 'etc/acpi/tables', 'etc/table-loader']);
  const base = 0x0ffe_0000;
  const rsdpAt = 0xf5a00;
  const mem = execute(linked.files, { 'etc/acpi/tables': base, 'etc/acpi/rsdp': rsdpAt });
  const blob = mem.get('etc/acpi/tables')!;
  const at = (addr: number | bigint): Uint8Array => {
    const off = Number(addr) - base;
    const len = new DataView(blob.buffer).getUint32(off + 4, true);
    return blob.subarray(off, off + len);
  };
  const rsdp = decodeTable(mem.get('etc/acpi/rsdp')!);
  assert.ok(rsdp.kind === 'rsdp' && rsdp.revision === 2);
  const rsdpBytes = mem.get('etc/acpi/rsdp')!;
  assert.equal(rsdpBytes.subarray(0, 20).reduce((a, b) => a + b, 0) & 0xff, 0, 'RSDP checksum');
  assert.equal(rsdpBytes.reduce((a, b) => a + b, 0) & 0xff, 0, 'RSDP extended checksum');
  const xsdt = decodeTable(at(rsdp.xsdtAddress!));
  const rsdt = decodeTable(at(rsdp.rsdtAddress));
  assert.ok(xsdt.kind === 'xsdt' && rsdt.kind === 'rsdt');
  assert.ok(tableChecksumOk(at(rsdp.xsdtAddress!)) && tableChecksumOk(at(rsdp.rsdtAddress)));
  const listed = xsdt.entries.map((a) => decodeTable(at(a)));
  assert.deepEqual(rsdt.entries.map(Number), xsdt.entries.map(Number));
  assert.deepEqual(listed.map((t) => tableSignature(t)).sort(), ['APIC', 'FACP', 'MCFG', 'WAET']);
  for (const a of xsdt.entries) assert.ok(tableChecksumOk(at(a)));
  const fadt = listed.find((t) => t.kind === 'fadt');
  assert.ok(fadt !== undefined && fadt.kind === 'fadt');
  const fadtBytes = at(xsdt.entries[listed.indexOf(fadt)]!);
  const fv = new DataView(fadtBytes.buffer, fadtBytes.byteOffset);
  const dsdt = decodeTable(at(fv.getUint32(40, true)));
  assert.equal(tableSignature(dsdt), 'DSDT');
  assert.equal(fv.getBigUint64(140, true), BigInt(fv.getUint32(40, true)), 'X_DSDT equals DSDT');
  const facsAddr = fv.getUint32(36, true);
  assert.equal(facsAddr % 64, 0, 'FACS 64-byte aligned');
  assert.equal(Buffer.from(blob.subarray(facsAddr - base, facsAddr - base + 4)).toString(), 'FACS');
  // The original DSDT bytes arrive unchanged.
  const original = src.tables.find((t) => t.signature === 'DSDT')!.data;
  assert.deepEqual(at(fv.getUint32(40, true)), original);
});

test('ACPI linker refuses table sets it cannot link, saying why', () => {
  const src = loadAcpiSource(fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt'));
  const tables = src.tables.map((t) => t.data);
  const without = (sig: string): Uint8Array[] => tables.filter((t) => Buffer.from(t.subarray(0, 4)).toString() !== sig);
  assert.throws(() => linkAcpiTables(without('FACP')), (e: unknown) => e instanceof AcpiLinkError && /exactly one FADT/.test(e.message));
  assert.throws(() => linkAcpiTables([...tables, tables.find((t) => Buffer.from(t.subarray(0, 4)).toString() === 'DSDT')!]), /exactly one DSDT is needed, 2 given/);
  const truncated = tables.map((t) => (Buffer.from(t.subarray(0, 4)).toString() === 'APIC' ? t.subarray(0, 40) : t));
  assert.throws(() => linkAcpiTables(truncated), /APIC: declares 144 bytes but 40 were given/);
});
