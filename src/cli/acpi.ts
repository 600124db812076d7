import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { HvmptError, IoError, UsageError } from '../errors.js';
import type { TableImage } from '../hw/acpi/dump/image.js';
import { printableSignature } from '../hw/acpi/signatures.js';
import { formatTrace, tableTitle, toJsonValue, type JsonValue } from '../hw/acpi/tables/present.js';
import { type AcpiTable, decodeTable, encodeTable, splitTableBytes, tableChecksumOk, traceTable } from '../hw/acpi/tables/table.js';
import { type AcpiSource, loadAcpiSource, loadAcpiSourceKind, loadAcpidump } from '../host/acpi/source.js';
import { writeJson, writeOut } from './output.js';

/**
 * `hvmpt acpi …`: the ACPI command group. Each subcommand registers itself from the list at
 * the bottom; `rewrite` and `generate` join it when the world-view rules and the generator land.
 */
export function registerAcpi(program: Command): void {
  const acpi = program
    .command('acpi')
    .description('ACPI tables: decode them to typed fields, extract them to binary files')
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
  if (sigs.length === 0) throw new UsageError('--table needs at least one signature, e.g. --table APIC,DMAR');
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
        'typed model gives it. DSDT/SSDT bodies are shown as AML bytes. A table that cannot be\n' +
        'decoded is reported with its offset and the command exits 1 after listing the rest.\n\n' +
        'Examples:\n  hvmpt acpi decode /sys/firmware/acpi/tables --table APIC\n  hvmpt acpi decode x230.acpidump.txt --json',
    )
    .action(async (input: string, opts: { json?: boolean; table?: string }) => {
      const filter = parseSignatureFilter(opts.table);
      const source = loadAcpiSource(input);
      const decoded = source.tables.filter((im) => filter === undefined || filter.has(im.signature)).map(decodeImage);
      if (filter !== undefined && decoded.length === 0) {
        throw new UsageError(`no ${[...filter].join(', ')} table here (it has ${[...new Set(source.tables.map((t) => t.signature))].join(', ')})`, { input });
      }
      if (opts.json) await writeJson(decodeJson(source, decoded));
      else await writeOut(decodeText(source, decoded));
      const failed = decoded.filter((d) => d.error !== undefined);
      if (failed.length === 0) return;
      for (const f of failed.slice(0, -1)) process.stderr.write(`hvmpt: ${f.error!.message}\n`);
      throw failed[failed.length - 1]!.error!;
    });
}

function decodeJson(source: AcpiSource, decoded: readonly DecodedImage[]): JsonValue {
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
      return base;
    }),
    data: source.data.map((b) => ({ name: b.name, origin: b.origin, length: b.data.length })),
  };
}

function decodeText(source: AcpiSource, decoded: readonly DecodedImage[]): string {
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
    .addHelpText(
      'after',
      '\nFiles are named dsdt.dat, facp.dat, …; a signature that occurs more than once is\n' +
        'numbered (ssdt1.dat, ssdt2.dat, …). Every table is read (and with --reencode decoded and\n' +
        're-encoded) before anything is written, so a bad input leaves the directory untouched.\n' +
        'With --reencode, a table whose encoding differs from the dump (a wrong checksum in the\n' +
        'dump) is named on stderr.\n\n' +
        'Example:\n  hvmpt acpi extract x230.acpidump.txt --out x230 --reencode',
    )
    .action(async (input: string, opts: { out: string; reencode?: boolean }) => {
      if (loadAcpiSourceKind(input) !== 'acpidump') {
        throw new UsageError('extract reads acpidump text; tables that are already binary files need no extracting (use `hvmpt acpi decode` to read them)', { input });
      }
      const images = loadAcpidump(input);
      const seen = new Set<string>();
      for (const im of images) {
        if (seen.has(im.name)) throw new UsageError(`two tables would be written to ${im.name}.dat`, { input, at: im.origin });
        seen.add(im.name);
      }
      const files = images.map((im) => ({ image: im, data: opts.reencode ? reencode(im) : im.data }));
      try {
        mkdirSync(opts.out, { recursive: true });
      } catch (err) {
        throw new IoError(`cannot create directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: opts.out });
      }
      const lines: string[] = [];
      for (const f of files) {
        const path = join(opts.out, `${f.image.name}.dat`);
        try {
          writeFileSync(path, f.data);
        } catch (err) {
          throw new IoError(`cannot write: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path });
        }
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

/** The acpi subcommands; `rewrite` and `generate` are added here in a later round. */
const SUBCOMMANDS: ReadonlyArray<(acpi: Command) => void> = [registerDecode, registerExtract];
