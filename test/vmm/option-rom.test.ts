import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { OptionRomError, parseOptionRom, romMismatch } from '../../src/hw/pci/option-rom.js';

const ROMS: ReadonlyArray<[string, number, number, number]> = [
  ['/usr/lib/ipxe/qemu/pxe-e1000.rom', 0x8086, 0x100e, 1],
  ['/usr/lib/ipxe/qemu/efi-e1000.rom', 0x8086, 0x100e, 2],
  ['/usr/share/seabios/vgabios-stdvga.bin', 0x1234, 0x1111, 1],
];

test('option ROMs from Debian packages: images, IDs, code types, checksums, BAR size', (t) => {
  const present = ROMS.filter(([p]) => existsSync(p));
  if (present.length === 0) {
    const line = `SKIPPED (no ipxe-qemu or seabios ROMs; run scripts/setup.sh): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return;
  }
  for (const [path, vendor, device, images] of present) {
    const bytes = new Uint8Array(readFileSync(path));
    const rom = parseOptionRom(bytes, path);
    assert.equal(rom.images.length, images, path);
    assert.equal(rom.legacy?.vendorId, vendor);
    assert.equal(rom.legacy?.deviceId, device);
    assert.ok(rom.legacy?.checksumOk);
    assert.ok(rom.barSize >= bytes.length && (rom.barSize & (rom.barSize - 1)) === 0);
    assert.equal(romMismatch(rom, vendor, device), undefined);
    assert.match(romMismatch(rom, 0x10ec, 0x8139) ?? '', /not 10ec:8139 \(SeaBIOS would not run it\)/);
    if (images > 1) assert.equal(rom.images[1]!.codeType, 3, 'the second image of an efi-*.rom is EFI');
  }
});

test('damaged option ROMs give a typed error with the offset, never a crash (mutations of a real ROM)', (t) => {
  const path = ROMS.map(([p]) => p).find((p) => existsSync(p));
  if (path === undefined) {
    const line = `SKIPPED (no option ROM files; run scripts/setup.sh): ${t.name}`;
    process.stdout.write(line + '\n');
    t.skip(line);
    return;
  }
  const original = new Uint8Array(readFileSync(path));
  assert.throws(() => parseOptionRom(original.subarray(0, 0x10), 'short.rom'), (e: unknown) => e instanceof OptionRomError && e.message === 'short.rom: offset 0x0: image header runs past the end of the file');
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(0x40), fc.nat(255)), { minLength: 1, maxLength: 6 }), fc.nat(original.length), (edits, cut) => {
      const b = Uint8Array.from(original.subarray(0, Math.max(cut, 0x40)));
      const v = new DataView(b.buffer);
      const pcir = v.getUint16(0x18, true);
      for (const [off, val] of edits) {
        // Aim at the header and the PCIR structure, where the parser looks.
        const at = off < 0x20 ? off : pcir + (off - 0x20);
        if (at < b.length) b[at] = val;
      }
      try {
        parseOptionRom(b, 'mutated.rom');
      } catch (err) {
        if (!(err instanceof OptionRomError)) throw err;
      }
    }),
    { numRuns: 500 },
  );
});
