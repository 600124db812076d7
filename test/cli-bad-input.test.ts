import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Command } from 'commander';
import { loadCommandGroups } from '../src/cli/commands.js';
import { buildProgram } from '../src/cli/main.js';
import { mulberry32 } from '../src/util/rng.js';
import { Asm, microBios } from '../tools/guest/asm.js';
import { CLI, fixture, REPO_ROOT } from './helpers/paths.js';

/**
 * Every command against bad input, as a careless or hostile user gives it (issue 9): missing,
 * empty, directory, garbage and truncated inputs, huge numbers, YAML aliases, alias bombs,
 * unknown tags, duplicate keys and several documents, a directory or /dev/zero on standard
 * input, outputs that cannot be written, /dev/zero and a 1 GB sparse file as input. Each must
 * end with the exit status README promises (0, 1 a diagnosed problem, 2 a usage error; never
 * 70), no stack trace, within the spawn's bound (a hang is killed and fails), and a message
 * that names the input and the place in it.
 */

const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bad-input-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => join(dir, name);
const write = (name: string, data: string | Uint8Array): string => {
  writeFileSync(at(name), data);
  return at(name);
};

const Q35 = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');
const X230_LOG = fixture('dmesg', 'laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt');
const P6T6 = fixture('pci', 'pciutils-tests', 'tree-asus-p6t6');
const GUEST_PLAN = join(REPO_ROOT, 'examples', 'acpi', 'guest.yaml');
const RULES = join(REPO_ROOT, 'examples', 'acpi', 'x230-guest.yaml');
const MEM_PLAN = join(REPO_ROOT, 'examples', 'mem', 'plan.yaml');

const MISSING = at('no-such-file');
const EMPTY = write('empty.txt', '');
const DIR = at('a-directory');
mkdirSync(DIR);
const GARBAGE = write('garbage.bin', Uint8Array.from({ length: 5000 }, ((r) => () => Math.floor(r() * 256))(mulberry32(9))));
const SPARSE = write('sparse.img', '');
truncateSync(SPARSE, 1 << 30);
const NOT_A_DIR = write('a-file', 'x');

// Truncated real inputs, each cut inside an entry.
const q35Text = readFileSync(Q35, 'latin1');
const CUT_DUMP = write('cut.acpidump.txt', q35Text.slice(0, q35Text.indexOf('DSDT @') + 2000));
const logLines = readFileSync(X230_LOG, 'utf8').split('\n');
const lastEntry = logLines.findLastIndex((l) => l.includes('BIOS-e820: [mem'));
// Cut before the entry's `[mem`: a line no pattern takes, so the map just ends one entry short.
const CUT_LOG = write('cut.dmesg', [...logLines.slice(0, lastEntry), logLines[lastEntry]!.slice(0, logLines[lastEntry]!.indexOf('[mem') + 3)].join('\n'));
const CUT_LSPCI = write('cut.lspci', readFileSync(P6T6, 'utf8').slice(0, 3000));
const desktop = readFileSync(join(REPO_ROOT, 'examples', 'desktop.yaml'), 'utf8');
const CUT_PLAN = write('cut.yaml', desktop.slice(0, desktop.indexOf('bars:') + 12));

// Plans a hostile hand wrote.
const ALIAS = write('alias.yaml', 'memory: *x\n');
const BOMB = write('bomb.yaml', ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefg'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n') + '\n');
const TAG = write('tag.yaml', 'memory:\n  size: !foo 64M\n');
const DUP = write('dup.yaml', 'memory:\n  size: 64M\nmemory:\n  size: 128M\n');
const LIST_KEY = write('list-key.yaml', 'memory:\n  ? [size]\n  : 64M\n');
const BINARY_KEY = write('binary-key.yaml', 'memory: { !!binary c2l6ZQ==: 64M }\n');
const MULTI = write('multi.yaml', 'memory: { size: 64M }\n---\nmemory: { size: 128M }\n');
const HUGE_PLAN = write('huge.yaml', 'memory: { size: 16777215T }\n');
const HUGE_LOG = write('huge.dmesg', 'BIOS-e820: [mem 0x0000000000000000-0x1ffffffffffffffff] usable\n');
const HUGE_LSPCI = write('huge.lspci', '00:00.0 Host bridge\nfffff: 00 00\n');
const HUGE_TABLE = write('huge.dat', Uint8Array.from([...Buffer.from('SSDT'), 0xff, 0xff, 0xff, 0xff, ...new Array(32).fill(0)]));
const ECAM_PLAN = write('ecam.yaml', 'acpi:\n  generate:\n    ecam: { base: 0xb0000000, startBus: 5, endBus: 2 }\n');
const SSDT_PLAN = write('ssdt.yaml', 'acpi:\n  generate:\n    ssdts:\n      - oemTableId: X\n        body: [{ method: FOO, args: 9, body: [] }]\n');
// A plan that composes: firmware that halts at once (if an output check let it run, it would end in a second).
const MICRO_PLAN = write('micro.yaml', `memory: { size: 16M }\nmachine:\n  firmware: ${write('micro.bin', microBios(new Asm(16).cli().hlt().bytes()))}\n`);
const NO_DIR = at('no-such-dir');
const HOSTMAP_ZERO = write('hostmap-zero.yaml', 'memory: { size: 64M, layout: identity }\nmachine: { hostMap: /dev/zero }\n');
const TABLES_GARBAGE = write('tables-garbage.yaml', `acpi: { tables: host }\nmachine: { acpiTables: ${GARBAGE} }\n`);
const probeFiles = (name: string, files: string): string => write(name, `machine:\n  boot:\n    kind: probe\n    files: ${files}\n`);
const PROBE_DOTDOT = probeFiles('probe-dotdot.yaml', `[{ path: ../etc/x, file: ${EMPTY} }]`);
const PROBE_TWICE = probeFiles('probe-twice.yaml', `[{ path: bin/t, file: ${EMPTY} }, { path: bin/t, file: ${EMPTY} }]`);
const PROBE_INIT = probeFiles('probe-init.yaml', `[{ path: init, file: ${EMPTY} }, { path: dev/console/x, file: ${EMPTY} }]`);
const PROBE_ZERO = probeFiles('probe-zero.yaml', '[{ path: bin/z, file: /dev/zero }]');
const IDENTITY_PLAN = write('identity.yaml', 'memory:\n  size: 64M\n  layout: identity\n  identity: { align: 3M }\n');

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** A file (or directory) opened as standard input. */
  readonly stdin?: string;
  /** A file opened as standard output. */
  readonly stdout?: string;
  readonly status: 0 | 1 | 2;
  /** What stderr must say: the input and the place. */
  readonly says: RegExp;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `hvmpt: <input>: <rest>` at the start of a line. */
const names = (input: string, rest: string): RegExp => new RegExp(`^hvmpt: ${esc(input)}: ${rest}`, 'm');
const out = (name: string): string => at(`out-${name}`);

const CASES: readonly Case[] = [
  // e820 show
  { name: 'e820 show: missing', args: ['e820', 'show', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'e820 show: empty', args: ['e820', 'show', EMPTY], status: 1, says: names(EMPTY, 'no E820 memory map found') },
  { name: 'e820 show: empty directory', args: ['e820', 'show', DIR], status: 1, says: names(DIR, 'no memmap entries') },
  { name: 'e820 show: garbage', args: ['e820', 'show', GARBAGE], status: 1, says: names(GARBAGE, 'no E820 memory map found') },
  { name: 'e820 show: truncated boot log', args: ['e820', 'show', CUT_LOG], status: 0, says: names(`warning: ${CUT_LOG}`, `line ${lastEntry + 1}: the input ends inside a line just after the BIOS-e820 map`) },
  { name: 'e820 show: huge address', args: ['e820', 'show', HUGE_LOG], status: 1, says: names(HUGE_LOG, 'line 1: end 0x1ffffffffffffffff is beyond the 64-bit') },
  { name: 'e820 show: /dev/zero', args: ['e820', 'show', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 64 MiB, the most hvmpt reads for a boot log') },
  { name: 'e820 show: 1 GB sparse file', args: ['e820', 'show', SPARSE], status: 1, says: names(SPARSE, 'larger than 64 MiB') },
  { name: 'e820 show: a directory on stdin', args: ['e820', 'show', '-'], stdin: DIR, status: 1, says: names('<stdin>', 'cannot read: EISDIR') },
  { name: 'e820 show: /dev/zero on stdin', args: ['e820', 'show', '-'], stdin: '/dev/zero', status: 1, says: names('<stdin>', 'larger than 64 MiB') },
  { name: 'e820 show: a sparse file on stdin', args: ['e820', 'show', '-'], stdin: SPARSE, status: 1, says: names('<stdin>', 'larger than 64 MiB') },
  { name: 'e820 show: standard output on a full disk', args: ['e820', 'show', X230_LOG], stdout: '/dev/full', status: 1, says: names('<stdout>', 'cannot write: ENOSPC') },
  // e820 carve
  { name: 'e820 carve: negative --size', args: ['e820', 'carve', X230_LOG, '--size', '-1G'], status: 2, says: names('--size', "'-1G' is not a size") },
  { name: 'e820 carve: huge --size', args: ['e820', 'carve', X230_LOG, '--size', '99999999999999999999T'], status: 2, says: names('--size', "'99999999999999999999T' is beyond the 64-bit address space") },
  { name: 'e820 carve: negative --guests', args: ['e820', 'carve', X230_LOG, '--size', '1G', '--guests', '-3'], status: 2, says: names('--guests', "'-3' is not a whole number") },
  { name: 'e820 carve: --size not a page multiple', args: ['e820', 'carve', X230_LOG, '--size', '1234'], status: 2, says: names('--size', 'size 1234 must be a positive multiple of 4 KiB') },
  { name: 'e820 carve: no room', args: ['e820', 'carve', X230_LOG, '--size', '1T'], status: 1, says: names('--size', "no room for guest 0's 1 TiB") },
  { name: 'e820 carve: plan alias', args: ['e820', 'carve', X230_LOG, '--plan', ALIAS], status: 1, says: names(ALIAS, 'line 1 column 9: alias \\*x refers to no anchor') },
  { name: 'e820 carve: plan with a bad identity field', args: ['e820', 'carve', X230_LOG, '--plan', IDENTITY_PLAN], status: 1, says: names(IDENTITY_PLAN, 'memory.identity.align: alignment') },
  { name: 'e820 carve: /dev/zero plan', args: ['e820', 'carve', X230_LOG, '--plan', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 16 MiB, the most hvmpt reads for a plan') },
  // acpi decode
  { name: 'acpi decode: missing', args: ['acpi', 'decode', MISSING], status: 1, says: names(MISSING, 'cannot open: ENOENT') },
  { name: 'acpi decode: empty', args: ['acpi', 'decode', EMPTY], status: 1, says: names(EMPTY, 'no tables found') },
  { name: 'acpi decode: empty directory', args: ['acpi', 'decode', DIR], status: 1, says: names(DIR, 'no table files in this directory') },
  { name: 'acpi decode: garbage', args: ['acpi', 'decode', GARBAGE], status: 1, says: names(GARBAGE, 'offset 0x[0-9a-f]+: ') },
  { name: 'acpi decode: truncated acpidump', args: ['acpi', 'decode', CUT_DUMP], status: 1, says: names(CUT_DUMP, 'line \\d+: offset 0x4: table declares length') },
  { name: 'acpi decode: huge table length', args: ['acpi', 'decode', HUGE_TABLE], status: 1, says: names(HUGE_TABLE, 'offset 0x4: table declares length 4294967295') },
  { name: 'acpi decode: /dev/zero', args: ['acpi', 'decode', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 64 MiB, the most hvmpt reads for an acpidump') },
  { name: 'acpi decode: empty --table', args: ['acpi', 'decode', Q35, '--table', ','], status: 2, says: names('--table', "',' names no table") },
  // acpi extract
  { name: 'acpi extract: truncated acpidump', args: ['acpi', 'extract', CUT_DUMP, '--out', out('cut')], status: 1, says: names(CUT_DUMP, 'line \\d+: offset 0x4: table declares length') },
  { name: 'acpi extract: garbage', args: ['acpi', 'extract', GARBAGE, '--out', out('garbage')], status: 1, says: names(GARBAGE, 'extract reads acpidump text') },
  { name: 'acpi extract: --out under /proc', args: ['acpi', 'extract', Q35, '--out', '/proc/hvmpt-x'], status: 1, says: names('/proc/hvmpt-x', 'cannot write beside it') },
  { name: 'acpi extract: --out is a file', args: ['acpi', 'extract', Q35, '--out', NOT_A_DIR], status: 1, says: names(NOT_A_DIR, 'exists and is not a directory') },
  { name: 'acpi extract: directory as input', args: ['acpi', 'extract', DIR, '--out', out('dir')], status: 1, says: names(DIR, 'extract reads acpidump text') },
  // acpi rewrite
  { name: 'acpi rewrite: rules alias', args: ['acpi', 'rewrite', Q35, '--rules', ALIAS, '--out', out('alias')], status: 1, says: names(ALIAS, 'line 1 column 9: alias') },
  { name: 'acpi rewrite: rules alias bomb', args: ['acpi', 'rewrite', Q35, '--rules', BOMB, '--out', out('bomb')], status: 1, says: names(BOMB, 'line \\d+ column \\d+: aliases expand the plan past 100000 nodes') },
  { name: 'acpi rewrite: missing rules', args: ['acpi', 'rewrite', Q35, '--rules', MISSING, '--out', out('m')], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'acpi rewrite: --out under /proc', args: ['acpi', 'rewrite', fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt'), '--rules', RULES, '--out', '/proc/hvmpt-y'], status: 1, says: names('/proc/hvmpt-y', 'cannot write beside it') },
  { name: 'acpi rewrite: garbage tables', args: ['acpi', 'rewrite', GARBAGE, '--rules', RULES, '--out', out('g')], status: 1, says: names(`${GARBAGE} (garbage)`, 'offset 0x4: table declares length') },
  // acpi generate
  { name: 'acpi generate: unknown tag', args: ['acpi', 'generate', '--plan', TAG, '--out', out('tag')], status: 1, says: names(TAG, 'line 2 column 9: unknown tag !foo') },
  { name: 'acpi generate: duplicate keys', args: ['acpi', 'generate', '--plan', DUP, '--out', out('dup')], status: 1, says: names(DUP, 'line 3 column 1: this key repeats') },
  { name: 'acpi generate: a key that is a list', args: ['acpi', 'generate', '--plan', LIST_KEY, '--out', out('listkey')], status: 1, says: names(LIST_KEY, 'line 2 column 5: a key that is a map, a list or binary data') },
  { name: 'run: a key that is binary data', args: ['run', BINARY_KEY], status: 1, says: names(BINARY_KEY, 'line 1 column 20: a key that is a map, a list or binary data') },
  { name: 'acpi generate: two documents', args: ['acpi', 'generate', '--plan', MULTI, '--out', out('multi')], status: 1, says: names(MULTI, 'line 2 column 1: a second YAML document') },
  { name: 'acpi generate: ECAM buses inverted', args: ['acpi', 'generate', '--plan', ECAM_PLAN, '--out', out('ecam')], status: 1, says: names(ECAM_PLAN, 'acpi.generate.ecam.endBus: ') },
  { name: 'acpi generate: SSDT body detail', args: ['acpi', 'generate', '--plan', SSDT_PLAN, '--out', out('ssdt')], status: 1, says: names(SSDT_PLAN, 'acpi.generate.ssdts\\[0\\].body\\[0\\].args: Too big') },
  { name: 'acpi generate: --ext exe', args: ['acpi', 'generate', '--plan', GUEST_PLAN, '--out', out('ext'), '--ext', 'exe'], status: 2, says: names('--ext', 'takes dat or aml') },
  { name: 'acpi generate: --out under /proc', args: ['acpi', 'generate', '--plan', GUEST_PLAN, '--out', '/proc/hvmpt-z/deeper'], status: 1, says: names('/proc/hvmpt-z/deeper', 'cannot create /proc/hvmpt-z: ENOENT') },
  { name: 'acpi generate: /dev/zero plan', args: ['acpi', 'generate', '--plan', '/dev/zero', '--out', out('zero')], status: 1, says: names('/dev/zero', 'larger than 16 MiB') },
  // pci view
  { name: 'pci view: missing', args: ['pci', 'view', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'pci view: empty', args: ['pci', 'view', EMPTY], status: 1, says: names(EMPTY, 'no PCI functions found') },
  { name: 'pci view: empty directory', args: ['pci', 'view', DIR], status: 1, says: names(DIR, 'no PCI device directories') },
  { name: 'pci view: garbage', args: ['pci', 'view', GARBAGE], status: 1, says: names(GARBAGE, '5000 bytes: a config space holds at most 4096') },
  { name: 'pci view: truncated dump', args: ['pci', 'view', CUT_LSPCI, '--format', 'lspci-dump'], status: 0, says: names(`warning: ${CUT_LSPCI}`, 'line \\d+: 00:00.0 has \\d+ bytes of config space') },
  { name: 'pci view: huge offset', args: ['pci', 'view', HUGE_LSPCI], status: 1, says: names(HUGE_LSPCI, 'line 2: offset 0x[0-9a-f]+ is past the 4096 bytes') },
  { name: 'pci view: /dev/zero', args: ['pci', 'view', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 64 MiB, the most hvmpt reads for a PCI capture') },
  { name: 'pci view: standard output on a full disk', args: ['pci', 'view', P6T6], stdout: '/dev/full', status: 1, says: names('<stdout>', 'cannot write: ENOSPC') },
  { name: 'pci view: bad --bdf', args: ['pci', 'view', P6T6, '--bdf', '99:99.9'], status: 2, says: names('--bdf', "'99:99.9' is not a PCI address") },
  { name: 'pci view: plan alias', args: ['pci', 'view', P6T6, '--plan', ALIAS], status: 1, says: names(ALIAS, 'line 1 column 9: alias') },
  { name: 'pci view: plan is a directory', args: ['pci', 'view', P6T6, '--plan', DIR], status: 1, says: names(DIR, 'cannot read: EISDIR') },
  // pci models, doctor: no input but their options
  { name: 'pci models: unknown option', args: ['pci', 'models', '--bogus'], status: 2, says: /unknown option '--bogus'/ },
  { name: 'doctor: unknown option', args: ['doctor', '--bogus'], status: 2, says: /unknown option '--bogus'/ },
  // bind, unbind, lab: refused before any device or lab host is touched
  { name: 'collect: --out under /proc', args: ['collect', '--out', '/proc/x.tar'], status: 1, says: /^hvmpt collect: cannot create \/proc\/x\.tar/m },
  { name: 'snapshot show: missing', args: ['snapshot', 'show', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'snapshot show: garbage', args: ['snapshot', 'show', GARBAGE], status: 1, says: names(GARBAGE, '(not a complete tar archive|bad tar entry)') },
  { name: 'analyze: garbage', args: ['analyze', GARBAGE], status: 1, says: names(GARBAGE, '(not a complete tar archive|bad tar entry)') },
  { name: 'plan --from: missing', args: ['plan', '--from', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'plan --from --twin: garbage', args: ['plan', '--from', GARBAGE, '--twin'], status: 1, says: names(GARBAGE, '(no PCI functions found|\\d+ bytes: a config space holds at most 4096)') },
  { name: 'serve-device: missing plug-in', args: ['serve-device', MISSING, '--socket', at('s.sock')], status: 1, says: names(MISSING, 'no such file') },
  { name: 'export: /dev/zero plan', args: ['export', '--to', 'qemu', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 16 MiB') },
  { name: 'export: unknown target', args: ['export', '--to', 'floppy', GUEST_PLAN], status: 2, says: /argument 'floppy' is invalid/ },
  { name: 'report: missing plan', args: ['report', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'bind: unknown --driver', args: ['bind', '--driver', 'bogus', '0000:ff:1f.7'], status: 2, says: /^hvmpt: --driver 'bogus': expected vfio-pci or uio_pci_generic/m },
  { name: 'unbind: garbage address', args: ['unbind', 'zz'], status: 2, says: names('zz', "'zz' is not a PCI address") },
  { name: 'lab: unknown --device model', args: ['lab', '--device', 'floppy', '--', 'true'], status: 2, says: names('--device', "#1 'floppy': unknown device 'floppy'") },
  { name: 'lab: --device image missing', args: ['lab', '--device', `nvme:${MISSING}`, '--', 'true'], status: 1, says: names('--device', `#1 'nvme:${esc(MISSING)}': image ${esc(MISSING)}: ENOENT`) },
  { name: 'lab: huge --timeout', args: ['lab', '--timeout', '1e10', '--', 'true'], status: 2, says: names('--timeout', "'1e10' is not a positive number of seconds up to") },
  { name: 'lab: bad --memory', args: ['lab', '--memory', '1x', '--', 'true'], status: 2, says: names('--memory', "'1x' is not a size in whole MiB") },
  // run
  { name: 'run: missing plan', args: ['run', MISSING], status: 1, says: names(MISSING, 'cannot read: ENOENT') },
  { name: 'run: empty plan', args: ['run', EMPTY], status: 1, says: names(EMPTY, '\\(top level\\): ') },
  { name: 'run: plan is a directory', args: ['run', DIR], status: 1, says: names(DIR, 'cannot read: EISDIR') },
  { name: 'run: garbage plan', args: ['run', GARBAGE], status: 1, says: names(GARBAGE, '(line \\d+ column \\d+|\\(top level\\)): ') },
  { name: 'run: truncated plan', args: ['run', CUT_PLAN], status: 1, says: names(CUT_PLAN, 'pci\\.emulated\\[0\\]\\.options\\.bars: ') },
  { name: 'run: alias', args: ['run', ALIAS], status: 1, says: names(ALIAS, 'line 1 column 9: alias \\*x refers to no anchor') },
  { name: 'run: alias bomb', args: ['run', BOMB], status: 1, says: names(BOMB, 'line \\d+ column \\d+: aliases expand') },
  { name: 'run: unknown tag', args: ['run', TAG], status: 1, says: names(TAG, 'line 2 column 9: unknown tag !foo') },
  { name: 'run: huge memory', args: ['run', HUGE_PLAN], status: 1, says: names(HUGE_PLAN, 'memory.size: must be at most 16T') },
  { name: 'run: negative --timeout', args: ['run', MEM_PLAN, '--timeout', '-1'], status: 2, says: names('--timeout', "'-1' is not a positive number of seconds") },
  { name: 'run: huge --timeout', args: ['run', MEM_PLAN, '--timeout', '1e10'], status: 2, says: names('--timeout', "'1e10' is not a positive number") },
  { name: 'run: --report where nothing can be written', args: ['run', MICRO_PLAN, '--report', join(NO_DIR, 'r.json')], status: 1, says: names(join(NO_DIR, 'r.json'), 'cannot write the run report: ENOENT') },
  { name: 'run: --firmware-log where nothing can be written', args: ['run', MICRO_PLAN, '--firmware-log', join(NO_DIR, 'f.log')], status: 1, says: names(join(NO_DIR, 'f.log'), 'cannot write the firmware log: ENOENT') },
  { name: 'run: --serial file where nothing can be written', args: ['run', MICRO_PLAN, '--serial', join(NO_DIR, 's.log')], status: 1, says: names(join(NO_DIR, 's.log'), 'cannot write the serial output: ENOENT') },
  { name: 'run: probe file path with ..', args: ['run', PROBE_DOTDOT], status: 1, says: names(PROBE_DOTDOT, 'machine\\.boot\\.files\\[0\\]\\.path: a path inside the initrd has no \\. or \\.\\. step') },
  { name: 'run: probe file path twice', args: ['run', PROBE_TWICE], status: 1, says: names(PROBE_TWICE, "machine\\.boot\\.files\\[1\\]\\.path: 'bin/t' is also files\\[0\\]") },
  { name: "run: probe file over the initrd's own", args: ['run', PROBE_INIT], status: 1, says: names(PROBE_INIT, "machine\\.boot\\.files\\[0\\]\\.path: 'init' is the initrd's own /init .*; machine\\.boot\\.files\\[1\\]\\.path: 'dev/console/x' would be inside the initrd's own file /dev/console") },
  { name: 'run: probe file /dev/zero', args: ['run', PROBE_ZERO], status: 1, says: names(PROBE_ZERO, "machine\\.boot\\.files\\[0\\]\\.file: /dev/zero: larger than 256 MiB, the most hvmpt reads for a file for the guest's initrd") },
  { name: 'run: machine.hostMap is /dev/zero', args: ['run', HOSTMAP_ZERO], status: 1, says: names(HOSTMAP_ZERO, 'machine\\.hostMap: /dev/zero: larger than 64 MiB') },
  { name: 'run: machine.acpiTables is garbage', args: ['run', TABLES_GARBAGE], status: 1, says: names(TABLES_GARBAGE, `machine\\.acpiTables: ${esc(GARBAGE)} \\(garbage\\): offset 0x4: table declares length`) },
  { name: 'run: empty --report', args: ['run', MICRO_PLAN, '--report', ''], status: 2, says: names('--report', "'' names no file") },
  { name: 'run: /dev/zero plan', args: ['run', '/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 16 MiB') },
  { name: 'run: --control that is no unix: path', args: ['run', MEM_PLAN, '--control', 'tcp:1:2'], status: 2, says: names('--control', "'tcp:1:2' is not unix:PATH \\(or none\\)") },
  { name: 'ctl: no socket there', args: ['ctl', MISSING, 'status'], status: 1, says: names(MISSING, 'cannot reach the control socket: ENOENT') },
  { name: 'ctl: a plain file for the socket', args: ['ctl', GARBAGE, 'status'], status: 1, says: names(GARBAGE, 'cannot reach the control socket: ECONNREFUSED') },
  { name: 'ctl: no such verb', args: ['ctl', MISSING, 'frob'], status: 2, says: names('ctl', "'frob' is not a verb \\(status, devices, attach, detach, stop\\)") },
  { name: 'ctl: attach with no entry', args: ['ctl', MISSING, 'attach'], status: 2, says: names('attach', 'attach needs the entry') },
  { name: 'ctl: attach @/dev/zero', args: ['ctl', MISSING, 'attach', '@/dev/zero'], status: 1, says: names('/dev/zero', 'larger than 16 MiB') },
  { name: 'ctl: huge --force-after', args: ['ctl', MISSING, 'detach', 'nic', '--force-after', '1e10'], status: 2, says: names('--force-after', "'1e10' is not a number of seconds from 0 to 3600") },
];

for (const c of CASES) {
  test(`bad input: ${c.name} → exit ${c.status}, named, no stack, no hang`, () => {
    const fd = c.stdin === undefined ? 'ignore' : openSync(c.stdin, 'r');
    const outFd = c.stdout === undefined ? 'pipe' : openSync(c.stdout, 'w');
    try {
      // The bound is a hang guard (a spin or a heap growing without end), not a timing.
      const r = spawnSync(process.execPath, [CLI, ...c.args], { encoding: 'utf8', timeout: 120_000, stdio: [fd, outFd, 'pipe'], maxBuffer: 64 << 20 });
      assert.equal(r.signal, null, `killed by ${r.signal}: it hung`);
      assert.notEqual(r.status, 70, `internal error:\n${r.stderr}`);
      assert.equal(r.status, c.status, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+\)?\n/, 'no stack trace');
      assert.doesNotMatch(r.stderr, /^\(node:\d+\)/m, "no raw warning of node's or a library's");
      assert.match(r.stderr, c.says);
    } finally {
      if (typeof fd === 'number') closeSync(fd);
      if (typeof outFd === 'number') closeSync(outFd);
    }
  });
}

test('every command of the CLI has a case in the bad-input table', async () => {
  const leaves = (cmd: Command, prefix: string[]): string[][] =>
    cmd.commands.flatMap((c) => (c.commands.length > 0 ? leaves(c, [...prefix, c.name()]) : [[...prefix, c.name()]]));
  const commands = leaves(buildProgram(await loadCommandGroups([])), []);
  assert.ok(commands.length >= 13, commands.join(', '));
  for (const words of commands) assert.ok(CASES.some((c) => words.every((w, i) => c.args[i] === w)), `no bad-input case for hvmpt ${words.join(' ')}`);
});
