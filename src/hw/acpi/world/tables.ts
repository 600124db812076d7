import { HvmptError } from '../../../errors.js';
import { AmlParseError } from '../aml/errors.js';
import { parseAmlTables, type AmlInput } from '../aml/parse.js';
import type { Term } from '../aml/terms.js';
import type { TableImage } from '../dump/image.js';
import { AcpiNamespace } from '../namespace/namespace.js';
import { HEADER_SIZE } from '../tables/header.js';
import { decodeTableOrRaw, splitTableBytes, type AcpiTable } from '../tables/table.js';

/**
 * A machine's tables as the world-view rules see them: each decoded to its typed model, and
 * every DSDT/SSDT's AML parsed into a term tree (all together, so calls across tables parse
 * with the right argument counts). A World is a value: rules return new Worlds.
 */
export interface WorldTable {
  /** The input's name for it (acpixtract's `ssdt3`, a directory's `SSDT3`), or the added table's. */
  readonly name: string;
  /** Where it came from, for messages. */
  readonly origin: string;
  readonly signature: string;
  /** The model; for definition blocks `aml` is the input's until the world is encoded. */
  readonly table: AcpiTable;
  /** The current AML of a definition block; absent when it did not parse (see amlError). */
  readonly terms?: readonly Term[];
  readonly amlError?: AmlParseError;
  /** The typed decode failed; the table is carried as raw bytes. */
  readonly problem?: HvmptError;
  readonly status: 'kept' | 'changed' | 'added';
}

export interface World {
  readonly tables: readonly WorldTable[];
  /** Things the loader did that a user should know (root tables not carried over...). */
  readonly notes: readonly string[];
}

/** RSDP, RSDT and XSDT hold addresses; whoever places the tables in memory makes new ones. */
export const ROOT_SIGNATURES: ReadonlySet<string> = new Set(['RSDP', 'RSDT', 'XSDT']);

export function isDefinitionBlock(t: WorldTable): boolean {
  return t.table.kind === 'definitionBlock';
}

/** The label a table's namespace nodes and AML errors carry: its name, lower case. */
export function tableLabel(t: WorldTable): string {
  return t.name;
}

/** Definition blocks in load order: the DSDT first, then the others as given. */
export function loadOrder(tables: readonly WorldTable[]): WorldTable[] {
  const blocks = tables.filter(isDefinitionBlock);
  return [...blocks.filter((t) => t.signature === 'DSDT'), ...blocks.filter((t) => t.signature !== 'DSDT')];
}

/**
 * Parses every definition block together; a table whose AML does not parse is set aside with
 * its error and the others are parsed again without it.
 */
export function parseBlocks(tables: readonly WorldTable[]): Map<WorldTable, { terms?: readonly Term[]; error?: AmlParseError }> {
  const out = new Map<WorldTable, { terms?: readonly Term[]; error?: AmlParseError }>();
  let pending = loadOrder(tables);
  for (;;) {
    const inputs: AmlInput[] = pending.map((t) => ({ body: (t.table as { aml: Uint8Array }).aml, table: tableLabel(t), baseOffset: HEADER_SIZE }));
    try {
      const trees = parseAmlTables(inputs);
      pending.forEach((t, i) => out.set(t, { terms: trees[i]!.terms }));
      return out;
    } catch (err) {
      if (!(err instanceof AmlParseError)) throw err;
      const bad = pending.find((t) => tableLabel(t) === err.table);
      if (bad === undefined) throw err;
      out.set(bad, { error: err });
      pending = pending.filter((t) => t !== bad);
    }
  }
}

/** Decodes table images into a World (root tables are left out and noted). */
export function loadWorld(images: readonly TableImage[]): World {
  const notes: string[] = [];
  const decoded: WorldTable[] = [];
  const roots = images.filter((im) => ROOT_SIGNATURES.has(im.signature));
  if (roots.length > 0) {
    notes.push(`${roots.map((r) => r.name).join(', ')} left out: the root tables hold addresses, and whoever places the tables in guest memory makes new ones`);
  }
  for (const im of images) {
    if (ROOT_SIGNATURES.has(im.signature)) continue;
    const input = `${im.origin} (${im.name})`;
    const { table: bytes } = splitTableBytes(im.data, input);
    const { table, problem } = decodeTableOrRaw(bytes, { input });
    const base = { name: im.name, origin: im.origin, signature: im.signature, table, status: 'kept' as const };
    decoded.push(problem === undefined ? base : { ...base, problem });
    if (problem !== undefined) notes.push(`${im.name}: carried as raw bytes: ${problem.message}`);
  }
  const parsed = parseBlocks(decoded);
  const tables = decoded.map((t) => {
    const p = parsed.get(t);
    if (p === undefined) return t;
    return p.error !== undefined ? { ...t, amlError: p.error } : { ...t, terms: p.terms! };
  });
  for (const t of tables) if (t.amlError !== undefined) notes.push(`${t.name}: AML does not parse (${t.amlError.message}); rules that need it will refuse`);
  return { tables, notes };
}

/** The namespace the world's definition blocks declare, loaded as an OS would (DSDT first). */
export function worldNamespace(world: World): AcpiNamespace {
  return AcpiNamespace.build(loadOrder(world.tables).flatMap((t) => (t.terms === undefined ? [] : [{ table: tableLabel(t), terms: t.terms }])));
}
