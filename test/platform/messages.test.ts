import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { acpiPlanFrom, loadAcpiPlan } from '../../src/host/plan/acpi.js';
import { readE820Input } from '../../src/host/mem/read.js';
import { generatePlanTables, PlanWithAcpiSchema } from '../../src/plan/acpi.js';
import { PlanFiles } from '../../src/plan/files.js';
import { PlanError, parseStructuredText, validate } from '../../src/plan/load.js';
import { planSchema } from '../../src/plan/schema.js';
import { composeMachine } from '../../src/platform/compose.js';
import type { PlatformInputs } from '../../src/platform/inputs.js';
import { fixture } from '../helpers/paths.js';

/**
 * Composition's refusals name the plan and the field to change (issue 9, items 13 and 14):
 * the identity planner's, the ECAM window's, the ACPI generator's.
 */

const HOST_LOG = fixture('dmesg', 'laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt');

/** Inputs with no I/O behind them: composition only reads what it is handed. */
function inputs(planFile: string, hostMap = false): PlatformInputs {
  return {
    planFile,
    files: PlanFiles.none(planFile),
    firmware: { name: 'bios.bin', image: new Uint8Array(0x40000) },
    linuxbootRom: new Uint8Array(0x200),
    boot: { name: 'none', kernel: new Uint8Array(0x400), cmdline: '', summary: 'boot: none' },
    passthrough: [],
    ...(hostMap ? { hostMap: { result: readE820Input(HOST_LOG), source: HOST_LOG } } : {}),
  };
}

function problems(text: string, hostMap = false): string[] {
  const plan = validate(planSchema, parseStructuredText(text, 'p.yaml'), 'p.yaml');
  try {
    composeMachine(plan, inputs('p.yaml', hostMap));
  } catch (err) {
    assert.ok(err instanceof PlanError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('composed');
}

test('RAM over the ECAM window blames the field that put either there: memory.size unless machine.ecamBase moved it', () => {
  assert.deepEqual(problems('memory: { size: 4G }\n'), [
    "memory.size: the guest's RAM [0x0, 0xe0000000) runs over the ECAM window [0xb0000000, 0xc0000000), where the monitor puts it unless told: set machine.ecamBase to 0xe0000000 (above the RAM) or give less memory",
  ]);
  assert.deepEqual(problems('memory: { size: 4G }\nmachine: { ecamBase: 0x80000000 }\n'), ['machine.ecamBase: the ECAM window [0x80000000, 0x90000000) overlaps guest RAM [0x0, 0xe0000000)']);
  // The fix the message gives composes.
  composeMachine(validate(planSchema, { memory: { size: '4G' }, machine: { ecamBase: '0xe0000000' } }, 'p.yaml'), inputs('p.yaml'));
  assert.throws(() => validate(planSchema, { memory: { size: '16777215T' } }, 'p.yaml'), /memory\.size: must be at most 16T/);
});

test('the identity planner\'s refusals name the plan field and the host map, not an "identity request"', () => {
  assert.deepEqual(problems('memory:\n  size: 64M\n  layout: identity\n  identity: { align: 3M }\n', true), [
    `memory.identity.align: alignment 3145728 must be a power of two of at least 4 KiB (host map: ${HOST_LOG})`,
  ]);
  const [noRoom] = problems('memory:\n  size: 12G\n  layout: identity\n', true);
  assert.match(noRoom!, /^memory\.size: no room for guest 0's 12 GiB in one contiguous region: .*\(host map: .*x230/);
  const [keep] = problems('memory:\n  size: 4G\n  layout: identity\n  identity: { hostKeep: 7G }\n', true);
  assert.match(keep!, /^memory\.identity\.hostKeep: the carve would leave the host/);
});

test('acpi generate reports the generator\'s checks as the plan\'s fields; an acpi command reads a plan with a machine section', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-messages-'));
  try {
    const file = join(dir, 'plan.yaml');
    const load = (text: string) => acpiPlanFrom(validate(PlanWithAcpiSchema, parseStructuredText(text, file), file), file);
    assert.throws(
      () => generatePlanTables(load('acpi:\n  generate:\n    ecam: { base: 0xb0000000, startBus: 5, endBus: 2 }\n')),
      (e: unknown) => e instanceof PlanError && e.message === `${file}: acpi.generate.ecam.endBus: endBus is below startBus`,
    );
    // The acpi commands validate only the sections they read; a machine section with no roms list is no crash.
    writeFileSync(file, 'machine:\n  boot: { kind: grub-report }\n  roms: 5\n');
    assert.deepEqual(generatePlanTables(loadAcpiPlan(file)).tables.map((t) => t.name), ['rsdp', 'xsdt', 'rsdt', 'facp', 'facs', 'dsdt', 'apic', 'mcfg']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
