/**
 * Reads E820 maps out of whatever a user pastes: Linux boot logs (current `[mem a-b]` lines
 * with inclusive ends and the older `a - b (type)` lines with exclusive ends), Xen's console
 * maps (both its old exclusive `a - b` and current inclusive `[a, b]` forms), the output of
 * `grep . /sys/firmware/memmap/N/{start,end,type}`, the top level of /proc/iomem, and hvmpt's own JSON.
 * Any prefix before the map text (timestamps, syslog fields, `(XEN)`, `<6>`) is tolerated.
 *
 * A log often holds several maps (the firmware's, a `user-defined` one after memmap=, Xen's and
 * its dom0's); all are returned, each with the label Linux or Xen printed and its line, and
 * {@link selectMap} picks the machine's own one unless told otherwise.
 */
import { HvmptError } from '../../errors.js';
import { typeFromCode, parseTypeName, type E820Entry, type E820Type } from './e820.js';
import { ADDRESS_LIMIT } from './range.js';

export class E820ParseError extends HvmptError {}

export type E820Format = 'linux' | 'linux-old' | 'xen' | 'xen-old' | 'sysfs' | 'iomem' | 'json';

export interface FoundMap {
  /** What the log called it: `BIOS-e820`, `user`, `modified`, `Xen` (a PV dom0's view), `Xen-e820`, `sysfs`, `iomem`, `json`… */
  readonly label: string;
  readonly format: E820Format;
  /** 1-based line of the map's first entry. */
  readonly line: number;
  /** 1-based line of its last entry, where the input has lines. */
  readonly lastLine?: number;
  /** As listed (not yet normalized); ends are exclusive whatever the source printed. */
  readonly entries: readonly E820Entry[];
}

export interface ParseResult {
  readonly maps: readonly FoundMap[];
  /** Things read but not understood as E820 data, worth telling the user about. */
  readonly notes: readonly string[];
  /** What was read but may be wrong, each naming its line (an input cut inside a map). */
  readonly warnings?: readonly string[];
}

// Labels Linux prints before each map line (e820__print_table's `who`).
const LINUX_LABELS = ['BIOS-e820', 'BIOS-e801', 'BIOS-88', 'Xen', 'user', 'modified', 'reserve setup_data'];
const LABEL_ALT = LINUX_LABELS.map((l) => l.replace(/[-]/g, '\\-')).join('|');
// A prefix boundary: start of line, whitespace, or the end of a timestamp/syslog field.
const LINUX_CANDIDATE = new RegExp(`(?:^|[\\s\\]>:])(${LABEL_ALT}):\\s+(\\[mem\\b|[0-9a-fA-F]{8,}\\s+-)`);
const LINUX_NEW = new RegExp(
  `(?:^|[\\s\\]>:])(${LABEL_ALT}):\\s+\\[mem\\s+(0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\\]\\s+(.*?)\\s*$`,
);
const LINUX_OLD = new RegExp(`(?:^|[\\s\\]>:])(${LABEL_ALT}):\\s+([0-9a-fA-F]+)\\s+-\\s+([0-9a-fA-F]+)\\s+(.*?)\\s*$`);
const RAM_MAP_HEADER = /physical RAM map:?\s*$/;

// Xen: `(XEN) [timestamp]  [start, end] (type)` or `(XEN)  start - end (type)`. A timestamp has no comma.
const XEN_PREFIX = /\(XEN\)\s*(?:\[[^\],]*\]\s*)?(.*)$/;
const XEN_NEW = /^\[\s*([0-9a-fA-F]+)\s*,\s*([0-9a-fA-F]+)\s*\]\s+(.*?)\s*$/;
const XEN_OLD = /^([0-9a-fA-F]{8,})\s+-\s+([0-9a-fA-F]{8,})\s+(.*?)\s*$/;
const XEN_CANDIDATE = /^(\[\s*[0-9a-fA-F]{8,}\s*,|[0-9a-fA-F]{8,}\s+-\s)/;
const XEN_HEADER = /^(.*?)\s*RAM map:\s*$/;

const SYSFS_LINE = /(?:^|\/)memmap\/(\d+)\/(start|end|type):(.*)$/;
const IOMEM_LINE = /^([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.+?)\s*$/;

/** Type words as Linux's dmesg, Xen's console and old kernels print them. */
function typeFromWords(words: string): E820Type | undefined {
  if (words === 'usable' || words === 'reserved') return words;
  const w = words.replace(/^\((.*)\)$/, '$1').trim();
  switch (w.toLowerCase()) {
    case 'usable':
      return 'usable';
    case 'reserved':
      return 'reserved';
    case 'acpi data':
      return 'acpi';
    case 'acpi nvs':
      return 'nvs';
    case 'unusable':
      return 'unusable';
    case 'soft reserved':
      return 'soft-reserved';
    case 'persistent ram':
      return 'pmem';
    case '1:1':
      return '1:1';
  }
  const m = /^(?:persistent \()?type (\d{1,10})\)?$/i.exec(w);
  if (m !== null) {
    const code = Number(m[1]);
    return code <= 0xffffffff ? typeFromCode(code) : undefined;
  }
  return undefined;
}

/** Names Linux gives E820 types in /sys/firmware/memmap/N/type and at the top of /proc/iomem. */
const RESOURCE_NAMES: Readonly<Record<string, E820Type>> = {
  'system ram': 'usable',
  reserved: 'reserved',
  'acpi tables': 'acpi',
  'acpi non-volatile storage': 'nvs',
  'unusable memory': 'unusable',
  'persistent memory': 'pmem',
  'persistent memory (legacy)': 'pram',
  'soft reserved': 'soft-reserved',
};

function hexValue(text: string, input: string, line: number, what: string): bigint {
  const digits = text.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]+$/.test(digits)) throw new E820ParseError(`${what} '${text}' is not a hex number`, { input, at: `line ${line}` });
  const value = BigInt('0x' + digits);
  if (value >= ADDRESS_LIMIT) throw new E820ParseError(`${what} ${text} is beyond the 64-bit physical address space`, { input, at: `line ${line}` });
  return value;
}

function rangeFrom(
  startText: string,
  endText: string,
  inclusive: boolean,
  input: string,
  line: number,
): { start: bigint; end: bigint } {
  const start = hexValue(startText, input, line, 'start');
  const last = hexValue(endText, input, line, 'end');
  const end = inclusive ? last + 1n : last;
  if (end < start) {
    throw new E820ParseError(
      `end ${endText} is below start ${startText}` + (inclusive ? ' (this format lists inclusive ends)' : ''),
      { input, at: `line ${line}` },
    );
  }
  return { start, end };
}

interface Group {
  label: string;
  format: E820Format;
  line: number;
  lastLine: number;
  entries: E820Entry[];
}

/**
 * Parses text in any of the supported formats. Throws E820ParseError (naming the input and
 * line) on a line that claims to be a map entry but is malformed, and when no map is found.
 */
export function parseE820Text(raw: string, input: string): ParseResult {
  const text = raw.replace(/^\uFEFF/, '');
  if (/^\s*\{/.test(text)) return { maps: [parseE820Json(text, input)], notes: [] };
  const lines = text.split(/\r?\n|\r/);
  const found = ((): ParseResult | undefined => {
    const logMaps = parseLogLines(lines, input);
    if (logMaps.length > 0) return { maps: logMaps, notes: [] };
    const sysfs = parseSysfsLines(lines, input);
    if (sysfs !== undefined) return { maps: [sysfs], notes: [] };
    return parseIomemLines(lines, input);
  })();
  if (found !== undefined) {
    const cut = cutWarning(text, lines.length, found.maps);
    return cut === undefined ? found : { ...found, warnings: [cut] };
  }
  throw new E820ParseError(
    'no E820 memory map found (looked for Linux "BIOS-e820:" / "user:" lines, Xen "(XEN)" maps, ' +
      '/sys/firmware/memmap listings, /proc/iomem and hvmpt JSON)',
    { input },
  );
}

/**
 * An input that ends inside a line (no line end) right at or after a map's last entry was
 * likely cut there: the last entry may be short (`type 12` cut to `type 1` reads as usable
 * RAM, a memmap `end` loses digits) or the entries after it missing. Read as given, with this
 * warning naming the line.
 */
function cutWarning(text: string, lineCount: number, maps: readonly FoundMap[]): string | undefined {
  if (text === '' || /[\r\n]$/.test(text)) return undefined;
  const map = maps.find((m) => m.lastLine !== undefined && m.lastLine >= lineCount - 1);
  if (map === undefined) return undefined;
  return map.lastLine === lineCount
    ? `line ${lineCount}: the input ends inside this line, the ${map.label} map's last entry: it may be cut short`
    : `line ${lineCount}: the input ends inside a line just after the ${map.label} map: the map may be cut short`;
}

function parseLogLines(lines: readonly string[], input: string): FoundMap[] {
  const maps: Group[] = [];
  let linux: Group | undefined;
  let xen: Group | undefined;
  let xenHeader: string | undefined;
  lines.forEach((raw, index) => {
    const n = index + 1;
    const line = raw.includes('\0') ? raw.replace(/\0/g, '') : raw;
    // Plain substring tests first: a long log is mostly lines no pattern matches.
    const xenMatch = line.includes('(XEN)') ? XEN_PREFIX.exec(line) : null;
    if (xenMatch !== null) {
      const body = xenMatch[1]!;
      if (!XEN_CANDIDATE.test(body)) {
        xen = undefined;
        const h = XEN_HEADER.exec(body);
        xenHeader = h !== null ? h[1]! : undefined;
        return;
      }
      const m = XEN_NEW.exec(body) ?? XEN_OLD.exec(body);
      if (m === null) throw new E820ParseError(`malformed Xen memory map entry: ${body.trim()}`, { input, at: `line ${n}` });
      const inclusive = body.trimStart().startsWith('[');
      const type = typeFromWords(m[3]!);
      if (type === undefined) throw new E820ParseError(`unknown memory type '${m[3]}'`, { input, at: `line ${n}` });
      const entry = { ...rangeFrom(m[1]!, m[2]!, inclusive, input, n), type };
      if (xen === undefined) {
        xen = { label: xenHeader ?? 'XEN', format: inclusive ? 'xen' : 'xen-old', line: n, lastLine: n, entries: [] };
        maps.push(xen);
        xenHeader = undefined;
      }
      xen.entries.push(entry);
      xen.lastLine = n;
      return;
    }
    if (line.includes('RAM map') && RAM_MAP_HEADER.test(line)) {
      linux = undefined;
      return;
    }
    // A well-formed current entry is matched at once; the candidate pattern then only tells a
    // malformed entry (an error) from a line that is no entry at all.
    let m = line.includes('[mem') ? LINUX_NEW.exec(line) : null;
    let isNew = m !== null;
    if (m === null) {
      const cand = LINUX_CANDIDATE.exec(line);
      if (cand === null) return;
      isNew = cand[2] === '[mem';
      m = (isNew ? LINUX_NEW : LINUX_OLD).exec(line);
      if (m === null) throw new E820ParseError(`malformed ${cand[1]} memory map entry: ${line.trim()}`, { input, at: `line ${n}` });
    }
    const label = m[1]!;
    const type = typeFromWords(m[4]!);
    if (type === undefined) throw new E820ParseError(`unknown memory type '${m[4]}'`, { input, at: `line ${n}` });
    const range = rangeFrom(m[2]!, m[3]!, isNew, input, n);
    const entry: E820Entry = { start: range.start, end: range.end, type };
    const format: E820Format = isNew ? 'linux' : 'linux-old';
    const last = linux?.entries[linux.entries.length - 1];
    // Linux prints each map sorted, so an entry that starts below its predecessor begins a new map (a second boot in the same log).
    if (linux === undefined || linux.label !== label || linux.format !== format || (last !== undefined && entry.start < last.start)) {
      linux = { label, format, line: n, lastLine: n, entries: [] };
      maps.push(linux);
    }
    linux.entries.push(entry);
    linux.lastLine = n;
  });
  return maps;
}

function parseSysfsLines(lines: readonly string[], input: string): FoundMap | undefined {
  const records = new Map<string, { start?: string; end?: string; type?: string; line: number }>();
  let lastLine = 0;
  lines.forEach((line, i) => {
    const m = SYSFS_LINE.exec(line.trim());
    if (m === null) return;
    lastLine = i + 1;
    const rec = records.get(m[1]!) ?? { line: i + 1 };
    rec[m[2] as 'start' | 'end' | 'type'] = m[3]!.trim();
    records.set(m[1]!, rec);
  });
  if (records.size === 0) return undefined;
  const map = parseSysfsMemmap(
    [...records.entries()].map(([name, r]) => ({ name, start: r.start, end: r.end, type: r.type, line: r.line })),
    input,
  );
  return { ...map, lastLine };
}

/** One /sys/firmware/memmap/N directory's three files (undefined where a file was missing). */
export interface SysfsMemmapRecord {
  readonly name: string;
  readonly start: string | undefined;
  readonly end: string | undefined;
  readonly type: string | undefined;
  /** For error messages when the record came from a text listing. */
  readonly line?: number;
}

/** Builds a map from /sys/firmware/memmap records (its `end` files are inclusive). */
export function parseSysfsMemmap(records: readonly SysfsMemmapRecord[], input: string): FoundMap {
  if (records.length === 0) throw new E820ParseError('no memmap entries', { input });
  const sorted = [...records].sort((a, b) => Number(a.name) - Number(b.name) || a.name.localeCompare(b.name));
  const entries = sorted.map((r) => {
    const at = r.line !== undefined ? `line ${r.line}` : `${r.name}/`;
    for (const f of ['start', 'end', 'type'] as const) {
      if (r[f] === undefined || r[f] === '') throw new E820ParseError(`entry ${r.name} has no ${f}`, { input, at });
    }
    const line = r.line ?? 0;
    const start = hexValue(r.start!, input, line, `entry ${r.name} start`);
    const last = hexValue(r.end!, input, line, `entry ${r.name} end`);
    if (last < start) throw new E820ParseError(`entry ${r.name}: end ${r.end} is below start ${r.start}`, { input, at });
    const type = RESOURCE_NAMES[r.type!.toLowerCase()];
    if (type === undefined) throw new E820ParseError(`entry ${r.name}: unknown type '${r.type}'`, { input, at });
    return { start, end: last + 1n, type };
  });
  return { label: 'sysfs', format: 'sysfs', line: sorted[0]!.line ?? 1, entries };
}

function parseIomemLines(lines: readonly string[], input: string): ParseResult | undefined {
  const entries: E820Entry[] = [];
  const others = new Set<string>();
  let first = 0;
  let lastLine = 0;
  let topLevel = 0;
  let zeros = 0;
  lines.forEach((line, i) => {
    const m = IOMEM_LINE.exec(line);
    if (m === null) return;
    topLevel++;
    const start = hexValue(m[1]!, input, i + 1, 'start');
    const last = hexValue(m[2]!, input, i + 1, 'end');
    if (start === 0n && last === 0n) zeros++;
    if (last < start) throw new E820ParseError(`end ${m[2]} is below start ${m[1]}`, { input, at: `line ${i + 1}` });
    const type = RESOURCE_NAMES[m[3]!.toLowerCase()];
    if (type === undefined) {
      others.add(m[3]!);
      return;
    }
    if (first === 0) first = i + 1;
    lastLine = i + 1;
    entries.push({ start, end: last + 1n, type });
  });
  if (topLevel === 0) return undefined;
  if (zeros === topLevel) {
    throw new E820ParseError('every address reads as zero: the kernel hides /proc/iomem addresses from non-root users; read it as root', { input });
  }
  if (entries.length === 0) return undefined;
  const notes =
    others.size > 0
      ? [`${others.size} top-level resource name(s) are not E820 types and were left out (${[...others].slice(0, 4).join(', ')}${others.size > 4 ? ', …' : ''})`]
      : [];
  return { maps: [{ label: 'iomem', format: 'iomem', line: first, lastLine, entries }], notes };
}

/** hvmpt's JSON: {"entries":[{"start":"0x…","end":"0x…","type":"usable"}]} with exclusive ends. */
export function parseE820Json(text: string, input: string): FoundMap {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new E820ParseError(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { input });
  }
  const entries = isRecord(data) ? data['entries'] : undefined;
  if (!Array.isArray(entries)) throw new E820ParseError('expected an object with an "entries" array', { input, at: 'entries' });
  const out = entries.map((e: unknown, i: number): E820Entry => {
    const at = `entries[${i}]`;
    if (!isRecord(e)) throw new E820ParseError('expected an object {start, end, type}', { input, at });
    const start = jsonAddress(e['start'], input, `${at}.start`);
    const end = jsonAddress(e['end'], input, `${at}.end`, true);
    if (end < start) throw new E820ParseError('end is below start (ends are exclusive)', { input, at: `${at}.end` });
    const type = typeof e['type'] === 'string' ? parseTypeName(e['type']) : undefined;
    if (type === undefined) throw new E820ParseError(`unknown type ${JSON.stringify(e['type'])}`, { input, at: `${at}.type` });
    return { start, end, type };
  });
  if (out.length === 0) throw new E820ParseError('the map has no entries', { input, at: 'entries' });
  return { label: 'json', format: 'json', line: 1, entries: out };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonAddress(v: unknown, input: string, at: string, isEnd = false): bigint {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{1,17}$/.test(v)) {
    throw new E820ParseError(`expected a hex string such as "0x100000", got ${JSON.stringify(v)}`, { input, at });
  }
  const value = BigInt(v);
  if (value > ADDRESS_LIMIT || (!isEnd && value === ADDRESS_LIMIT)) {
    throw new E820ParseError(`${v} is beyond the 64-bit physical address space`, { input, at });
  }
  return value;
}

// The order in which a log's maps describe the machine itself rather than a view derived from it.
const MACHINE_MAP_PREFERENCE = ['Xen-e820', 'Multiboot-e820', 'BIOS-e820', 'sysfs', 'iomem', 'json', 'XEN', 'BIOS-e801', 'BIOS-88'];

/**
 * Picks one map: the one with the given label (first if several; `label#2` for the second), or
 * by default the machine's own (Xen's host map before its dom0's, the firmware's before a
 * `user-defined` one).
 */
export function selectMap(result: ParseResult, input: string, label?: string): FoundMap {
  const { maps } = result;
  if (label !== undefined) {
    const [name, nth] = label.split('#');
    const matching = maps.filter((m) => m.label.toLowerCase() === name!.toLowerCase());
    const pick = matching[nth === undefined ? 0 : Number(nth) - 1];
    if (pick === undefined) {
      throw new E820ParseError(`no map labelled '${label}'; found: ${describeMaps(maps).join(', ')}`, { input });
    }
    return pick;
  }
  for (const want of MACHINE_MAP_PREFERENCE) {
    const m = maps.find((x) => x.label === want);
    if (m !== undefined) return m;
  }
  return maps[0]!;
}

/** One line per map: `user#2 (line 68, 12 entries)`, with the label selectMap accepts. */
export function describeMaps(maps: readonly FoundMap[]): string[] {
  const seen = new Map<string, number>();
  return maps
    .map((m) => {
      const k = (seen.get(m.label) ?? 0) + 1;
      seen.set(m.label, k);
      return `${m.label}${k > 1 ? `#${k}` : ''} (line ${m.line}, ${m.entries.length} entries)`;
    });
}
