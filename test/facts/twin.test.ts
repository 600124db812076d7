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
import { compareTwin, lspciBlocks, twinHidden, twinMoves, withoutKernelLines } from '../helpers/twin-compare.js';
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

test('a guest\'s config dump cut by its kernel\'s console lines reads whole again, as lspci -F takes it', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const row = (at: number): string => `${at.toString(16).padStart(2, '0')}: ${Array.from({ length: 16 }, (_, i) => (i === 0 && at === 0 ? '86' : '00')).join(' ')}`;
  const whole = ['0000:00:00.0 Function', ...Array.from({ length: 16 }, (_, i) => row(i * 16)), ''].join('\n');
  // As a nested guest under TCG printed it: an RCU stall report in the middle of the row at 0x50.
  const cut = whole.replace(`${row(0x50)}\n`, `${row(0x50).slice(0, 26)}[   45.919106] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n[   45.922787] rcu: \t1-....: (12 ticks this GP) idle=6b7c/1/0x4000000000000000\n${row(0x50).slice(26)}\n`);
  assert.notEqual(cut, whole);
  assert.equal(withoutKernelLines(cut), whole);
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-twin-cut-'));
  try {
    writeFileSync(join(dir, 'cut.lspci'), cut);
    writeFileSync(join(dir, 'clean.lspci'), withoutKernelLines(cut));
    assert.notEqual(run('lspci', ['-F', join(dir, 'cut.lspci')]).status, 0, 'lspci refuses the cut dump');
    assert.equal(run('lspci', ['-F', join(dir, 'clean.lspci')]).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
