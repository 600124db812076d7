import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';
import { PCIUTILS_TESTS, pciutilsFixtures } from './helpers.js';

/**
 * The acceptance, checked with Debian's lspci as the oracle: a mirrored capture reads
 * the same as the original, and a composed whole machine shows exactly the planned topology.
 */

const work = mkdtempSync(join(tmpdir(), 'hvmpt-pci-'));
after(() => rmSync(work, { recursive: true, force: true }));

function lspci(args: string[], file: string): string {
  const r = run('lspci', [...args, '-F', file]);
  assert.equal(r.status, 0, `lspci ${args.join(' ')} -F ${file}: ${r.stderr}`);
  return r.stdout;
}

function view(args: string[]): string {
  const r = hvmpt(['pci', 'view', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('every pciutils test dump mirrored through hvmpt reads the same in lspci -vvv -F', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const files = pciutilsFixtures();
  assert.ok(files.length >= 30, `expected the pciutils test dumps, found ${files.length}`);
  for (const name of files) {
    const original = join(PCIUTILS_TESTS, name);
    const mirrored = join(work, `mirror-${name}`);
    writeFileSync(mirrored, view([original, '--format', 'lspci-dump']));
    assert.equal(lspci(['-vvv'], mirrored), lspci(['-vvv'], original), `lspci -vvv differs for ${name}`);
    assert.equal(lspci(['-xxxx'], mirrored), lspci(['-xxxx'], original), `config bytes differ for ${name}`);
  }
});

// ------------------------------------------------------------------ the composed whole machine

/** lspci -tvn of the composed P6T6: the capture's tree with 00:1f.3 gone, the fake bridge at 05.0 with the edu device behind it, buses renumbered depth-first. */
const EXPECTED_ASUS_TREE = `-+-[0000:00]-+-00.0  8086:3405
 |           +-01.0-[01]--
 |           +-03.0-[02-05]----00.0-[03-05]--+-00.0-[04]----00.0  1000:0072
 |           |                               \\-02.0-[05]--
 |           +-05.0-[06]----00.0  1234:11e8
 |           +-07.0-[07]--+-00.0  10de:0a65
 |           |            \\-00.1  10de:0be3
 |           +-10.0  8086:3425
 |           +-10.1  8086:3426
 |           +-14.0  8086:342e
 |           +-14.1  8086:3422
 |           +-14.2  8086:3423
 |           +-14.3  8086:3438
 |           +-1a.0  8086:3a37
 |           +-1a.1  8086:3a38
 |           +-1a.2  8086:3a39
 |           +-1a.7  8086:3a3c
 |           +-1b.0  8086:3a3e
 |           +-1c.0-[08]--
 |           +-1c.1-[09]----00.0  10ec:8168
 |           +-1c.2-[0a]----00.0  10ec:8168
 |           +-1d.0  8086:3a34
 |           +-1d.1  8086:3a35
 |           +-1d.2  8086:3a36
 |           +-1d.7  8086:3a3a
 |           +-1e.0-[0b]--
 |           +-1f.0  8086:3a16
 |           \\-1f.2  8086:3a22
 \\-[0000:ff]-+-00.0  8086:2c41
             +-00.1  8086:2c01
             +-02.0  8086:2c10
             +-02.1  8086:2c11
             +-03.0  8086:2c18
             +-03.1  8086:2c19
             +-03.4  8086:2c1c
             +-04.0  8086:2c20
             +-04.1  8086:2c21
             +-04.2  8086:2c22
             +-04.3  8086:2c23
             +-05.0  8086:2c28
             +-05.1  8086:2c29
             +-05.2  8086:2c2a
             +-05.3  8086:2c2b
             +-06.0  8086:2c30
             +-06.1  8086:2c31
             +-06.2  8086:2c32
             \\-06.3  8086:2c33
`;

interface LspciDevice {
  bdf: string;
  bus: number;
  header: string;
  secondary?: number;
  subordinate?: number;
  windows: { io?: [bigint, bigint]; mem?: [bigint, bigint]; pref?: [bigint, bigint] };
  regions: Array<{ index: number; kind: 'io' | 'mem'; prefetchable: boolean; address: bigint }>;
  text: string;
}

/** The parts of `lspci -vvv` output the checks need. */
function parseLspci(text: string): LspciDevice[] {
  const out: LspciDevice[] = [];
  for (const block of text.split('\n\n').filter((b) => b.trim() !== '')) {
    const lines = block.split('\n');
    const header = lines[0]!;
    const bdf = header.split(' ')[0]!;
    const d: LspciDevice = { bdf, bus: parseInt(bdf.split(':')[0]!, 16), header, windows: {}, regions: [], text: block };
    for (const l of lines) {
      let m = /Bus: primary=\w+, secondary=(\w+), subordinate=(\w+)/.exec(l);
      if (m) [d.secondary, d.subordinate] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16)];
      m = /^\t(I\/O|Memory|Prefetchable memory) behind bridge: ([0-9a-f]+)-([0-9a-f]+) \[size/.exec(l);
      if (m) d.windows[m[1] === 'I/O' ? 'io' : m[1] === 'Memory' ? 'mem' : 'pref'] = [BigInt(`0x${m[2]}`), BigInt(`0x${m[3]}`)];
      m = /^\tRegion (\d): (Memory at|I\/O ports at) ([0-9a-f]+)(?: \((\d+-bit|low-1M), (non-)?prefetchable\))?/.exec(l);
      if (m) d.regions.push({ index: Number(m[1]), kind: m[2] === 'Memory at' ? 'mem' : 'io', prefetchable: m[4] !== undefined && m[5] === undefined, address: BigInt(`0x${m[3]}`) });
    }
    out.push(d);
  }
  return out;
}

interface JsonBar {
  index: number;
  kind: string;
  prefetchable: boolean;
  size: string | null;
  address: string;
}
interface JsonView {
  functions: Array<{ bdf: string; id: string; vendorId: string; deviceId: string; bars: JsonBar[] }>;
  hidden: Array<{ id: string }>;
  warnings: string[];
}

function checkComposed(dump: string, plan: string, hidden: { bdf: string; ids: string }, expectTree?: string): void {
  const out = join(work, `composed-${hidden.ids.replace(':', '-')}.txt`);
  writeFileSync(out, view([dump, '--plan', plan, '--format', 'lspci-dump']));
  const json = JSON.parse(view([dump, '--plan', plan, '--format', 'json'])) as JsonView;

  const tree = lspci(['-tvn'], out);
  if (expectTree !== undefined) assert.equal(tree, expectTree);
  // The hidden device is nowhere: not in the tree, not in any listing, not even its IDs.
  assert.ok(!tree.includes(hidden.ids), `${hidden.ids} in lspci -tvn`);
  assert.ok(!lspci(['-nvvv'], out).includes(hidden.ids), `${hidden.ids} in lspci -nvvv`);
  assert.ok(json.hidden.some((h) => h.id === hidden.bdf));

  const devices = parseLspci(lspci(['-vvv'], out));
  const bySlot = new Map(json.functions.map((f) => [f.bdf.slice(5), f]));
  const bridges = devices.filter((d) => d.secondary !== undefined);
  let checked = 0;
  for (const d of devices) {
    const f = bySlot.get(d.bdf);
    assert.ok(f, `lspci shows ${d.bdf}, hvmpt's view has no such function`);
    // lspci 3.9 reading a dump shows the upper half of a 64-bit BAR above 4 GiB as a region
    // of its own; hvmpt's JSON says which registers are upper halves.
    const uppers = new Set(f.bars.filter((b) => b.kind === 'mem64').map((b) => b.index + 1));
    for (const r of d.regions.filter((x) => !uppers.has(x.index))) {
      const bar: JsonBar | undefined = f.bars.find((b) => b.index === r.index);
      assert.ok(bar, `${d.bdf} region ${r.index} is not one of hvmpt's BARs`);
      assert.equal(r.address, BigInt(bar.address), `${d.bdf} BAR ${r.index} address`);
      assert.ok(bar.size !== null, `${d.bdf} BAR ${r.index} has a size`);
      const end = r.address + BigInt(bar.size) - 1n;
      // Every bridge whose bus range holds this device must forward the BAR through the right window.
      for (const b of bridges.filter((x) => d.bus >= x.secondary! && d.bus <= x.subordinate!)) {
        const w = r.kind === 'io' ? b.windows.io : bar.prefetchable ? b.windows.pref : b.windows.mem;
        assert.ok(w, `${d.bdf} BAR ${r.index} is behind ${b.bdf}, whose ${r.kind === 'io' ? 'I/O' : bar.prefetchable ? 'prefetchable' : 'memory'} window is closed`);
        assert.ok(r.address >= w[0] && end <= w[1], `${d.bdf} BAR ${r.index} ${r.address.toString(16)}-${end.toString(16)} outside ${b.bdf}'s window ${w[0].toString(16)}-${w[1].toString(16)}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 5, `only ${checked} BAR/window pairs checked`);
  // No two BARs overlap.
  const ranges = json.functions.flatMap((f) => f.bars.filter((b) => b.size !== null && b.kind !== 'rom').map((b) => ({ what: `${f.bdf} BAR ${b.index}`, io: b.kind === 'io', lo: BigInt(b.address), hi: BigInt(b.address) + BigInt(b.size!) - 1n })));
  for (const a of ranges) for (const b of ranges) if (a !== b && a.io === b.io) assert.ok(a.hi < b.lo || b.hi < a.lo, `${a.what} overlaps ${b.what}`);
}

test('the composed ASUS P6T6: exact topology, hidden SMBus nowhere, bridge windows cover their devices', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  checkComposed(join(PCIUTILS_TESTS, 'tree-asus-p6t6'), join(REPO_ROOT, 'examples', 'pci', 'asus-p6t6.yaml'), { bdf: '00:1f.3', ids: '8086:3a30' }, EXPECTED_ASUS_TREE);
  const out = view([join(PCIUTILS_TESTS, 'tree-asus-p6t6'), '--plan', join(REPO_ROOT, 'examples', 'pci', 'asus-p6t6.yaml'), '--format', 'lspci-dump']);
  const file = join(work, 'asus.txt');
  writeFileSync(file, out);
  const edu = parseLspci(lspci(['-vvv', '-s', '06:00.0'], file))[0]!;
  assert.match(edu.text, /Device 1234:11e8 \(rev 10\)/);
  assert.match(edu.text, /Region 0: Memory at c[0-9a-f]{7} \(32-bit, non-prefetchable\)/);
  assert.match(edu.text, /Capabilities: \[40\] Power Management version 3/);
  assert.match(edu.text, /Capabilities: \[48\] MSI: Enable- Count=1\/1 Maskable- 64bit\+/);
  assert.match(edu.text, /Interrupt: pin A/);
});

test('the composed Fujitsu P8010: BAR sizes guessed by alignment, a fake bridge, the Wi-Fi hidden by ID', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  checkComposed(join(PCIUTILS_TESTS, 'tree-fujitsu-p8010'), join(REPO_ROOT, 'examples', 'pci', 'fujitsu-p8010.yaml'), { bdf: '14:00.0', ids: '8086:4229' });
});
