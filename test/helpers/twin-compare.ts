/**
 * Comparing a hardware twin with its source the way a user would: Debian's `lspci -vvv -F`
 * decodes both dumps, and every function must read the same, at its own address or where
 * the twin plan moved it.
 */
import assert from 'node:assert/strict';
import { loadCapture } from '../../src/host/pci/load.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { loadPlan } from '../../src/plan/schema.js';
import { parseBdf } from '../../src/hw/pci/address.js';
import { run } from './run.js';

/** lspci's decode of a dump, one block per function, keyed by its address. */
export function lspciBlocks(file: string): Map<string, string> {
  const r = run('lspci', ['-F', file, '-vvvnn', '-D']);
  assert.equal(r.status, 0, r.stderr);
  const blocks = new Map<string, string>();
  for (const block of r.stdout.split('\n\n')) {
    const head = /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) /.exec(block.trim());
    if (head !== null) blocks.set(head[1]!, block.trim().slice(head[1]!.length));
  }
  return blocks;
}

/**
 * The moves a twin plan makes: `real` entries at new slots (on a root bus, or behind a captured
 * bridge, whose bus number the source dump gives), keyed by captured address.
 */
export function twinMoves(planFile: string, sourceDump: string): Map<string, string> {
  const plan = loadPlan(planFile);
  const capture = loadCapture(sourceDump);
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  const moves = new Map<string, string>();
  for (const r of plan.pci?.real ?? []) {
    if (r.bdf === undefined) continue;
    const from = `${hex(r.bdf.segment, 4)}:${hex(r.bdf.bus, 2)}:${hex(r.bdf.device, 2)}.${r.bdf.fn}`;
    if (r.at.kind === 'root') {
      moves.set(from, `${hex(r.at.segment, 4)}:${hex(r.at.bus, 2)}:${hex(r.at.device, 2)}.${r.at.fn}`);
      continue;
    }
    const bridge = parseBdf(r.at.bridge);
    const b = bridge === undefined ? undefined : capture.functions.find((f) => f.bdf.segment === bridge.segment && f.bdf.bus === bridge.bus && f.bdf.device === bridge.device && f.bdf.fn === bridge.fn);
    if (b !== undefined) moves.set(from, `${hex(b.bdf.segment, 4)}:${hex(b.bytes[0x19]!, 2)}:${hex(r.at.device, 2)}.${r.at.fn}`);
  }
  return moves;
}

/**
 * The functions a twin plan leaves out on purpose: what `pci.hide` names besides the host bridge
 * (CardBus bridges), and everything behind those in the source's bus numbering.
 */
export function twinHidden(planFile: string, sourceDump: string): Set<string> {
  const plan = loadPlan(planFile);
  const capture = loadCapture(sourceDump);
  const name = (b: { segment: number; bus: number; device: number; fn: number }): string =>
    `${b.segment.toString(16).padStart(4, '0')}:${b.bus.toString(16).padStart(2, '0')}:${b.device.toString(16).padStart(2, '0')}.${b.fn}`;
  const out = new Set<string>();
  for (const h of plan.pci?.hide ?? []) {
    if (h.bdf === undefined) continue;
    const c = capture.functions.find((f) => name(f.bdf) === name(h.bdf!));
    if (c === undefined || ((c.bytes[0x0e] ?? 0) & 0x7f) === 0) continue;
    out.add(name(c.bdf));
    for (const x of capture.functions) if (x.bdf.segment === c.bdf.segment && x.bdf.bus >= c.bytes[0x19]! && x.bdf.bus <= c.bytes[0x1a]!) out.add(name(x.bdf));
  }
  return out;
}

/**
 * Source and twin, function by function: every source function is in the twin with the same
 * decode, at its own address or where the plan moved it, unless the plan hides it; 00:00.0 is
 * the monitor's host bridge, 00:01.0 its ISA bridge; nothing else is added.
 */
export function compareTwin(source: Map<string, string>, twin: Map<string, string>, moves: ReadonlyMap<string, string>, hidden: ReadonlySet<string> = new Set()): void {
  const hostBridge = '0000:00:00.0';
  for (const [bdf, decode] of source) {
    if (hidden.has(bdf)) {
      assert.equal(twin.get(moves.get(bdf) ?? bdf), undefined, `${bdf} is hidden`);
      continue;
    }
    if (bdf === hostBridge && /Host bridge/.test(decode)) {
      assert.match(twin.get(hostBridge) ?? '', /\[8086:1237\]/, 'the monitor\'s i440FX is the host bridge');
      continue;
    }
    const at = moves.get(bdf) ?? bdf;
    assert.equal(twin.get(at), decode, `${bdf}${at !== bdf ? ` (at ${at})` : ''}: lspci -vvv decodes the same`);
  }
  const expected = new Set([...source.keys()].filter((b) => !hidden.has(b)).map((b) => moves.get(b) ?? b));
  expected.add(hostBridge);
  expected.add('0000:00:01.0');
  assert.deepEqual([...twin.keys()].filter((b) => !expected.has(b)), [], 'nothing the source lacks');
  assert.match(twin.get('0000:00:01.0') ?? '', /ISA bridge.*\[8086:7000\]/, 'the monitor\'s PIIX3');
}


/**
 * For the probe guest (`machine.boot.kind: probe`): a script that prints every function's
 * config space, as the guest's sysfs has it, in the `lspci -xxxx` form `lspci -F` reads, in a
 * harness section named `config`.
 */
export const GUEST_CONFIG_SCRIPT =
  `section config sh -c 'for d in /sys/bus/pci/devices/*; do echo "\${d##*/} Function"; ` +
  `hexdump -v -e "16/1 \\"%02x \\" \\"\\\\n\\"" $d/config | awk "{ sub(/ +\\$/, \\"\\"); printf \\"%02x: %s\\\\n\\", (NR-1)*16, \\$0 }"; echo; done'`;

/**
 * A section's text without the guest kernel's own console lines: the section shares the serial
 * console with them, and a nested guest under TCG reports RCU stalls and soft lockups, which may
 * cut one of the script's lines in two (`f20: 00 00[   45.919106] rcu: INFO: ...` then ` 00 00`).
 */
export function withoutKernelLines(text: string): string {
  return text.replace(/\[\s*\d+\.\d{6}\] [^\n]*\n/g, '');
}

/** The parts of lspci's decode that a function keeps whatever firmware and drivers program: its identity and its capabilities' places and kinds. */
export function staticDecode(block: string): string {
  const lines = block.split('\n');
  const keep = [lines[0]!.replace(/^\S+ /, '')];
  for (const l of lines.slice(1)) {
    if (/^\s*Subsystem:/.test(l)) keep.push(l.trim());
    const cap = /^\s*Capabilities: \[([0-9a-f]+)(?: v\d+)?\] ([^:]*)/.exec(l);
    if (cap !== null) keep.push(`cap ${cap[1]} ${cap[2]!.replace(/\s+(Enable|Count)[+-=].*$/, '').trim()}`);
  }
  return keep.join('\n');
}

/**
 * Each function of a dump by its place in the tree, whatever the bus numbers: `1c.0/00.0` is
 * function 0 of slot 0 behind the bridge at slot 1c.0 of root bus 00 (segment 0). Functions
 * below other root buses or segments are left out (a guest of the monitor sees only those).
 */
export function functionPaths(dumpFile: string): Map<string, string> {
  const c = composePci({ base: loadCapture(dumpFile) }, dumpFile);
  const out = new Map<string, string>();
  for (const { fn, bdf } of c.topology.reachable()) {
    const hops: string[] = [];
    let at = fn;
    let bus = c.topology.busOf(at);
    hops.unshift(`${at.device.toString(16).padStart(2, '0')}.${at.fn}`);
    while (bus.bridge !== null) {
      at = bus.bridge;
      hops.unshift(`${at.device.toString(16).padStart(2, '0')}.${at.fn}`);
      bus = c.topology.busOf(at);
    }
    if (bus.segment !== 0 || bus.number !== 0) continue;
    out.set(hops.join('/'), `${bdf.segment.toString(16).padStart(4, '0')}:${bdf.bus.toString(16).padStart(2, '0')}:${bdf.device.toString(16).padStart(2, '0')}.${bdf.fn}`);
  }
  return out;
}

/**
 * A twin booted with GUEST_CONFIG_SCRIPT against its source and its composed bus, place by place
 * in the tree (the guest's firmware numbers the buses its own way), by what firmware and drivers
 * do not program (staticDecode): every source function the plan neither hides nor moves (nor
 * replaces: the host bridge) reads the same in the guest, and the guest has exactly the
 * functions the plan composes, reading the same. Returns what differs, one entry a function.
 */
export function compareGuestTwin(sourceDump: string, composedDump: string, guestDump: string, moves: ReadonlyMap<string, string>, hidden: ReadonlySet<string>): string[] {
  const decode = (file: string): Map<string, string> => {
    const b = lspciBlocks(file);
    return new Map([...functionPaths(file)].map(([path, bdf]) => [path, staticDecode(`${bdf} ${b.get(bdf) ?? ''}`)]));
  };
  const src = decode(sourceDump);
  const srcBdf = functionPaths(sourceDump);
  const composed = decode(composedDump);
  const seen = decode(guestDump);
  const problems: string[] = [];
  for (const [path, d] of src) {
    const bdf = srcBdf.get(path)!;
    if (hidden.has(bdf) || moves.has(bdf) || bdf === '0000:00:00.0') continue;
    if (seen.get(path) !== d) problems.push(`${path} (${bdf}): source\n${d}\nguest\n${seen.get(path) ?? '(absent)'}`);
  }
  for (const [path, d] of composed) if (seen.get(path) !== d) problems.push(`${path}: composed\n${d}\nguest\n${seen.get(path) ?? '(absent)'}`);
  for (const path of seen.keys()) if (!composed.has(path)) problems.push(`${path}: in the guest, not in the plan`);
  return problems;
}
