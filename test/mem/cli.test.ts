import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hvmpt } from '../helpers/run.js';
import { REPO_ROOT, fixture } from '../helpers/paths.js';

const X230 = fixture('dmesg', 'laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt');
const XEN = fixture('dmesg', 'xen-dom0-amd-890fx-ivrs__xen4.17-linux5.16.serial.excerpt.txt');
const SEED = join(REPO_ROOT, 'examples', 'mem', 'seed-host.dmesg');
const HEX = /^0x[0-9a-f]+$/;

interface JsonMap {
  entries: Array<{ start: string; end: string; type: string }>;
}

test('e820 show prints Linux, Xen and JSON forms; each parses back to the same map', () => {
  const json = hvmpt(['e820', 'show', X230, '--format', 'json']);
  assert.equal(json.status, 0, json.stderr);
  const map = JSON.parse(json.stdout) as JsonMap;
  assert.equal(map.entries.length, 21);
  assert.deepEqual(map.entries[0], { start: '0x0', end: '0x9d800', type: 'usable' });
  assert.deepEqual(map.entries[10], { start: '0xdaf9f000', end: '0xdafff000', type: 'acpi' });
  for (const e of map.entries) assert.ok(HEX.test(e.start) && HEX.test(e.end) && BigInt(e.start) < BigInt(e.end));
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-e820-'));
  for (const format of ['linux', 'xen']) {
    const text = hvmpt(['e820', 'show', X230, '--format', format]);
    assert.equal(text.status, 0, text.stderr);
    const file = join(dir, format);
    writeFileSync(file, text.stdout);
    const back = hvmpt(['e820', 'show', file, '--format', 'json']);
    assert.equal(back.status, 0, back.stderr);
    assert.deepEqual(JSON.parse(back.stdout), map, format);
  }
  const jsonFile = join(dir, 'map.json');
  writeFileSync(jsonFile, json.stdout);
  assert.deepEqual(JSON.parse(hvmpt(['e820', 'show', jsonFile, '--format', 'json']).stdout), map);
  assert.match(hvmpt(['e820', 'show', X230]).stdout, /^BIOS-e820: \[mem 0x0000000000000000-0x000000000009d7ff\] usable$/m);
});

test('e820 show lists the maps of a log and selects one by label; stdin works', () => {
  const chosen = hvmpt(['e820', 'show', XEN]);
  assert.match(chosen.stderr, /note: .*holds 3 maps \(Xen-e820 \(line 5, 9 entries\), .*\); using Xen-e820 \(--map chooses\)/);
  const list = hvmpt(['e820', 'show', XEN, '--list']);
  assert.equal(list.stdout, 'Xen-e820 (line 5, 9 entries)\nXen (line 53, 12 entries)\nuser (line 68, 12 entries)\n');
  const user = hvmpt(['e820', 'show', '-', '--map', 'user'], { input: hvmpt(['e820', 'show', XEN, '--map', 'user']).stdout });
  assert.equal(user.status, 0, user.stderr);
  assert.match(user.stdout, /^user: \[mem 0x0000000000100000-0x000000007fffffff\] usable$/m);
});

test('overlaps are resolved by precedence with the warning on stderr; no map is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-e820-'));
  const file = join(dir, 'overlap.log');
  writeFileSync(
    file,
    '[0.0] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable\n' +
      '[0.0] BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable\n' +
      '[0.0] BIOS-e820: [mem 0x000000003ff00000-0x000000003fffffff] reserved\n',
  );
  const r = hvmpt(['e820', 'show', file, '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^hvmpt: warning: .*overlap\.log: BIOS-e820 map \(line 1\): entries overlap at \[mem 0x3ff00000-0x3fffffff\] \(usable, reserved\): treated as reserved$/m);
  assert.deepEqual((JSON.parse(r.stdout) as JsonMap).entries.slice(1), [
    { start: '0x100000', end: '0x3ff00000', type: 'usable' },
    { start: '0x3ff00000', end: '0x40000000', type: 'reserved' },
  ]);
  const none = hvmpt(['e820', 'show', fixture('dmesg', 'minipc-apple-macmini6-2__wrapped-ringbuffer-no-e820.dmesg.head.txt')]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /^hvmpt: .*no-e820\.dmesg\.head\.txt: no E820 memory map found/);
  assert.equal(none.stdout, '');
  const missing = hvmpt(['e820', 'show', join(dir, 'nope')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope: cannot read: ENOENT/);
  assert.equal(hvmpt(['e820', 'show', X230, '--format', 'yaml']).status, 2);
});

test('e820 carve reproduces the seed-style hypervisor log and prints the GRUB-escaped parameter', () => {
  const r = hvmpt(['e820', 'carve', SEED, '--size', '0x67f00000', '--above', '0x7400000']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const at = lines.indexOf('(XEN) NEO: Machine Available RAM: 2120036352');
  assert.ok(at > 0, r.stdout);
  assert.deepEqual(lines.slice(at + 1, at + 4), [
    '(XEN) 0000000000000000 - 000000000008f000 (usable)',
    '(XEN) 0000000000100000 - 0000000007400000 (usable)',
    '(XEN) 0000000007400000 - 000000006f300000 (1:1)',
  ]);
  assert.ok(lines.includes('  memmap=1663M\\$116M'));
  assert.ok(lines.includes('  GRUB_CMDLINE_LINUX="memmap=1663M\\\\\\$116M"'));
});

test('e820 carve --json has the contract shape: hostAfter, kernelParams, guests[{identity, e820, mayMap}]', () => {
  const r = hvmpt(['e820', 'carve', SEED, '--size', '512M', '--guests', '2', '--bar', '1:0xe8000000+16M=gpu', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    hostAfter: JsonMap;
    kernelParams: string[];
    guests: Array<{ identity: Array<{ start: string; end: string }>; e820: JsonMap; mayMap: Array<{ start: string; end: string; access: string }> }>;
  };
  assert.deepEqual(Object.keys(out), ['hostAfter', 'kernelParams', 'guests']);
  assert.deepEqual(out.kernelParams, ['memmap=1G\\$2M']);
  assert.deepEqual(out.hostAfter.entries.slice(0, 3), [
    { start: '0x0', end: '0x8f000', type: 'usable' },
    { start: '0x100000', end: '0x200000', type: 'usable' },
    { start: '0x200000', end: '0x40200000', type: '1:1' },
  ]);
  assert.equal(out.guests.length, 2);
  assert.deepEqual(out.guests[0]!.identity, [{ start: '0x200000', end: '0x20200000' }]);
  assert.deepEqual(out.guests[1]!.identity, [{ start: '0x20200000', end: '0x40200000' }]);
  for (const g of out.guests) {
    assert.deepEqual(Object.keys(g), ['identity', 'e820', 'mayMap']);
    assert.ok(g.e820.entries.every((e) => HEX.test(e.start) && HEX.test(e.end)));
  }
  // The BAR at 0xe8000000 lies inside a host-reserved range (0xe0000000-0xefffffff) of this host: refused.
  assert.deepEqual(out.guests[1]!.mayMap, [{ start: '0x20200000', end: '0x40200000', access: 'rw' }]);
});

test('e820 carve takes its request from a plan; bad values are errors naming the field', () => {
  const plan = join(REPO_ROOT, 'examples', 'mem', 'plan.yaml');
  const r = hvmpt(['e820', 'carve', SEED, '--plan', plan, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { kernelParams: string[]; guests: Array<{ identity: unknown }> };
  assert.deepEqual(out.guests[0]!.identity, [{ start: '0x7400000', end: '0x6f300000' }]);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-plan-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'memory:\n  size: 1G\n  identity: { align: lots }\n  reservations: [{ start: 0x1000, owner: me }]\n');
  const e = hvmpt(['e820', 'carve', SEED, '--plan', bad]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /bad\.yaml: memory\.identity\.align: 'lots' is not a size/);
  assert.match(e.stderr, /memory\.reservations\[0\]\.owner: /);
  writeFileSync(bad, 'memory:\n  size: 1G\n  reservations: [{ start: 0x1000 }]\n');
  assert.match(hvmpt(['e820', 'carve', SEED, '--plan', bad]).stderr, /memory\.reservations\[0\]: give exactly one of end and size/);
  writeFileSync(bad, 'memory:\n  size: 1G\n');
  assert.match(hvmpt(['e820', 'carve', SEED, '--plan', bad]).stderr, /bad\.yaml: memory\.layout: layout is 'ordinary': only an identity layout is carved/);
  const u = hvmpt(['e820', 'carve', SEED]);
  assert.equal(u.status, 2, 'a missing option is a usage error');
  assert.match(u.stderr, /--size: say how much identity RAM/);
  const b = hvmpt(['e820', 'carve', SEED, '--size', '1G', '--bar', 'oops']);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--bar: 'oops' is not \[guest:\]START\+SIZE\[=NAME\]/);
  const big = hvmpt(['e820', 'carve', SEED, '--size', '4G']);
  assert.equal(big.status, 1);
  assert.match(big.stderr, /no room for guest 0's 4 GiB/);
});

test('e820 carve grants firmware areas read-only and honours --low-memory none', () => {
  const r = hvmpt(['e820', 'carve', SEED, '--size', '64M', '--firmware', '0xfd000000+128K=rom', '--low-memory', 'none', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const g = (JSON.parse(r.stdout) as { guests: Array<{ e820: JsonMap; mayMap: Array<{ start: string; end: string; access: string }> }> }).guests[0]!;
  assert.deepEqual(g.mayMap[1], { start: '0xfd000000', end: '0xfd020000', access: 'ro' });
  assert.notEqual(g.e820.entries[0]!.start, '0x0');
  const text = hvmpt(['e820', 'carve', SEED, '--size', '64M', '--format', 'linux']);
  assert.match(text.stdout, /^user: \[mem 0x0000000000200000-0x00000000041fffff\] reserved$/m);
  assert.match(text.stdout, /memmap=exactmap memmap=572K@0 memmap=64M@2M /);
});
