import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError } from '../src/errors.js';
import { deepNesting } from './aml.js';
import { setChecksum } from '../src/hw/acpi/checksum.js';
import { parseAcpidump } from '../src/hw/acpi/dump/acpidump.js';
import type { TableImage } from '../src/hw/acpi/dump/image.js';
import { generateGuestTables } from '../src/hw/acpi/generate/generate.js';
import type { GuestAcpiFacts } from '../src/hw/acpi/generate/facts.js';
import { decodeTable, encodeTable, tableChecksumOk } from '../src/hw/acpi/tables/table.js';
import { applyRules } from '../src/hw/acpi/world/apply.js';
import { AcpiRuleError, type WorldRule } from '../src/hw/acpi/world/rules.js';
import { formatPciPath, pciPathOf, rootBridges } from '../src/hw/acpi/world/select.js';
import { summarizeAml } from '../src/hw/acpi/world/summary.js';
import { loadWorld, worldNamespace } from '../src/hw/acpi/world/tables.js';
import { campaignMain, count, serveCampaign, toHex, type CampaignDefinition, type Tally } from './_acpi-campaign.js';
import { caseRng, defaultFixturesDir, mutateTable, type Rng } from './acpi-tables.js';

/**
 * Fuzzing the world view: a machine's tables with one DSDT/SSDT mutated (bit flips, bytes,
 * truncation, lying table lengths, lying PkgLengths, spliced chunks, nesting built far deeper
 * than any table, and name characters changed, which keeps the AML well formed but not its
 * namespace) go through loading, the AML summaries `acpi decode` prints, and a rule set
 * like a user's (hide PCI functions and devices by _HID, replace and patch methods, add an
 * SSDT, rewrite _PRT, hide tables) picked from what the unmutated tables declare. A few cases
 * generate guest tables from random facts. Every case must end in a result or an HvmptError;
 * a result's tables must have valid checksums and decode. The engine checks itself that its
 * output parses again and that hidden objects are gone, so a failure there is a typed error
 * that counts as a finding.
 *
 * `npm run fuzz -- acpi-world [--cases N] [--seed S] [--case I]`.
 */

export interface WorldCorpusEntry {
  readonly machine: string;
  /** The machine's tables (root tables left out); small ones, so a case stays fast. */
  readonly images: readonly TableImage[];
  /** Which of them are definition blocks (the mutation targets). */
  readonly blocks: readonly number[];
  /** Rules picked from the unmutated tables. */
  readonly rules: readonly WorldRule[];
}

/** Machines whose AML is small enough for many cases a second, with every DSDT/SSDT over 48 KiB left out. */
const MAX_BLOCK = 48 * 1024;

function rulesFor(images: readonly TableImage[]): WorldRule[] {
  const world = loadWorld(images);
  const ns = worldNamespace(world);
  const roots = rootBridges(ns);
  const pci: string[] = [];
  const hids: string[] = [];
  const methods: string[] = [];
  for (const n of ns.nodes()) {
    if (n.kind === 'Device') {
      const p = pciPathOf(ns, n, roots);
      if (p !== undefined) pci.push(formatPciPath(p));
      const hid = ns.hid(n);
      if (hid !== undefined && !hid.startsWith('PNP0A0')) hids.push(hid);
    }
    if (n.kind === 'Method' && n.term?.kind === 'Method') methods.push(`${n.path}/${n.term.argCount}`);
  }
  const rules: WorldRule[] = [];
  const at = (i: number): string => `fuzz.rules[${i}]`;
  rules.push({ action: 'hide-table', signature: 'IVRS', optional: true, path: at(rules.length) });
  for (const p of pci.slice(0, 2)) rules.push({ action: 'hide-device', pci: p, references: 'neutralize', optional: true, path: at(rules.length) });
  if (hids[0] !== undefined) rules.push({ action: 'hide-device', hid: hids[0], references: 'neutralize', optional: true, path: at(rules.length) });
  const m = methods.find((x) => x.endsWith('/0'));
  if (m !== undefined) rules.push({ action: 'replace-method', method: m.slice(0, -2), source: { kind: 'spec', body: [{ return: 0 }] }, path: at(rules.length) });
  const p = methods.find((x) => x !== m);
  if (p !== undefined) rules.push({ action: 'patch-method', method: p.slice(0, p.lastIndexOf('/')), prepend: [{ store: 1, to: { local: 0 } }], path: at(rules.length) });
  rules.push({ action: 'add-ssdt', source: { kind: 'spec', oemTableId: 'FUZZ', body: [{ scope: '\\_SB', body: [{ device: 'HVZZ', hid: 'HVM0001', uid: 0, sta: 0x0f }] }] }, path: at(rules.length) });
  if (roots.length > 0) rules.push({ action: 'rewrite-prt', bridge: roots[0]!.node.path, routes: [{ device: 3, pin: 0, gsi: 16 }, { device: 4, pin: 1, gsi: 17 }], path: at(rules.length) });
  rules.push({ action: 'hide-table', signature: 'DMAR', optional: true, path: at(rules.length) });
  return rules;
}

export function loadWorldCorpus(fixturesDir: string): WorldCorpusEntry[] {
  const out: WorldCorpusEntry[] = [];
  for (const file of readdirSync(fixturesDir).filter((f) => f.endsWith('.acpidump.txt')).sort()) {
    const all = parseAcpidump(readFileSync(join(fixturesDir, file), 'latin1'), file).filter((im) => !['RSDP', 'RSDT', 'XSDT'].includes(im.signature));
    const images = all.filter((im) => !['DSDT', 'SSDT'].includes(im.signature) || im.data.length <= MAX_BLOCK);
    if (!images.some((im) => im.signature === 'DSDT')) continue;
    const blocks = images.flatMap((im, i) => (['DSDT', 'SSDT'].includes(im.signature) ? [i] : []));
    out.push({ machine: file.replace(/\.acpidump\.txt$/, ''), images, blocks, rules: rulesFor(images) });
  }
  return out;
}

/** A PkgLength somewhere in the AML made to lie (the AML fuzzer's strongest mutation, aimed inside a whole table). */
function lyingPkgLength(rng: Rng, data: Uint8Array): string {
  const ops = new Set([0x10, 0x11, 0x12, 0x13, 0x14, 0xa0, 0xa1, 0xa2]);
  const start = 36 + rng.int(Math.max(1, data.length - 36));
  for (let k = 0; k < data.length; k++) {
    const i = 36 + ((start - 36 + k) % Math.max(1, data.length - 36));
    if (!ops.has(data[i]!) || i + 1 >= data.length) continue;
    data[i + 1] = rng.pick([0x00, 0x01, 0x3f, 0x40, 0xff, (data[i + 1]! + 1) & 0xff, (data[i + 1]! - 1) & 0xff]);
    return `PkgLength at ${i + 1}`;
  }
  return 'no PkgLength found';
}

const NAME_CHARS = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'].map((c) => c.charCodeAt(0));

/** Name characters changed for others: the AML stays well formed, the namespace does not (clashes, dangling names). */
function renameChars(rng: Rng, data: Uint8Array): string {
  const changes = 1 + rng.int(4);
  let done = 0;
  for (let tries = 0; tries < 200 && done < changes; tries++) {
    const i = 36 + rng.int(Math.max(1, data.length - 36));
    if (!NAME_CHARS.includes(data[i]!)) continue;
    data[i] = rng.pick(NAME_CHARS);
    done++;
  }
  return `${done} name character(s) changed`;
}

function mutateBlock(rng: Rng, data: Uint8Array): { data: Uint8Array; how: string } {
  const choice = rng.int(10);
  if (choice < 4) return mutateTable(rng, { data, trace: [] });
  let out = data.slice();
  let how: string;
  if (choice < 7) {
    how = renameChars(rng, out);
  } else if (choice < 9) {
    how = lyingPkgLength(rng, out);
  } else {
    const deep = deepNesting(rng.pick(['scope', 'if', 'package', 'lnot', 'call-args'] as const), 300 + rng.int(2000));
    const at = 36 + rng.int(Math.max(1, out.length - 35));
    const grown = new Uint8Array(out.length + deep.length);
    grown.set(out.subarray(0, at));
    grown.set(deep, at);
    grown.set(out.subarray(at), at + deep.length);
    out = grown;
    how = `nesting ${deep.length} bytes at ${at}`;
  }
  // Keep the table's own length and checksum honest, so the AML is what fails.
  new DataView(out.buffer).setUint32(4, out.length, true);
  setChecksum(out, 9);
  return { data: out, how };
}

function randomFacts(rng: Rng): GuestAcpiFacts {
  const devices = Array.from({ length: rng.int(6) }, (_, i) => ({ device: 2 + rng.int(34), fn: rng.int(9), ...(rng.chance(0.2) ? { kind: 'bridge' as const, children: [{ device: rng.int(32), fn: 0 }] } : {}), name: `d${i}` }));
  return {
    cpus: rng.chance(0.05) ? rng.int(300) : 1 + rng.int(8),
    ...(rng.chance(0.5) ? { ecam: { base: BigInt(rng.int(16)) << 28n, endBus: rng.int(300) } } : {}),
    ...(rng.chance(0.2) ? { hpet: { address: 0xfed0_0000n } } : {}),
    ...(rng.chance(0.2) ? { interrupts: { pirqIrqs: [rng.int(16), rng.int(16), rng.int(16), rng.int(16)] as [number, number, number, number] } } : {}),
    pci: { devices, routes: devices.map((d) => ({ device: d.device, pin: (1 + rng.int(5)) as 1 })) },
  };
}

export function runWorldCase(corpus: readonly WorldCorpusEntry[], seed: number, index: number, tally: Tally): void {
  const rng = caseRng(seed ^ 0x1f2e3d4c, index);
  const entry = rng.pick(corpus);
  let target = entry.machine;
  let how = '';
  let input = '';
  try {
    if (rng.chance(0.05)) {
      target = 'generator';
      const facts = randomFacts(rng);
      input = JSON.stringify(facts, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
      const g = generateGuestTables(facts);
      for (const t of g.tables) encodeTable(decodeTable(t.bytes));
      tally.decoded++;
    } else {
      const which = rng.pick(entry.blocks);
      const original = entry.images[which]!;
      const m = mutateBlock(rng, original.data);
      how = `${original.name}: ${m.how}`;
      input = toHex(m.data);
      const images = entry.images.map((im, i) => (i === which ? { ...im, data: m.data } : im));
      const world = loadWorld(images);
      summarizeAml(world);
      // A few of the rules, in order, as a plan would give them.
      const rules = entry.rules.filter(() => rng.chance(0.6));
      const result = applyRules(world, rules, 'fuzz');
      for (const t of result.tables) {
        if (t.signature !== 'FACS' && !tableChecksumOk(t.bytes)) throw new Error(`${t.name}: checksum wrong in the output`);
        decodeTable(t.bytes);
      }
      tally.decoded++;
    }
  } catch (err) {
    // The engine's own check of its output failing is a finding, not a rejection of the input.
    const selfCheck = err instanceof AcpiRuleError && err.problems.some((p) => p.path === 'output');
    if (err instanceof HvmptError && !selfCheck) count(tally, err);
    else tally.crashes.push({ index, target, how, error: err instanceof Error ? (err.stack ?? err.message) : String(err), input });
  }
  tally.cases++;
}

export const ACPI_WORLD_CAMPAIGN: CampaignDefinition<WorldCorpusEntry[]> = {
  name: 'acpi-world',
  module: import.meta.url,
  load: loadWorldCorpus,
  runCase: runWorldCase,
};

serveCampaign(ACPI_WORLD_CAMPAIGN);

export async function main(args: readonly string[]): Promise<void> {
  if (!(await campaignMain(ACPI_WORLD_CAMPAIGN, args, defaultFixturesDir()))) process.exitCode = 1;
}
