import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadCapture } from '../../src/host/pci/load.js';
import { loadPciNames } from '../../src/host/pci/ids.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { NO_NAMES, parsePciIds } from '../../src/hw/pci/ids.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { fixture } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';

const IDS = fixture('pci', 'pci.ids');

test('device headings name vendor, device and class exactly as `lspci -nn` does with the same pci.ids', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const names = parsePciIds(readFileSync(IDS, 'latin1'));
  for (const dump of ['tree-asus-p6t6', 'tree-fujitsu-p8010', 'PCI-X-bridges-and-domains', 'cap-vc-and-rcl']) {
    const file = fixture('pci', 'pciutils-tests', dump);
    const ours = writeLspciDump(composePci({ base: loadCapture(file) }, file), names)
      .split('\n')
      .filter((l) => /^[0-9a-f]{2,4}:[0-9a-f]{2}(:[0-9a-f]{2})?\.[0-7] /.test(l));
    const theirs = run('lspci', ['-nn', '-F', file, '-i', IDS]).stdout.trimEnd().split('\n');
    assert.ok(ours.length > 0);
    // lspci shortens the domain when every device is in domain 0; compare what follows it.
    const strip = (l: string): string => l.replace(/^(?:[0-9a-f]{4}:)?/, '');
    assert.deepEqual(ours.map(strip), theirs.map(strip), dump);
  }
});

test('pci.ids parsing: unknown IDs fall back to numbers, subclass to class, junk lines are ignored', () => {
  const names = parsePciIds('# c\n1234  Acme\n\t5678  Widget\n\t\t1234 0001  Sub\nzzzz junk\nC 02  Network controller\n\t00  Ethernet controller\n\t\t00  prog\n');
  assert.equal(names.vendor(0x1234), 'Acme');
  assert.equal(names.device(0x1234, 0x5678), 'Widget');
  assert.equal(names.device(0x1234, 0x9999), undefined);
  assert.equal(names.className(0x0200), 'Ethernet controller');
  assert.equal(names.className(0x0280), 'Network controller');
  assert.equal(names.className(0x0300), undefined);
  assert.equal(NO_NAMES.vendor(0x8086), undefined);
  // A missing database is not an error: names are decoration.
  assert.equal(loadPciNames('/nonexistent/pci.ids').vendor(0x8086), undefined);
});
