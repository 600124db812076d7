import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCapture } from '../../src/host/pci/load.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import { CAP_MSI, CAP_MSIX, knownCapability, walkCapabilities } from '../../src/hw/pci/capabilities.js';
import type { InterruptInfo } from '../../src/hw/pci/backend.js';
import { buildRealFunction, hidingAlso, undeliverableCapabilities, type CapabilityPolicy } from '../../src/hw/pci/real.js';
import { readLE } from '../../src/hw/pci/endian.js';
import { HEADER_TYPE, HEADER_TYPE_MULTIFUNCTION } from '../../src/hw/pci/regs.js';
import type { Capture } from '../../src/hw/pci/capture.js';
import { composePci, type FunctionPolicy } from '../../src/hw/pci/compose.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';
import { configBytes, PCIUTILS_TESTS, pciutilsFixtures, RecordingBackend } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'hvmpt-caps-'));
after(() => rmSync(work, { recursive: true, force: true }));

function reader(bytes: Uint8Array): (o: number, s: 1 | 2 | 4) => number {
  return (o, s) => readLE(bytes, o, s);
}

/** Capability offsets lspci -vvv prints for each device, in order. */
function lspciCaps(file: string): Map<string, number[]> {
  const r = run('lspci', ['-vvv', '-F', file]);
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, number[]>();
  for (const block of r.stdout.split('\n\n').filter((b) => b.trim() !== '')) {
    const bdf = block.split(' ')[0]!;
    out.set(bdf, [...block.matchAll(/^\tCapabilities: \[([0-9a-f]+)(?: v\d+)?\]/gm)].map((m) => parseInt(m[1]!, 16)));
  }
  return out;
}

test('the capability walk finds what lspci finds, in every function of every pciutils dump', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  let total = 0;
  for (const name of pciutilsFixtures()) {
    const file = join(PCIUTILS_TESTS, name);
    const cap = loadCapture(file);
    const theirs = lspciCaps(file);
    for (const fn of cap.functions) {
      const bdf = formatBdf(fn.bdf, cap.functions.some((f) => f.bdf.segment !== 0));
      const ours = walkCapabilities(reader(fn.bytes), fn.bytes.length, fn.bytes[0x0e]! & 0x7f).caps.map((c) => c.offset);
      assert.deepEqual(ours, theirs.get(bdf), `${name} ${bdf}`);
      total += ours.length;
    }
  }
  assert.ok(total > 300, `only ${total} capabilities compared`);
});

test('malformed chains are detected, not followed: loops, pointers into the header, past the end', () => {
  const loop = configBytes(256, [[0x06, 2, 0x10], [0x34, 1, 0x40], [0x40, 2, 0x5001], [0x50, 2, 0x4005]]);
  const w1 = walkCapabilities(reader(loop), 256, 0);
  assert.deepEqual(w1.caps.map((c) => c.offset), [0x40, 0x50]);
  assert.equal(w1.problems[0]?.kind, 'loop');
  const header = configBytes(256, [[0x06, 2, 0x10], [0x34, 1, 0x40], [0x40, 2, 0x2001]]);
  assert.equal(walkCapabilities(reader(header), 256, 0).problems[0]?.kind, 'into-header');
  const short = configBytes(64, [[0x06, 2, 0x10], [0x34, 1, 0x80]]);
  assert.equal(walkCapabilities(reader(short), 64, 0).problems[0]?.kind, 'out-of-range');
  // Extended: a PCIe capability, then 0x100 -> 0x200 -> 0x100.
  const ext = configBytes(4096, [[0x06, 2, 0x10], [0x34, 1, 0x40], [0x40, 2, 0x0010], [0x100, 4, 0x2001_0001], [0x200, 4, 0x1001_0003]]);
  const w2 = walkCapabilities(reader(ext), 4096, 0);
  assert.deepEqual(w2.caps.filter((c) => c.extended).map((c) => c.offset), [0x100, 0x200]);
  assert.equal(w2.problems[0]?.kind, 'loop');
  const below = configBytes(4096, [[0x06, 2, 0x10], [0x34, 1, 0x40], [0x40, 2, 0x0010], [0x100, 4, 0x0801_0001]]);
  assert.equal(walkCapabilities(reader(below), 4096, 0).problems[0]?.kind, 'into-header');
  // A conventional device's space past 0x100 is not read as capabilities (the RS690 aliases it).
  const rs690 = loadCapture(join(PCIUTILS_TESTS, 'broken-ecaps')).functions[0]!;
  const w3 = walkCapabilities(reader(rs690.bytes), rs690.bytes.length, 0);
  assert.deepEqual(w3.caps, []);
  assert.deepEqual(w3.problems, []);
});

function composedView(capture: Capture, policy: Omit<FunctionPolicy, 'path'>, name: string): string {
  const file = join(work, name);
  writeFileSync(file, writeLspciDump(composePci({ base: capture, functions: [{ ...policy, path: 'functions[0]' }] })));
  return file;
}

test('hiding capabilities relinks the chains, and lspci walks what is left', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const capture = loadCapture(join(PCIUTILS_TESTS, 'cap-aer-root'));
  const original = lspciCaps(join(PCIUTILS_TESTS, 'cap-aer-root')).get('00:02.0')!;
  assert.deepEqual(original, [0x40, 0x60, 0x90, 0xe0, 0x100, 0x110, 0x148, 0x1d0, 0x250, 0x280, 0x300]);
  // MSI from the middle of the standard list; the extended list's head (0x100) and AER.
  const file = composedView(
    capture,
    { target: '00:02.0', capabilities: { hide: [{ extended: false, id: 0x05 }, { extended: true, id: 0x0b }, { extended: true, id: 0x01 }] } },
    'hidden.txt',
  );
  const caps = lspciCaps(file).get('00:02.0')!;
  // 0x100 remains as a null header pointing on; lspci shows it as an empty capability.
  assert.deepEqual(caps.filter((o) => o !== 0x100), [0x40, 0x90, 0xe0, 0x110, 0x250]);
  const text = run('lspci', ['-vvv', '-s', '00:02.0', '-F', file]).stdout;
  assert.doesNotMatch(text, /MSI:/);
  assert.doesNotMatch(text, /Advanced Error Reporting/);
  assert.doesNotMatch(text, /ID=0002/, 'the vendor-specific capability at 0x100 is gone');
  assert.match(text, /Express \(v2\) Root Port/);
  // Every standard capability hidden: Status says there is no list.
  const none = composedView(capture, { target: '00:02.0', capabilities: { hide: [0x0d, 0x05, 0x10, 0x01].map((id) => ({ extended: false, id })) } }, 'none.txt');
  const text2 = run('lspci', ['-vvv', '-s', '00:02.0', '-F', none]).stdout;
  assert.match(text2, /Status: Cap- /);
  assert.doesNotMatch(text2, /Capabilities:/);
});

test('a whitelist hides the capabilities hvmpt does not know and keeps the rest; SR-IOV and resizable BAR are hidden unless allowed', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const cxl = loadCapture(join(PCIUTILS_TESTS, 'cap-dvsec-cxl'));
  const before = lspciCaps(join(PCIUTILS_TESTS, 'cap-dvsec-cxl')).get('6b:00.0')!;
  assert.ok(before.includes(0x200), 'the unknown extended capability 0x0008 at 0x200');
  const f = cxl.functions.find((x) => x.bdf.bus === 0x6b)!;
  const unknown = walkCapabilities(reader(f.bytes), f.bytes.length, 0)
    .caps.filter((c) => knownCapability(c.extended, c.id) === undefined)
    .map((c) => c.offset);
  assert.deepEqual(unknown, [0x200]);
  const file = composedView(cxl, { target: '6b:00.0', capabilities: { unknown: 'hide', hideDangerous: false } }, 'whitelist.txt');
  const after = lspciCaps(file).get('6b:00.0')!;
  assert.deepEqual(after, before.filter((o) => !unknown.includes(o)));

  const rebar = loadCapture(join(PCIUTILS_TESTS, 'cap-rebar'));
  const defaults = lspciCaps(composedView(rebar, { target: '09:00.0', capabilities: {} }, 'rebar.txt')).get('09:00.0')!;
  const rebarText = run('lspci', ['-vvv', '-F', join(PCIUTILS_TESTS, 'cap-rebar')]).stdout;
  const rebarAt = parseInt(/Capabilities: \[([0-9a-f]+) v1\] Physical Resizable BAR/.exec(rebarText)![1]!, 16);
  assert.ok(!defaults.includes(rebarAt), 'resizable BAR hidden by default under a policy');
  const allowed = lspciCaps(composedView(rebar, { target: '09:00.0', capabilities: { allow: [{ extended: true, id: 0x15 }] } }, 'rebar2.txt')).get('09:00.0')!;
  assert.ok(allowed.includes(rebarAt), 'kept when allowed');
});

test('a hidden capability reads as zeros and ignores writes', () => {
  const capture = loadCapture(join(PCIUTILS_TESTS, 'cap-aer-root'));
  const c = composePci({ base: capture, functions: [{ target: '00:02.0', capabilities: { hide: [{ extended: false, id: 0x05 }] }, path: 'f' }] });
  const fn = c.entries.find((e) => e.fn.id === '00:02.0')!.fn;
  for (let o = 0x60; o < 0x60 + 0x14; o += 4) assert.equal(fn.read(o, 4), 0, `MSI dword at 0x${o.toString(16)}`);
  fn.write(0x64, 4, 0xfee0_0000);
  assert.equal(fn.read(0x64, 4), 0);
  assert.equal(fn.backend!.read(0x64, 4), capture.functions[0]!.bytes[0x64]! | 0, 'nothing reached the device');
});

test('virtualized MSI and PCIe registers: the guest programs MSI in hvmpt, never the link or FLR', () => {
  const capture = loadCapture(join(PCIUTILS_TESTS, 'cap-aer-root'));
  const fn = composePci({ base: capture }).entries.find((e) => e.fn.id === '00:02.0')!.fn;
  const dev = fn.backend!;
  const msiAddr = dev.read(0x64, 4);
  fn.write(0x64, 4, 0xfee0_1000);
  assert.equal(fn.read(0x64, 4), 0xfee0_1000);
  assert.equal(dev.read(0x64, 4), msiAddr, 'MSI address is emulated');
  fn.write(0x62, 2, 0x0001);
  assert.equal(fn.read(0x62, 2) & 1, 1, 'MSI enable is the guest\'s');
  const lnkctl = dev.read(0x90 + 0x10, 2);
  fn.write(0x90 + 0x10, 2, lnkctl | 0x30);
  assert.equal(fn.read(0x90 + 0x10, 2) & 0x30, 0, 'link disable and retrain read 0');
  assert.equal(dev.read(0x90 + 0x10, 2) & 0x30, lnkctl & 0x30, 'and never reach the device');
  fn.write(0x90 + 0x08, 2, 0x8000);
  assert.equal(dev.read(0x90 + 0x08, 2) & 0x8000, 0, 'FLR never reaches the device');
});

test('MSI and MSI-X a back-end offers no vector for are hidden from the guest, whatever the plan allows; those it offers stay', () => {
  // A real function with both, from the pciutils dumps.
  const real = pciutilsFixtures()
    .flatMap((name) => loadCapture(join(PCIUTILS_TESTS, name)).functions.map((fn) => ({ name, fn })))
    .find(({ fn }) => {
      const ids = walkCapabilities(reader(fn.bytes), fn.bytes.length, fn.bytes[0x0e]! & 0x7f).caps.filter((c) => !c.extended).map((c) => c.id);
      return ids.includes(CAP_MSI) && ids.includes(CAP_MSIX);
    });
  assert.ok(real !== undefined, 'a pciutils dump holds a function with MSI and MSI-X');
  const guestCaps = (interrupts: InterruptInfo, plan?: CapabilityPolicy): number[] => {
    const capabilities = hidingAlso(plan, undeliverableCapabilities(interrupts));
    const { fn } = buildRealFunction({ id: 'hot', backend: new RecordingBackend(real.fn.bytes), ...(capabilities === undefined ? {} : { capabilities }) });
    return walkCapabilities((o, s) => fn.read(o, s), real.fn.bytes.length, fn.read(HEADER_TYPE, 1) & ~HEADER_TYPE_MULTIFUNCTION).caps.filter((c) => !c.extended).map((c) => c.id);
  };
  const where = `${real.name} ${formatBdf(real.fn.bdf)}`;
  // uio: INTx only. A plan that allows MSI does not bring it back.
  const uio = guestCaps({ intx: 1, msi: 0, msix: 0 }, { allow: [{ extended: false, id: CAP_MSI }] });
  assert.ok(!uio.includes(CAP_MSI) && !uio.includes(CAP_MSIX), `${where}: ${uio.join(',')}`);
  assert.ok(uio.length > 0, 'the other capabilities stay');
  const vfio = guestCaps({ intx: 1, msi: 1, msix: 8 });
  assert.ok(vfio.includes(CAP_MSI) && vfio.includes(CAP_MSIX), `${where}: ${vfio.join(',')}`);
  assert.deepEqual(guestCaps({ intx: 1, msi: 1, msix: 0 }), vfio.filter((id) => id !== CAP_MSIX));
  assert.equal(hidingAlso(undefined, undeliverableCapabilities({ intx: 1, msi: 4, msix: 4 })), undefined, 'nothing to hide, no policy made');
});
