import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAcpidump, parseAcpidump } from '../../../src/hw/acpi/dump/acpidump.js';
import { acpixtractNames } from '../../../src/hw/acpi/dump/names.js';
import { AcpiParseError } from '../../../src/hw/acpi/errors.js';

const DUMP = [
  'some preamble acpidump might not print',
  'MCFG @ 0x00000000b0000000',
  '    0000: 4D 43 46 47 3C 00 00 00 01 8C 42 4F 43 48 53 20  MCFG<.....BOCHS ',
  '    0010: 42 58 50 43 20 20 20 20 01 00 00 00 42 58 50 43  BXPC    ....BXPC',
  '    0020: 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 B0  ................',
  '    0030: 00 00 00 00 00 00 00 FF 00 00 00 00              ............',
  '',
  'RSD PTR @ 0xf0000',
  '    0000: 52 53 44 20 50 54 52 20 00 42 4F 43 48 53 20 00  RSD PTR .BOCHS .',
  '    0010: 00 00 00 00                                      ....',
  '',
].join('\n');

test('acpidump text: headers, addresses, hex lines (the ASCII column ignored), RSD PTR as RSDP', () => {
  const tables = parseAcpidump(DUMP, 'dump.txt');
  assert.deepEqual(
    tables.map((t) => [t.name, t.signature, t.address, t.data.length, t.origin]),
    [
      ['mcfg', 'MCFG', 0xb0000000n, 60, 'dump.txt: line 2'],
      ['rsdp', 'RSDP', 0xf0000n, 20, 'dump.txt: line 8'],
    ],
  );
  assert.deepEqual([...tables[0]!.data.subarray(0, 4)], [0x4d, 0x43, 0x46, 0x47]);
  assert.equal(tables[0]!.data[0x2f], 0xb0);
  // CRLF line ends read the same.
  assert.deepEqual(parseAcpidump(DUMP.replace(/\n/g, '\r\n'), 'dump.txt').map((t) => t.data), tables.map((t) => t.data));
  // What formatAcpidump writes reads back.
  assert.deepEqual(parseAcpidump(formatAcpidump(tables), 'again.txt').map((t) => [t.signature, t.address, t.data]), tables.map((t) => [t.signature, t.address, t.data]));
});

test('a damaged dump is an error naming the line, not a silently short table', () => {
  const lines = DUMP.split('\n');
  const without = (i: number): string => lines.filter((_, k) => k !== i).join('\n');
  const fails = (text: string, line: number, message: RegExp): void => {
    assert.throws(
      () => parseAcpidump(text, 'dump.txt'),
      (err: unknown) => err instanceof AcpiParseError && err.where.input === 'dump.txt' && err.where.at === `line ${line}` && message.test(err.message),
    );
  };
  fails(without(3), 4, /offset 0x20 where 0x10 was expected/);
  fails(lines.map((l, k) => (k === 2 ? l.replace('0000:', '0004:') : l)).join('\n'), 3, /offset 0x4 where 0x0/);
  fails(lines.map((l, k) => (k === 4 ? '    0020: ZZ 00' : l)).join('\n'), 5, /holds no bytes/);
  fails(lines.map((l, k) => (k === 2 ? '    00x0: 4D' : l)).join('\n'), 3, /bad offset/);
  fails('APIC @ 0x0\n\nDSDT @ 0x0\n    0000: 44\n', 1, /APIC has no hex data/);
  assert.deepEqual(parseAcpidump('no tables in here\n', 'x'), []);
});

test('file names follow acpixtract -a: lower case, numbered only when a signature repeats, never a path', () => {
  assert.deepEqual(acpixtractNames(['SSDT', 'DSDT', 'SSDT', 'ASF!', 'UEFI', 'SSDT', 'UEFI', 'RSDP']), [
    'ssdt1',
    'dsdt',
    'ssdt2',
    'asf!',
    'uefi1',
    'ssdt3',
    'uefi2',
    'rsdp',
  ]);
  assert.deepEqual(acpixtractNames(['../x', 'A/B\u0000']), ['___x', 'a_b_']);
});
