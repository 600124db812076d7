/**
 * `hvmpt run --report-html`: the page written after a run, with what the run recorded. It needs
 * /dev/kvm, so where there is none this file runs in a lab host; the page is checked as text
 * there (the pages themselves are loaded in Chromium by report.test.ts, on this machine: a
 * browser under the lab's TCG is too slow to load one within its timeouts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runRecordSchema } from '../../src/report/run-record.js';
import { Asm, microBios } from '../../tools/guest/asm.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from '../vmm/kvm-helpers.js';

test('hvmpt run --report-html writes the page after a run, with what the run recorded, the same page hvmpt report --run gives', (t) => {
  if (!skipUnlessKvm(t)) return;
  const work = mkdtempSync(join(tmpdir(), 'hvmpt-report-run-'));
  try {
    // A micro firmware: print "ready" and power off through the PM block.
    const a = new Asm(16).movImm('edx', 0x3f8, 2);
    for (const ch of new TextEncoder().encode('ready\n')) a.movImm('eax', ch, 1).outDx(1);
    a.movImm('edx', 0x604, 2).movImm('eax', 0x2000, 2).outDx(2).cli().hlt();
    writeFileSync(join(work, 'fw.bin'), microBios(a.bytes()));
    writeFileSync(join(work, 'micro.yaml'), 'name: micro\nmemory: { size: 16M }\nmachine:\n  firmware: fw.bin\n  timeout: 60\n');
    const html = join(work, 'run.html');
    const json = join(work, 'run.json');
    const r = hvmpt(['run', join(work, 'micro.yaml'), '--report', json, '--report-html', html]);
    assert.equal(r.status, 0, r.stderr);
    const record = runRecordSchema.parse(JSON.parse(readFileSync(json, 'utf8')));
    const page = readFileSync(html, 'utf8');
    assert.match(page, /^<!doctype html>/);
    assert.match(page, new RegExp(`<h2 id="run">Run</h2>\\n<p>ended: poweroff [^<]* exits: ${record.exits}`));
    // The same page as hvmpt report --run gives from the saved record.
    const again = hvmpt(['report', join(work, 'micro.yaml'), '--run', json, '--out', join(work, 'again.html')]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(join(work, 'again.html'), 'utf8'), page);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
