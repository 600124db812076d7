import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';
import { DESKTOP, EVERY_FEATURE, exportIn, P6T6, scratch } from './helpers.js';

/** libvirt's own schema (Debian libvirt-clients' virt-xml-validate) is the oracle for every domain the exporter writes. */

const work = scratch('hvmpt-libvirt-');

function validate(name: string, xml: string): void {
  const file = join(work, `${name}.xml`);
  writeFileSync(file, xml);
  const r = run('virt-xml-validate', [file, 'domain']);
  assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout + r.stderr, /validates/);
}

test('every libvirt export validates as a domain with virt-xml-validate', (t) => {
  if (!skipUnlessCommand(t, 'virt-xml-validate', 'libvirt-clients')) return;
  if (!skipUnlessCommand(t, 'xmllint', 'libxml2-utils')) return;
  validate('every-feature', exportIn(EVERY_FEATURE, 'libvirt', { host: P6T6 }).text);
  validate('desktop', exportIn(DESKTOP, 'libvirt').text);
});

test('the validator is an oracle that can fail: a hostdev source address with a type, as guest addresses have, is refused', (t) => {
  if (!skipUnlessCommand(t, 'virt-xml-validate', 'libvirt-clients')) return;
  if (!skipUnlessCommand(t, 'xmllint', 'libxml2-utils')) return;
  const xml = exportIn(EVERY_FEATURE, 'libvirt', { host: P6T6 }).text.replace(/<source>\n(\s*)<address /, "<source>\n$1<address type='pci' ");
  const file = join(work, 'broken.xml');
  writeFileSync(file, xml);
  assert.notEqual(run('virt-xml-validate', [file, 'domain']).status, 0);
});

test('libvirt: pass-through entries become managed hostdevs at their planned guest addresses, with rom: off as <rom bar=off>', () => {
  const xml = exportIn(EVERY_FEATURE, 'libvirt', { host: P6T6 }).text;
  const hostdevs = [...xml.matchAll(/<hostdev mode='subsystem' type='pci' managed='(yes|no)'>([\s\S]*?)<\/hostdev>/g)].map((m) => ({ managed: m[1], body: m[2]! }));
  assert.equal(hostdevs.length, 5);
  const gpu = hostdevs.find((h) => h.body.includes("ua-gpu"))!;
  // dedicated: the host binds it at boot, so libvirt must not detach it (managed='no').
  assert.equal(gpu.managed, 'no');
  assert.match(gpu.body, /<source>\s*<address domain='0x0000' bus='0x06' slot='0x00' function='0x0'\/>/);
  assert.match(gpu.body, /<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0' multifunction='on'\/>/);
  const disk = hostdevs.find((h) => h.body.includes('ua-disk'))!;
  assert.match(disk.body, /<rom bar='off'\/>/);
  const usb = hostdevs.find((h) => h.body.includes('ua-usb'))!;
  // Behind the plan's bridge guestbr, which is controller index 1.
  assert.match(usb.body, /<address type='pci' domain='0x0000' bus='0x01' slot='0x01' function='0x0'\/>/);
  assert.match(xml, /<controller type='pci' index='1' model='pci-bridge'>[\s\S]*?<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'\/>/);
});
