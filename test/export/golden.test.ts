import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { EVERY_FEATURE, exportIn, exportOk, exportPlan, P6T6, scratch } from './helpers.js';

/**
 * Golden exports of the plan with every feature, per target: the output and every note. Each
 * golden was checked by hand against the target's documentation (docs/export.md names the
 * documents); HVMPT_UPDATE_GOLDEN=1 rewrites them after a deliberate change, to review in git.
 */

const GOLDEN = join(REPO_ROOT, 'test', 'export', 'golden');
const TARGETS = ['qemu', 'libvirt', 'xen', 'kubevirt', 'nova'] as const;
const work = scratch('hvmpt-golden-');

function normalize(text: string, filesDir: string): string {
  return text.split(filesDir).join('<files>').split(REPO_ROOT).join('<repo>');
}

function golden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.HVMPT_UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.HVMPT_UPDATE_GOLDEN !== '1') assert.fail(`no golden ${file}: run with HVMPT_UPDATE_GOLDEN=1 and review it`);
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `${name} differs from its golden (HVMPT_UPDATE_GOLDEN=1 rewrites it)`);
}

const FILES = '/files';

for (const target of TARGETS) {
  test(`${target}: the every-feature plan with the host's facts matches its golden export and notes`, () => {
    const e = exportIn(EVERY_FEATURE, target, { host: P6T6, filesDir: FILES, ...(target === 'qemu' ? { format: 'sh' as const } : {}) });
    golden(`every-feature.${target}`, normalize(e.text, FILES));
    golden(`every-feature.${target}.notes`, normalize(e.notes.join('\n') + '\n', FILES));
  });
}

test('without --host the plan is described against this machine, which lacks its devices: each entry is refused by plan path (exit 1)', () => {
  const e = exportPlan(work, EVERY_FEATURE, 'nova');
  assert.equal(e.status, 1, e.stderr);
  assert.match(e.stderr, /pci\.passthrough\[\d\]\.host: no (PCI function|function #\d with IDs) .* on this host/);
});

test('the command line writes what the exporter makes: the text, the files it names, the notes on stderr', () => {
  const cli = exportOk(work, EVERY_FEATURE, 'xen', ['--host', P6T6]);
  const inProcess = exportIn(EVERY_FEATURE, 'xen', { host: P6T6, filesDir: cli.filesDir });
  assert.equal(cli.text, inProcess.text);
  assert.deepEqual(cli.notes, inProcess.notes);
  for (const f of inProcess.files) assert.deepEqual(cli.file(f.name), f.bytes, f.name);
  assert.match(cli.stderr, /hvmpt: wrote acpi-firmware\.bin, smbios\.bin to /);
});

test('--strict turns the notes into an error that lists them (exit 1)', () => {
  const e = exportPlan(work, EVERY_FEATURE, 'libvirt', ['--strict', '--host', P6T6]);
  assert.equal(e.status, 1, e.stderr);
  assert.match(e.stderr, /hvmpt: .*every-feature\.yaml: libvirt cannot express \d+ part\(s\) of the plan \(--strict\): memory\.layout: /);
});

test('usage: an unknown target and --format for another target are usage errors (exit 2)', () => {
  assert.equal(hvmpt(['export', EVERY_FEATURE, '--to', 'vmware']).status, 2);
  const r = hvmpt(['export', EVERY_FEATURE, '--to', 'xen', '--format', 'sh']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--format is for --to qemu/);
});

test('a plan whose pass-through slot is taken is refused with the plan path (exit 1)', () => {
  const plan = join(work, 'clash.yaml');
  writeFileSync(plan, 'pci:\n  emulated:\n    - { name: a, at: "00:03.0", model: generic, options: { vendor: 0x1234, device: 0x11e8, class: 0xff00 } }\n  passthrough:\n    - { host: "0000:00:1f.3", at: "00:03.0" }\n');
  const r = hvmpt(['export', plan, '--to', 'qemu', '--host', P6T6]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /pci\.passthrough\[0\]\.at: slot 0000:00:03\.0 is taken by a/);
});
