import type { Command } from 'commander';
import { HvmptError, InputError, UsageError } from '../errors.js';
import { AmlParseError } from '../hw/acpi/aml/errors.js';
import type { TableImage } from '../hw/acpi/dump/image.js';
import { printableSignature } from '../hw/acpi/signatures.js';
import { formatTrace, tableTitle, toJsonValue, type JsonValue } from '../hw/acpi/tables/present.js';
import { type AcpiTable, decodeTable, encodeTable, splitTableBytes, tableChecksumOk, traceTable } from '../hw/acpi/tables/table.js';
import { type AcpiSource, loadAcpiSource, loadAcpiSourceKind, loadAcpidump } from '../host/acpi/source.js';
import { loadCapture } from '../host/pci/load.js';
import { DEFINITION_BLOCK_SIGNATURES } from '../hw/acpi/signatures.js';
import { applyRules, type RewriteResult } from '../hw/acpi/world/apply.js';
import { amlSummaryJson, formatAmlSummary, summarizeAml, type AmlSummary } from '../hw/acpi/world/summary.js';
import { loadWorld } from '../hw/acpi/world/tables.js';
import { loadAcpiPlan } from '../host/plan/acpi.js';
import { acpiRules, generatePlanTables } from '../plan/acpi.js';
import { PlanError } from '../plan/load.js';
import { writeTableSet } from './out-dir.js';
import { writeJson, writeOut } from './output.js';

/**
 * `hvmpt acpi …`: the ACPI command group: decode, extract, rewrite (world-view rules) and
 * generate (the guest's own tables). Each subcommand registers itself from the list at the bottom.
 */
export function registerAcpi(program: Command): void {
  const acpi = program
    .command('acpi')
    .description('ACPI tables: decode them, extract them to files, rewrite them for a guest, generate a guest\'s own')
    .addHelpText(
      'after',
      '\nInputs are acpidump text (`acpidump > tables.txt`), a directory of binary tables\n' +
        '(/sys/firmware/acpi/tables, `acpidump -b` or `acpixtract -a` output) or one .dat file.',
    );
  for (const register of SUBCOMMANDS) register(acpi);
}

/** One table of a source, decoded or with the reason it could not be. */
interface DecodedImage {
  readonly image: TableImage;
  readonly table?: AcpiTable;
  /** The table's own bytes (declared length). */
  readonly bytes?: Uint8Array;
  /** Bytes the source held past the declared length. */
  readonly excess?: Uint8Array;
  readonly error?: HvmptError;
}

function decodeImage(image: TableImage): DecodedImage {
  try {
    const { table: bytes, excess } = splitTableBytes(image.data, image.origin);
    const table = decodeTable(bytes, { input: `${image.origin} (${printableSignature(image.signature)})` });
    return excess.length > 0 ? { image, table, bytes, excess } : { image, table, bytes };
  } catch (err) {
    if (err instanceof HvmptError) return { image, error: err };
    throw err;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function parseSignatureFilter(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const sigs = value
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s) => s !== '');
  if (sigs.length === 0) throw new UsageError(`'${value}' names no table: give signatures such as APIC,DMAR`, { input: '--table' });
  return new Set(sigs.map((s) => (s === 'MADT' ? 'APIC' : s === 'FADT' ? 'FACP' : s)));
}

// ---------------------------------------------------------------------------------------------

function registerDecode(acpi: Command): void {
  acpi
    .command('decode')
    .description('decode every table of an acpidump text, a tables directory or a .dat file into typed fields')
    .argument('<input>', 'acpidump text, a directory such as /sys/firmware/acpi/tables, or a binary .dat table')
    .option('--json', 'print the typed models as JSON (64-bit values and byte strings as hex strings)')
    .option('--table <signatures>', 'only these tables, comma-separated (APIC,DMAR; MADT and FADT are accepted)')
    .addHelpText(
      'after',
      '\nEach field is listed with its offset and size, as `iasl -d` does, under the name the\n' +
        'typed model gives it. A DSDT/SSDT is parsed (with the source\'s other AML tables, so calls\n' +
        'across tables parse right) and summarised: its devices with _HID/_CID/_ADR/_UID, its methods\n' +
        'with argument counts, and each PCI host bridge\'s _CRS windows and _PRT routing. A table\n' +
        'that cannot be decoded is reported with its offset and the command exits 1 after listing\n' +
        'the rest.\n\n' +
        'Examples:\n  hvmpt acpi decode /sys/firmware/acpi/tables --table APIC\n  hvmpt acpi decode x230.acpidump.txt --json',
    )
    .action(async (input: string, opts: { json?: boolean; table?: string }) => {
      const filter = parseSignatureFilter(opts.table);
      const source = loadAcpiSource(input);
      const decoded = source.tables.filter((im) => filter === undefined || filter.has(im.signature)).map(decodeImage);
      if (filter !== undefined && decoded.length === 0) {
        throw new InputError(`no ${[...filter].join(', ')} table here (it has ${[...new Set(source.tables.map((t) => t.signature))].join(', ')})`, { input });
      }
      const { summaries: aml, errors: amlErrors } = amlSummaries(source, decoded);
      if (opts.json) await writeJson(decodeJson(source, decoded, aml));
      else await writeOut(decodeText(source, decoded, aml));
      // A table whose AML does not parse is one that cannot be decoded, as --help says.
      const failed = [...decoded.flatMap((d) => (d.error === undefined ? [] : [d.error])), ...amlErrors];
      if (failed.length === 0) return;
      for (const f of failed.slice(0, -1)) process.stderr.write(`hvmpt: ${f.message}\n`);
      throw failed[failed.length - 1]!;
    });
}

/**
 * Summaries of the definition blocks among `decoded`, parsed together with every other
 * definition block of the source that decodes (a table filter shows fewer, parses all), and
 * the parse errors of those shown.
 */
function amlSummaries(source: AcpiSource, decoded: readonly DecodedImage[]): { summaries: Map<string, AmlSummary>; errors: HvmptError[] } {
  const wanted = decoded.filter((d) => d.table?.kind === 'definitionBlock');
  if (wanted.length === 0) return { summaries: new Map(), errors: [] };
  const blocks = source.tables.filter((im) => DEFINITION_BLOCK_SIGNATURES.has(im.signature)).filter((im) => decodeImage(im).error === undefined);
  const world = loadWorld(blocks);
  const shown = new Set(wanted.map((d) => d.image.name));
  // Named by where the table came from (the file, or the acpidump and its line), not only its label.
  const errors = world.tables.flatMap((t) => (t.amlError !== undefined && shown.has(t.name) ? [new AmlParseError(t.amlError.detail, t.origin, t.amlError.offset)] : []));
  return { summaries: new Map(summarizeAml(world).map((s) => [s.table, s])), errors };
}

function decodeJson(source: AcpiSource, decoded: readonly DecodedImage[], aml: ReadonlyMap<string, AmlSummary>): JsonValue {
  return {
    input: source.path,
    format: source.kind,
    tables: decoded.map((d) => {
      const base: { [key: string]: JsonValue } = {
        name: d.image.name,
        origin: d.image.origin,
        signature: d.image.signature,
        length: d.bytes?.length ?? d.image.data.length,
      };
      if (d.image.address !== undefined) base.address = toJsonValue(d.image.address);
      if (d.bytes !== undefined) base.checksumOk = tableChecksumOk(d.bytes);
      if (d.excess !== undefined) base.excessBytes = d.excess.length;
      if (d.error !== undefined) base.error = d.error.message;
      if (d.table !== undefined) base.model = toJsonValue(d.table);
      const summary = aml.get(d.image.name);
      if (summary !== undefined) base.aml = amlSummaryJson(summary);
      return base;
    }),
    data: source.data.map((b) => ({ name: b.name, origin: b.origin, length: b.data.length })),
  };
}

function decodeText(source: AcpiSource, decoded: readonly DecodedImage[], aml: ReadonlyMap<string, AmlSummary>): string {
  const what = source.kind === 'acpidump' ? 'acpidump text' : source.kind === 'directory' ? 'tables directory' : 'binary table';
  const out: string[] = [`${source.path}: ${what}, ${source.tables.length} table(s)${source.data.length > 0 ? `, ${source.data.length} data file(s)` : ''}`, ''];
  const width = Math.max(4, ...decoded.map((d) => d.image.name.length));
  for (const d of decoded) {
    const len = d.bytes?.length ?? d.image.data.length;
    const status = d.error !== undefined ? 'NOT DECODED' : d.table!.kind;
    out.push(`  ${d.image.name.padEnd(width)}  ${printableSignature(d.image.signature).padEnd(4)}  ${String(len).padStart(7)} bytes  ${status}`);
  }
  for (const b of source.data) out.push(`  ${b.name.padEnd(width)}  data  ${String(b.data.length).padStart(7)} bytes  (firmware data, not a table)`);
  for (const d of decoded) {
    out.push('', `${d.image.name}: ${d.table === undefined ? printableSignature(d.image.signature) : tableTitle(d.table)}`);
    out.push(`  from ${d.image.origin}${d.image.address === undefined ? '' : `, address 0x${d.image.address.toString(16)}`}`);
    if (d.error !== undefined) {
      out.push(`  error: ${d.error.message}`);
      continue;
    }
    const notes: string[] = [];
    if (!tableChecksumOk(d.bytes!)) notes.push('checksum is WRONG in the input (encoding would correct it)');
    if (d.excess !== undefined) notes.push(`${d.excess.length} byte(s) after the declared length are not part of the table`);
    for (const n of notes) out.push(`  note: ${n}`);
    out.push(formatTrace(traceTable(d.table!)));
    const summary = aml.get(d.image.name);
    if (summary !== undefined) out.push(formatAmlSummary(summary));
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------

function registerExtract(acpi: Command): void {
  acpi
    .command('extract')
    .description('write each table of an acpidump text to its own binary file, named as `acpixtract -a` names them')
    .argument('<acpidump>', 'acpidump text file')
    .requiredOption('--out <dir>', 'directory to write the .dat files to (created if missing)')
    .option('--reencode', "write hvmpt's own encoding of each parsed table instead of the dump's bytes")
    .option('--force', 'replace tables an existing --out directory holds')
    .addHelpText(
      'after',
      '\nFiles are named dsdt.dat, facp.dat, …; a signature that occurs more than once is\n' +
        'numbered (ssdt1.dat, ssdt2.dat, …). Every table is read and checked against the length its\n' +
        'header declares (and with --reencode decoded and re-encoded) before anything is written, so\n' +
        'a bad or truncated input leaves the directory untouched. A directory that already holds\n' +
        'tables is refused unless --force, which replaces them all or nothing.\n' +
        'With --reencode, a table whose encoding differs from the dump (a wrong checksum in the\n' +
        'dump) is named on stderr.\n\n' +
        'Example:\n  hvmpt acpi extract x230.acpidump.txt --out x230 --reencode',
    )
    .action(async (input: string, opts: { out: string; reencode?: boolean; force?: boolean }) => {
      if (loadAcpiSourceKind(input) !== 'acpidump') {
        throw new InputError('extract reads acpidump text; tables that are already binary files need no extracting (use `hvmpt acpi decode` to read them)', { input });
      }
      const images = loadAcpidump(input);
      const seen = new Set<string>();
      for (const im of images) {
        if (seen.has(im.name)) throw new InputError(`two tables would be written to ${im.name}.dat`, { input, at: im.origin });
        seen.add(im.name);
      }
      // A table cut short (a truncated dump) is refused as decode refuses it, not written short.
      for (const im of images) splitTableBytes(im.data, im.origin);
      const files = images.map((im) => ({ image: im, data: opts.reencode ? reencode(im) : im.data }));
      writeTableSet(opts.out, files.map((f) => ({ file: `${f.image.name}.dat`, bytes: f.data })), { force: opts.force === true });
      const lines: string[] = [];
      for (const f of files) {
        lines.push(`  ${printableSignature(f.image.signature).padEnd(4)}  ${String(f.data.length).padStart(7)} bytes  ${f.image.name}.dat`);
      }
      lines.push(`${files.length} table(s) written to ${opts.out}${opts.reencode ? ' (re-encoded by hvmpt)' : ''}`);
      await writeOut(lines.join('\n') + '\n');
    });
}

/** hvmpt's encoding of one dump table, plus any bytes the dump held past its length. */
function reencode(image: TableImage): Uint8Array {
  const d = decodeImage(image);
  if (d.error !== undefined) throw d.error;
  const encoded = encodeTable(d.table!);
  if (!sameBytes(encoded, d.bytes!)) {
    process.stderr.write(`hvmpt: ${image.origin}: note: ${image.name} re-encodes differently from the dump${tableChecksumOk(d.bytes!) ? '' : ' (its checksum was wrong)'}\n`);
  }
  if (d.excess === undefined) return encoded;
  const out = new Uint8Array(encoded.length + d.excess.length);
  out.set(encoded);
  out.set(d.excess, encoded.length);
  return out;
}

// ---------------------------------------------------------------------------------------------

function rewriteText(result: RewriteResult, input: string, rules: string, out: string): string {
  const lines: string[] = [];
  for (const o of result.outcomes) {
    lines.push(`${o.path} (${o.action}):`);
    for (const d of o.done) lines.push(`  ${d}`);
  }
  lines.push('', `tables written to ${out}:`);
  const width = Math.max(4, ...result.tables.map((t) => t.name.length));
  for (const t of result.tables) {
    const from = t.status === 'added' ? `added from ${t.from}` : t.name === t.from ? t.status : `${t.status} (was ${t.from})`;
    lines.push(`  ${(t.name + '.dat').padEnd(width + 4)}  ${printableSignature(t.signature).padEnd(4)}  ${String(t.bytes.length).padStart(7)} bytes  ${from}`);
  }
  for (const r of result.removed) lines.push(`  ${'-'.padEnd(width + 4)}  ${printableSignature(r.signature).padEnd(4)}  ${'hidden'.padStart(13)}  ${r.name} (${r.path})`);
  for (const n of result.notes) lines.push(`note: ${n}`);
  lines.push(`${result.tables.length} table(s) from ${input} by the rules of ${rules}`);
  return lines.join('\n') + '\n';
}

function registerRewrite(acpi: Command): void {
  acpi
    .command('rewrite')
    .description("apply world-view rules to a machine's tables: hide tables and devices, replace or patch methods, add SSDTs, rewrite _PRT")
    .argument('<tables>', 'acpidump text, a directory of binary tables, or one .dat file')
    .requiredOption('--rules <plan.yaml>', 'a plan (YAML or JSON) with an acpi.rules list; its pci.hide functions are hidden from the tables too')
    .requiredOption('--out <dir>', 'directory for the rewritten tables, one .dat file each (created if missing)')
    .option('--pci-capture <dump>', "the host's PCI capture (lspci -xxx dump or sysfs) that pci.hide addresses refer to")
    .option('--force', 'replace tables an existing --out directory holds')
    .option('--json', 'print what was done as JSON')
    .addHelpText(
      'after',
      '\nRules apply in order, all or nothing: a rule that matches nothing (unless optional),\n' +
        'or would leave a reference to a hidden object dangling (unless it says\n' +
        '`references: neutralize`), stops the rewrite with an error naming it, and nothing is\n' +
        'written. Every table written has its length and checksum\n' +
        'computed; RSDP, RSDT and XSDT are not written (whoever places the tables makes them).\n' +
        'Output files are named as `acpixtract -a` names a dump\'s tables (dsdt.dat, ssdt1.dat, …).\n' +
        'Rule reference: docs/acpi.md ("World view").\n\n' +
        'Example:\n  hvmpt acpi rewrite x230.acpidump.txt --rules guest.yaml --out guest-tables',
    )
    .action(async (input: string, opts: { rules: string; out: string; pciCapture?: string; force?: boolean; json?: boolean }) => {
      const source = loadAcpiSource(input);
      const plan = loadAcpiPlan(opts.rules, opts.pciCapture === undefined ? {} : { capture: loadCapture(opts.pciCapture) });
      const rules = acpiRules(plan);
      if (rules.length === 0) throw new PlanError(opts.rules, [{ path: 'acpi.rules', message: 'there are no rules and pci.hide hides no function: nothing to do' }]);
      const result = applyRules(loadWorld(source.tables), rules, opts.rules);
      writeTableSet(opts.out, result.tables.map((t) => ({ file: `${t.name}.dat`, bytes: t.bytes })), { force: opts.force === true });
      if (opts.json) {
        await writeJson({
          input,
          rules: opts.rules,
          out: opts.out,
          outcomes: result.outcomes,
          tables: result.tables.map((t) => ({ file: `${t.name}.dat`, signature: t.signature, status: t.status, from: t.from, length: t.bytes.length })),
          hidden: { tables: result.removed, objects: result.hiddenObjects, pci: result.hiddenPci },
          notes: result.notes,
        });
      } else {
        await writeOut(rewriteText(result, input, opts.rules, opts.out));
      }
    });
}

function registerGenerate(acpi: Command): void {
  acpi
    .command('generate')
    .description("generate a guest's own ACPI tables (RSDP, XSDT, RSDT, FADT, FACS, DSDT, MADT, MCFG, HPET, SSDTs) from a plan")
    .requiredOption('--plan <plan.yaml>', 'a plan (YAML or JSON): acpi.generate (vCPUs, OEM ids, ECAM, SSDTs…) and the pci section the DSDT describes')
    .requiredOption('--out <dir>', 'directory for the tables, one file each (created if missing)')
    .option('--ext <ext>', 'file extension: dat (as acpixtract names files) or aml (as Linux\'s initrd table upgrade wants them)', 'dat')
    .option('--force', 'replace tables an existing --out directory holds')
    .option('--json', 'print the tables and the _PRT routing as JSON')
    .addHelpText(
      'after',
      '\nThe tables describe hvmpt\'s monitor: an i440FX/PIIX3-class PC with the ACPI PM block at\n' +
        '0x600 (SCI on IRQ 9), reset through 0xCF9, an IOAPIC at 0xFEC00000, COM1, the ECAM window\n' +
        '(default 0xB0000000), and the plan\'s PCI bus: \\_SB.PCI0 with its windows, _PRT (GSIs in APIC\n' +
        'mode, link devices LNKA-LNKD in PIC mode, as the PIIX3 PIRQ router routes them) and an\n' +
        'object per PCI function. Files are named as acpixtract names them (rsdp, xsdt, facp, dsdt, …).\n\n' +
        'Example:\n  hvmpt acpi generate --plan guest.yaml --out guest-acpi',
    )
    .action(async (opts: { plan: string; out: string; ext: string; force?: boolean; json?: boolean }) => {
      if (opts.ext !== 'dat' && opts.ext !== 'aml') throw new UsageError(`takes dat or aml, not ${JSON.stringify(opts.ext)}`, { input: '--ext' });
      const plan = loadAcpiPlan(opts.plan);
      const generated = generatePlanTables(plan);
      writeTableSet(opts.out, generated.tables.map((t) => ({ file: `${t.name}.${opts.ext}`, bytes: t.bytes })), { force: opts.force === true });
      const routes = generated.routes.map((r) => ({ slot: r.device, pin: 'ABCD'[r.pin]!, pirq: 'ABCD'[r.pirq]!, gsi: r.gsi, link: r.link }));
      if (opts.json) {
        await writeJson({
          plan: opts.plan,
          out: opts.out,
          tables: generated.tables.map((t) => ({ file: `${t.name}.${opts.ext}`, signature: t.signature, length: t.bytes.length, address: t.address })),
          routes,
        });
        return;
      }
      const lines = generated.tables.map((t) => `  ${(`${t.name}.${opts.ext}`).padEnd(10)}  ${t.signature.padEnd(4)}  ${String(t.bytes.length).padStart(6)} bytes  at 0x${t.address.toString(16)}`);
      lines.push('', '_PRT (slot pin: APIC GSI / PIC link):');
      for (const r of routes) lines.push(`  ${r.slot.toString(16).padStart(2, '0')} INT${r.pin}: GSI ${r.gsi} / ${r.link} (PIRQ${r.pirq})`);
      if (routes.length === 0) lines.push('  (no PCI function with an interrupt pin)');
      lines.push(`${generated.tables.length} table(s) written to ${opts.out}`);
      await writeOut(lines.join('\n') + '\n');
    });
}

const SUBCOMMANDS: ReadonlyArray<(acpi: Command) => void> = [registerDecode, registerExtract, registerRewrite, registerGenerate];
