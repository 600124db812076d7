/**
 * The hardware twin of every whole-machine dump in ../shared/fixtures/pci: `hvmpt plan --twin`,
 * composed as `hvmpt run` composes it, then dumped back in `lspci -xxxx` form. Debian's
 * `lspci -vvv -F` must decode it to the source machine's functions and topology, except where
 * the plan says it differs (the monitor's chipset at 00:00.0 and 00:01.0, functions moved
 * out of those slots).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { fixture } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { compareTwin, lspciBlocks, twinHidden, twinMoves } from '../helpers/twin-compare.js';
import { hvmpt, run } from '../helpers/run.js';

/** Whole machines among the pciutils test dumps (SOURCES.md). */
const MACHINES = ['tree-asus-p6t6', 'tree-fujitsu-p8010', 'PCI-X-bridges-and-domains'];

for (const name of MACHINES) {
  test(`the twin of ${name}: lspci -vvv -F reads the composed guest bus as the source machine, less the documented differences`, (t) => {
    if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
    const dir = mkdtempSync(join(tmpdir(), 'hvmpt-twin-'));
    try {
      const dump = fixture('pci', 'pciutils-tests', name);
      const planFile = join(dir, 'twin.yaml');
      const r = hvmpt(['plan', '--from', dump, '--twin', '--out', planFile]);
      assert.equal(r.status, 0, r.stderr);
      const m = composePlanFile(planFile);
      const out = join(dir, 'twin.lspci');
      writeFileSync(out, writeLspciDump(m.pci));
      compareTwin(lspciBlocks(dump), lspciBlocks(out), twinMoves(planFile, dump), twinHidden(planFile, dump));
      // The differences the plan lists say why, one per kind of change.
      const text = run('cat', [planFile]).stdout;
      assert.match(text, /# Differences from the real machine:/);
      assert.match(text, /the monitor's i440FX host bridge at 00:00.0 and PIIX3 ISA bridge at 00:01.0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
