/**
 * examples/linux.yaml — the desktop plan's platform booted into Debian's kernel with the probe
 * initrd — on hvmpt's monitor, with Linux as the witness (it needs a /dev/kvm that runs a
 * paging kernel; `npm test` runs this file in a lab host where this machine's cannot):
 * 1. the PCI functions Linux enumerates are exactly the composed bus's visible ones (the hidden
 *    SMBus absent), and every endpoint BAR Linux holds is where the monitor's update-mapping
 *    log last put it;
 * 2. Linux's BIOS-e820 map is the plan's E820, SeaBIOS's own areas aside;
 * 3. Linux finds exactly the generated ACPI tables, with their lengths and OEM ID, every
 *    checksum valid, and reports no ACPI error;
 * 4. every vCPU online, the probe's script status, and power-off through ACPI: exit 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseE820Text, selectMap } from '../../src/hw/mem/e820-parse.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import { parseProbeReport } from '../../src/host/guest/probe.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { loadPlan } from '../../src/plan/schema.js';
import type { MappingLogEntry } from '../../src/vmm/pci-runtime.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { merge, show, subtract, type Range } from '../helpers/ranges.js';
import { skipUnlessBootFirmware } from '../helpers/require.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitMs } from '../helpers/limits.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'linux.yaml');
const hex4 = (v: number): string => v.toString(16).padStart(4, '0');

test('examples/linux.yaml: Linux on hvmpt\'s monitor finds the composed PCI bus and BARs, the plan\'s E820 and the generated ACPI tables, then powers off', { timeout: limitMs(1_200_000) }, (t) => {
  if (!skipUnlessKvm(t, { paging: true })) return;
  if (!skipUnlessBootFirmware(t, false)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-probe-boot-'));
  try {
    // The example with a script of the test's own: the probe's `script` and its status.
    const planFile = join(dir, 'linux.yaml');
    const text = readFileSync(EXAMPLE, 'utf8')
      .replace(/\.\.\/\.\.\/shared\//g, `${join(REPO_ROOT, '..', 'shared')}/`)
      .replace('boot: { kind: probe }', "boot: { kind: probe, script: \"section mine cat /proc/cmdline\\nexit 4\", cmdline: hvmpt.test=1 }")
      // Six minutes: in a lab host this boot takes under one, and a guest hung there (a nested
      // two-vCPU guest can spin for good under TCG) then fails the file, which runs again in a
      // fresh lab host, rather than holding its lab host until the runner's 15-minute stall net.
      .replace(/^ {2}timeout: \d+$/m, '  timeout: 360');
    writeFileSync(planFile, text);
    const plan = loadPlan(planFile);
    const composed = composePlanFile(planFile, plan);
    const r = hvmpt(['run', planFile, '--report', join(dir, 'report.json')]);
    assert.equal(r.status, 0, `stderr:\n${r.stderr}\nserial:\n${r.stdout}`);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { reason: { kind: string }; barMappings: MappingLogEntry[] };
    assert.equal(report.reason.kind, 'poweroff');
    const probe = parseProbeReport(r.stdout);
    assert.equal(probe.rc, 4, 'the script ran to its end');
    assert.match(probe.sections.get('mine')!.output, /console=ttyS0 panic=-1 loglevel=4 hvmpt\.test=1/);
    assert.equal(probe.cpusOnline, `0-${plan.machine.cpus - 1}`);

    // 1. PCI: the bus Linux enumerated is the composed one.
    const linux = probe.pci.map((f) => `${f.bdf.slice(5)} ${hex4(f.vendor)}:${hex4(f.device)} ${(f.classCode >> 8).toString(16).padStart(4, '0')}`).sort();
    const composedBus = composed.pci.topology
      .reachable()
      .map(({ fn, bdf }) => `${formatBdf(bdf)} ${hex4(fn.read(0, 2))}:${hex4(fn.read(2, 2))} ${hex4(fn.read(0x0a, 2))}`)
      .sort();
    assert.deepEqual(linux, composedBus);
    for (const hidden of composed.pci.hidden) assert.ok(!probe.pci.some((f) => f.vendor === hidden.fn.read(0, 2) && f.device === hidden.fn.read(2, 2)), 'the hidden function');
    const lastMapping = new Map<string, bigint | null>();
    for (const m of report.barMappings) if (m.bar !== 'rom') lastMapping.set(`${m.bdf}#${m.bar}`, m.new === null ? null : BigInt(m.new.address));
    let compared = 0;
    for (const f of probe.pci.filter((x) => x.classCode >> 8 !== 0x0604)) {
      for (const res of f.resources.filter((x) => x.index < 6)) {
        assert.equal(lastMapping.get(`${f.bdf.slice(5)}#${res.index}`), res.start, `${f.bdf} BAR${res.index}`);
        compared++;
      }
    }
    assert.ok(compared >= 6, `BARs compared: ${compared}`);

    // 2. E820: Linux's firmware map is the plan's, less what SeaBIOS keeps for itself.
    const entries = selectMap(parseE820Text(probe.e820.join('\n'), 'probe e820'), 'probe e820').entries;
    const linuxRam = merge(entries.filter((e) => e.type === 'usable').map((e) => ({ start: e.start, end: e.end })));
    const planRam = merge(composed.e820.filter((e) => e.type === 'usable').map((e) => ({ start: e.start, end: e.end })));
    const lowRamTop = planRam.filter((x) => x.end <= 1n << 32n).reduce((a, x) => (x.end > a ? x.end : a), 0n);
    const firmwareAreas: Range[] = [
      { start: 0n, end: 0x1000n },
      { start: 0x9fc00n, end: 0x100000n },
      { start: lowRamTop - 0x100000n, end: lowRamTop },
    ];
    assert.deepEqual(show(subtract(linuxRam, firmwareAreas)), show(subtract(planRam, firmwareAreas)));

    // 3. ACPI: the generated tables, as Linux loaded them.
    const want = composed.acpi.tables.map((x) => `${x.signature} ${x.bytes.length}`).sort();
    assert.deepEqual(probe.acpi.map((a) => `${a.signature} ${a.length}`).sort(), want);
    for (const a of probe.acpi) {
      assert.equal(a.checksum, a.signature === 'FACS' ? 'none' : 'ok', a.file);
      if (a.signature !== 'FACS') assert.equal(a.oemId, 'HVMPT', a.file);
    }
    assert.deepEqual(probe.problems.filter((p) => /ACPI (BIOS )?Error/.test(p)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
