/**
 * Bad and partial archives: each gives an error (exit 1) that names the archive and the file
 * inside it, never a crash. The archives are this machine's collection, cut or edited.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { create } from 'tar';
import { readFacts, readFactsTar } from '../../src/host/facts/archive.js';
import { collectorScriptPath } from '../../src/host/facts/collector.js';
import { FactsError, FactsFiles } from '../../src/hw/facts/files.js';
import { readSnapshot } from '../../src/hw/facts/snapshot.js';
import { hvmpt, run } from '../helpers/run.js';

let dir: string;
let good: string;
let files: FactsFiles;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hvmpt-archive-'));
  good = join(dir, 'good.tar');
  const r = run('sh', [collectorScriptPath(), '--out', good]);
  assert.equal(r.status, 0, r.stderr);
  files = readFacts(good);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The collection with some files changed (undefined removes one), packed again with node-tar. */
function edited(name: string, change: Record<string, Uint8Array | string | undefined>, keepManifest = true): string {
  const root = mkdtempSync(join(dir, 'tree-'));
  const all = new Map(files.paths().map((p) => [p, files.bytes(p)!]));
  for (const [p, v] of Object.entries(change)) {
    if (v === undefined) all.delete(p);
    else all.set(p, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  }
  if (!keepManifest) all.delete('MANIFEST');
  for (const [p, bytes] of all) {
    const full = join(root, 'hvmpt-facts', p);
    run('mkdir', ['-p', join(full, '..')]);
    writeFileSync(full, bytes);
  }
  const out = join(dir, name);
  create({ file: out, cwd: root, sync: true }, ['hvmpt-facts']);
  return out;
}

function firstFunction(): string {
  const dev = files.list('sys/bus/pci/devices')[0];
  assert.ok(dev !== undefined, 'this machine has a PCI function');
  return `sys/bus/pci/devices/${dev}`;
}

/** `hvmpt snapshot show` fails with exit 1 and a message naming `where`. */
function refused(archive: string, where: RegExp): void {
  const r = hvmpt(['snapshot', 'show', archive]);
  assert.equal(r.status, 1, `exit 1, not ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, where);
  assert.doesNotMatch(r.stderr, /internal error/);
  const a = hvmpt(['analyze', archive]);
  assert.equal(a.status, 1, a.stderr);
}

test('a good collection reads back: the archive and its unpacked directory give the same model', () => {
  const s = readSnapshot(files);
  const unpacked = mkdtempSync(join(dir, 'unpacked-'));
  assert.equal(run('tar', ['-xf', good, '-C', unpacked]).status, 0);
  const again = readSnapshot(readFacts(unpacked));
  assert.deepEqual(again.pci.functions.map((f) => f.config?.bytes), s.pci.functions.map((f) => f.config?.bytes));
  assert.deepEqual(again.acpi.images.map((i) => i.data), s.acpi.images.map((i) => i.data));
  // gzip too.
  assert.equal(run('sh', ['-c', `gzip -c "${good}" > "${join(dir, 'good.tar.gz')}"`]).status, 0);
  assert.equal(readFacts(join(dir, 'good.tar.gz')).paths().length, files.paths().length);
});

test('not an archive, or not a collection', () => {
  writeFileSync(join(dir, 'text.tar'), 'hello\n');
  refused(join(dir, 'text.tar'), /text\.tar: .*(not a complete tar archive|no hvmpt-facts)/);
  const other = mkdtempSync(join(dir, 'other-'));
  writeFileSync(join(other, 'x'), 'x');
  create({ file: join(dir, 'other.tar'), cwd: other, sync: true }, ['x']);
  refused(join(dir, 'other.tar'), /other\.tar: x: not in the hvmpt-facts\/ folder/);
  refused(join(dir, 'missing.tar'), /missing\.tar: cannot read: ENOENT/);
});

test('a cut archive names where it was cut, or the files it lost', () => {
  const bytes = readFileSync(good);
  // GNU tar pads the archive with zeros to a whole record: cut into the data, not the padding.
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  for (const cut of [700, Math.floor(end / 2), end - 100, end - (end % 512)]) {
    const p = join(dir, `cut-${cut}.tar`);
    writeFileSync(p, bytes.subarray(0, cut));
    const r = hvmpt(['snapshot', 'show', p]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`cut-${cut}\\.tar: (hvmpt-facts/\\S+: )?(.*cut short|not a complete tar archive|missing)`), r.stderr);
  }
  const fn = firstFunction();
  refused(edited('lost.tar', { [`${fn}/config`]: undefined }), new RegExp(`lost\\.tar: hvmpt-facts/${fn.replace(/\./g, '\\.')}/config: missing from the archive, though the MANIFEST lists it`));
  refused(edited('no-manifest.tar', {}, false), /no-manifest\.tar: hvmpt-facts\/MANIFEST: missing/);
});

test('a malformed file inside is an error naming it (and the line, for text)', () => {
  const fn = firstFunction();
  refused(edited('short-config.tar', { [`${fn}/config`]: new Uint8Array(3) }), new RegExp(`hvmpt-facts/${fn.replace(/\./g, '\\.')}/config: 3 bytes: a config space holds at least the 64-byte header`));
  refused(edited('resource.tar', { [`${fn}/resource`]: 'garbage\n' }), /hvmpt-facts\/.*\/resource: line 1: expected "0xSTART 0xEND 0xFLAGS"/);
  refused(edited('interrupts.tar', { 'proc/interrupts': 'no header here\n' }), /hvmpt-facts\/proc\/interrupts: line 1: expected the CPU0 CPU1/);
  refused(edited('mountinfo.tar', { 'proc/mountinfo': '1 2 3\n' }), /hvmpt-facts\/proc\/mountinfo: line 1: expected "ID PARENT/);
  refused(edited('format.tar', { collector: 'format=9\n' }), /hvmpt-facts\/collector: collection format 9; this hvmpt reads format 1/);
  refused(edited('vendor.tar', { [`${fn}/vendor`]: 'intel\n' }), /hvmpt-facts\/.*\/vendor: expected a hex number/);
  refused(edited('memmap.tar', { 'sys/firmware/memmap/0/start': 'zero\n' }), /hvmpt-facts\/sys\/firmware\/memmap/);
  const table = files.list('sys/firmware/acpi/tables').find((n) => files.bytes(`sys/firmware/acpi/tables/${n}`) !== undefined);
  if (table !== undefined) refused(edited('table.tar', { [`sys/firmware/acpi/tables/${table}`]: new Uint8Array(10) }), new RegExp(`hvmpt-facts/sys/firmware/acpi/tables/${table}: .*(too few|length)`));
});

test('an empty /proc/net/route (Linux with no IPv4 routing table yet) is no IPv4 route, not a malformed file', () => {
  const archive = edited('no-ipv4.tar', { 'proc/net/route': '' });
  const s = readSnapshot(readFacts(archive));
  const six = readSnapshot(files).host.routes?.filter((r) => r.family === 'ipv6') ?? [];
  assert.deepEqual(s.host.routes, six, 'only the IPv6 default routes are left');
  assert.equal(hvmpt(['analyze', archive]).status, 0);
  refused(edited('route.tar', { 'proc/net/route': 'no header\n' }), /hvmpt-facts\/proc\/net\/route: line 1: expected the "Iface Destination Gateway/);
});

test('the reader refuses members it never writes', () => {
  assert.throws(() => readFactsTar(new Uint8Array(1024), 'zeros.tar'), (e: unknown) => e instanceof FactsError && /zeros\.tar/.test(e.message));
  const root = mkdtempSync(join(dir, 'link-'));
  run('mkdir', ['-p', join(root, 'hvmpt-facts')]);
  run('ln', ['-s', '/etc/passwd', join(root, 'hvmpt-facts', 'collector')]);
  create({ file: join(dir, 'link.tar'), cwd: root, sync: true }, ['hvmpt-facts']);
  refused(join(dir, 'link.tar'), /link\.tar: hvmpt-facts\/collector: a SymbolicLink entry/);
});
