import { Option, type Command } from 'commander';
import { HvmptError, UsageError, type ErrorPlace } from '../errors.js';
import { normalizeE820, type E820Map, type E820Warning } from '../hw/mem/e820.js';
import { e820ToJson, formatLinux, formatXen, hexString } from '../hw/mem/e820-format.js';
import { describeMaps, selectMap, type FoundMap, type ParseResult } from '../hw/mem/e820-parse.js';
import {
  IdentityPlanError,
  IdentityRequestError,
  planIdentity,
  type DeviceWindow,
  type IdentityPlan,
  type IdentityRequest,
  type LowMemoryPolicy,
  type Reservation,
} from '../hw/mem/identity.js';
import { escapeForEtcDefaultGrub, exactmapParams } from '../hw/mem/kernel-params.js';
import { ADDRESS_LIMIT, formatRange, sizeText } from '../hw/mem/range.js';
import { readE820Input } from '../host/mem/read.js';
import { PlanError } from '../plan/load.js';
import { identityPlanPath, identityRequestFromPlan, loadMemorySection } from '../plan/memory.js';
import { parseSize } from '../util/format.js';
import { writeJson, writeOut } from './output.js';

const INPUT_HELP =
  'a boot log (dmesg, journal, syslog, Xen console), a `grep . /sys/firmware/memmap/*/*` listing, ' +
  'a copy of /proc/iomem, hvmpt JSON, a memmap directory such as /sys/firmware/memmap, or - for standard input';

export function registerE820(program: Command): void {
  const e820 = program
    .command('e820')
    .description('E820 memory maps: read, normalize and print them, and carve identity (1:1) RAM for pass-through without an IOMMU');

  e820
    .command('show')
    .description('print the memory map found in <input>, normalized (sorted, merged, overlaps resolved with a warning)')
    .argument('<input>', INPUT_HELP)
    .addOption(new Option('--format <format>', 'output format').choices(['linux', 'xen', 'json']).default('linux'))
    .option('--map <label>', 'which map when the input holds several: BIOS-e820, user, modified, Xen-e820, Xen, … (label#2 for the second of a kind); default: the machine\'s own')
    .option('--list', 'list the maps found in <input> instead of printing one')
    .action(async (input: string, opts: { format: 'linux' | 'xen' | 'json'; map?: string; list?: boolean }) => {
      const parsed = readE820Input(input);
      if (opts.list) return writeOut(describeMaps(parsed.maps).join('\n') + '\n');
      const { found, map } = chooseMap(parsed, input, opts.map);
      if (opts.format === 'json') return writeJson(e820ToJson(map));
      if (opts.format === 'xen') return writeOut(formatXen(map, { header: ['Xen-e820 RAM map:'] }));
      return writeOut(formatLinux(map, isLinuxLabel(found.label) ? found.label : 'BIOS-e820'));
    });

  e820
    .command('carve')
    .description(
      'plan identity (1:1) RAM for guests on the host whose map is <input>: prints the host map after the carve, ' +
        'the host kernel parameters that make it real, and each guest\'s E820 and protection map',
    )
    .argument('<input>', INPUT_HELP)
    .option('--size <bytes>', 'identity RAM per guest: 4096, 0x1000, 512M, 2G (or memory.size from --plan)')
    .option('--align <bytes>', 'alignment of each region', '2M')
    .option('--guests <n>', 'number of guests, each with its own region', '1')
    .option('--above <address>', 'regions start at or above this address (never below 1M)')
    .option('--below <address>', 'regions end at or below this address (e.g. 4G for 32-bit DMA devices)')
    .option('--regions <n>', 'most regions per guest when RAM is fragmented', '1')
    .option('--host-keep <bytes>', 'RAM the host must keep after the carve', '256M')
    .addOption(new Option('--low-memory <policy>', 'what the guest gets below 1 MiB: private RAM (not 1:1) or none').choices(['private', 'none']))
    .option('--reserve <start+size[=name]>', 'a host range to keep clear of (hypervisor heap, crash kernel); repeatable', collect, [])
    .option('--bar <[guest:]start+size[=name]>', 'a device BAR the guest may map read-write; repeatable', collect, [])
    .option('--firmware <[guest:]start+size[=name]>', 'a firmware area (ROM) the guest may map read-only; repeatable', collect, [])
    .option('--plan <file>', 'take the request from the memory section of a plan (YAML or JSON); options given here win')
    .option('--map <label>', 'which map when the input holds several (see `e820 show --list`)')
    .addOption(new Option('--format <format>', 'layout of the host map in text output').choices(['xen', 'linux']).default('xen'))
    .option('--tag <name>', 'the name in the "Machine Available RAM" banner of the Xen-format host map', 'NEO')
    .option('--json', 'print {hostAfter, kernelParams, guests:[{identity, e820, mayMap}]} as JSON')
    .action(async (input: string, opts: CarveOptions, cmd: Command) => {
      const { request, placeOf } = carveRequest(opts, (name) => cmd.getOptionValueSource(name) !== 'default');
      const parsed = readE820Input(input);
      const { map } = chooseMap(parsed, input, opts.map);
      const plan = planFor(map, request, placeOf);
      if (opts.json) return writeJson(carveJson(plan));
      return writeOut(carveText(plan, opts));
    });
}

interface CarveOptions {
  size?: string;
  align: string;
  guests: string;
  above?: string;
  below?: string;
  regions: string;
  hostKeep: string;
  lowMemory?: LowMemoryPolicy;
  reserve: string[];
  bar: string[];
  firmware: string[];
  plan?: string;
  map?: string;
  format: 'xen' | 'linux';
  tag: string;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function isLinuxLabel(label: string): boolean {
  return ['BIOS-e820', 'BIOS-e801', 'BIOS-88', 'Xen', 'user', 'modified', 'reserve setup_data'].includes(label);
}

/** Selects and normalizes a map, sending every warning and note to stderr. */
function chooseMap(parsed: ParseResult, input: string, label: string | undefined): { found: FoundMap; map: E820Map } {
  const found = selectMap(parsed, input, label);
  if (label === undefined && parsed.maps.length > 1) {
    process.stderr.write(`hvmpt: note: ${input}: holds ${parsed.maps.length} maps (${describeMaps(parsed.maps).join(', ')}); using ${found.label} (--map chooses)\n`);
  }
  const { map, warnings } = normalizeE820(found.entries);
  for (const note of parsed.notes) process.stderr.write(`hvmpt: note: ${input}: ${note}\n`);
  for (const w of parsed.warnings ?? []) process.stderr.write(`hvmpt: warning: ${input}: ${w}\n`);
  for (const w of warnings) warn(input, found, w);
  return { found, map };
}

function warn(input: string, found: FoundMap, w: E820Warning): void {
  process.stderr.write(`hvmpt: warning: ${input}: ${found.label} map (line ${found.line}): ${w.message}\n`);
}

function sizeOption(value: string, name: string): bigint {
  const v = parseSize(value);
  if (v === undefined) throw new UsageError(`'${value}' is not a size or address (examples: 4096, 0x1000, 512M, 2G)`, { input: name });
  if (v > ADDRESS_LIMIT) throw new UsageError(`'${value}' is beyond the 64-bit address space`, { input: name });
  return v;
}

function countOption(value: string, name: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`'${value}' is not a whole number`, { input: name });
  return Number(value);
}

/** `[guest:]start+size[=name]` */
function windowOption(value: string, name: string, withGuest: boolean): { guest: number; start: bigint; end: bigint; label?: string } {
  const m = /^(?:(\d+):)?([^+=]+)\+([^=]+)(?:=(.+))?$/.exec(value);
  if (m === null || (!withGuest && m[1] !== undefined)) {
    throw new UsageError(`'${value}' is not ${withGuest ? '[guest:]' : ''}START+SIZE[=NAME] (e.g. ${withGuest ? '0:' : ''}0xf0000000+16M)`, { input: name });
  }
  const start = sizeOption(m[2]!, name);
  const size = sizeOption(m[3]!, name);
  if (size === 0n) throw new UsageError(`'${value}': the size is zero`, { input: name });
  return { guest: m[1] === undefined ? 0 : Number(m[1]), start, end: start + size, ...(m[4] !== undefined ? { label: m[4] } : {}) };
}

/** Where a request field came from: the plan (its path) or an option. */
type PlaceOf = (field: string) => { readonly plan: string; readonly path: string } | { readonly option: string };

/**
 * Plans the carve; the planner's errors name the option or the plan field the value came from.
 * A value no host could satisfy given as an option is a usage error (exit 2).
 */
function planFor(map: E820Map, request: IdentityRequest, placeOf: PlaceOf): IdentityPlan {
  try {
    return planIdentity(map, request);
  } catch (err) {
    if (!(err instanceof IdentityPlanError)) throw err;
    const place = placeOf(err.where.at ?? '');
    if ('plan' in place) throw new PlanError(place.plan, [{ path: place.path, message: err.detail }]);
    const where: ErrorPlace = { input: place.option };
    throw err instanceof IdentityRequestError ? new UsageError(err.detail, where) : new CarveError(err.detail, where);
  }
}

/** The host map has no room for what the options ask. */
class CarveError extends HvmptError {}

/** The options behind the request fields the planner names in its errors. */
const REQUEST_OPTIONS: Readonly<Record<string, { flag: string; attr: keyof CarveOptions; key: keyof IdentityRequest }>> = {
  size: { flag: '--size', attr: 'size', key: 'size' },
  align: { flag: '--align', attr: 'align', key: 'align' },
  hostKeep: { flag: '--host-keep', attr: 'hostKeep', key: 'hostKeep' },
  maxRegionsPerGuest: { flag: '--regions', attr: 'regions', key: 'maxRegionsPerGuest' },
  below: { flag: '--below', attr: 'below', key: 'below' },
};

/** `given(name)`: whether the user set the option (a plan's value beats an option's default, not an option given). */
function carveRequest(opts: CarveOptions, given: (option: string) => boolean): { request: IdentityRequest; placeOf: PlaceOf } {
  const fromPlan: Partial<IdentityRequest> = {};
  if (opts.plan !== undefined) {
    const section = loadMemorySection(opts.plan);
    if (section === undefined) throw new PlanError(opts.plan, [{ path: 'memory', message: 'the plan has no memory section to carve for' }]);
    if (section.layout !== 'identity') {
      throw new PlanError(opts.plan, [{ path: 'memory.layout', message: `layout is '${section.layout}': only an identity layout is carved from the host` }]);
    }
    Object.assign(fromPlan, identityRequestFromPlan(section));
  }
  const size = opts.size !== undefined ? sizeOption(opts.size, '--size') : fromPlan.size;
  if (size === undefined) throw new UsageError('say how much identity RAM each guest gets: --size (or a plan with memory.size)', { input: '--size' });
  const reservations: Reservation[] = [
    ...(fromPlan.reservations ?? []),
    ...opts.reserve.map((r, i) => {
      const w = windowOption(r, '--reserve', false);
      return { start: w.start, end: w.end, owner: 'hypervisor' as const, name: w.label ?? `--reserve #${i + 1}` };
    }),
  ];
  const devices: DeviceWindow[] = [
    ...opts.bar.map((b, i) => {
      const w = windowOption(b, '--bar', true);
      return { guest: w.guest, start: w.start, end: w.end, kind: 'bar' as const, name: w.label ?? `BAR #${i + 1}` };
    }),
    ...opts.firmware.map((b, i) => {
      const w = windowOption(b, '--firmware', true);
      return { guest: w.guest, start: w.start, end: w.end, kind: 'firmware' as const, name: w.label ?? `firmware #${i + 1}` };
    }),
  ];
  const pick = <T>(option: string, planned: T | undefined, parsed: () => T): T =>
    opts.plan !== undefined && !given(option) && planned !== undefined ? planned : parsed();
  const planReservations = fromPlan.reservations?.length ?? 0;
  const placeOf: PlaceOf = (field) => {
    const reservation = /^reservations\[(\d+)\]/.exec(field);
    if (reservation !== null) return Number(reservation[1]) < planReservations ? { plan: opts.plan!, path: identityPlanPath(field) } : { option: '--reserve' };
    const device = /^devices\[(\d+)\]/.exec(field);
    if (device !== null) return { option: Number(device[1]) < opts.bar.length ? '--bar' : '--firmware' };
    const f = REQUEST_OPTIONS[field];
    if (f === undefined) return { option: '--guests' };
    const usedPlan = opts.plan !== undefined && fromPlan[f.key] !== undefined && (opts[f.attr] === undefined || !given(f.attr));
    return usedPlan ? { plan: opts.plan!, path: identityPlanPath(field) } : { option: f.flag };
  };
  const request: IdentityRequest = {
    ...fromPlan,
    size,
    guests: countOption(opts.guests, '--guests'),
    align: pick('align', fromPlan.align, () => sizeOption(opts.align, '--align')),
    hostKeep: pick('hostKeep', fromPlan.hostKeep, () => sizeOption(opts.hostKeep, '--host-keep')),
    maxRegionsPerGuest: pick('regions', fromPlan.maxRegionsPerGuest, () => countOption(opts.regions, '--regions')),
    ...(opts.above !== undefined ? { above: sizeOption(opts.above, '--above') } : {}),
    ...(opts.below !== undefined ? { below: sizeOption(opts.below, '--below') } : {}),
    ...(opts.lowMemory !== undefined ? { lowMemory: opts.lowMemory } : {}),
    reservations,
    devices,
  };
  return { request, placeOf };
}

/** The issue's JSON contract: hex strings, exclusive ends, `$` escaped for a grub.cfg. */
export function carveJson(plan: IdentityPlan): unknown {
  return {
    hostAfter: e820ToJson(plan.hostAfter),
    kernelParams: plan.kernelParamsGrub,
    guests: plan.guests.map((g) => ({
      identity: g.identity.map((r) => ({ start: hexString(r.start), end: hexString(r.end) })),
      e820: e820ToJson(g.e820),
      mayMap: g.protection.grants.map((x) => ({ start: hexString(x.start), end: hexString(x.end), access: x.access })),
    })),
  };
}

function carveText(plan: IdentityPlan, opts: CarveOptions): string {
  const out: string[] = [];
  out.push('Host map after the carve ((1:1) = RAM carved for guests, reserved to the host kernel):');
  out.push(
    opts.format === 'xen'
      ? formatXen(plan.hostAfter, { header: [`${opts.tag}: Machine Available RAM: ${plan.hostRamBefore}`] }).trimEnd()
      : formatLinux(plan.hostAfter, 'user').trimEnd(),
  );
  out.push('');
  out.push(`Host RAM: ${sizeText(plan.hostRamBefore)} before the carve, ${sizeText(plan.hostRamAfter)} after.`);
  out.push('');
  out.push('Host kernel parameters (as written in a grub.cfg `linux` line):');
  out.push('  ' + plan.kernelParamsGrub.join(' '));
  out.push('In /etc/default/grub (read by the shell first):');
  out.push(`  GRUB_CMDLINE_LINUX="${plan.kernelParams.map(escapeForEtcDefaultGrub).join(' ')}"`);
  out.push('Unescaped, for QEMU -append, kexec or a boot loader that takes the line literally:');
  out.push('  ' + plan.kernelParams.join(' '));
  for (const g of plan.guests) {
    out.push('');
    out.push(
      `Guest ${g.index}: identity RAM ${g.identity.map((r) => `${formatRange(r)} (${sizeText(r.end - r.start)})`).join(', ')}` +
        (g.lowMemory.length > 0 ? `; private low RAM ${g.lowMemory.map(formatRange).join(', ')}` : '; no low RAM'),
    );
    out.push('  E820:');
    out.push(formatLinux(g.e820, 'BIOS-e820').trimEnd().replace(/^/gm, '    '));
    out.push('  May map (everything else is denied):');
    for (const x of g.protection.grants) out.push(`    ${formatRange(x)} ${x.access}  ${x.kind}  ${x.name}`);
    for (const r of g.protection.rejected) out.push(`  Refused: ${r.grant.name}: ${r.reason}`);
    out.push('  To boot a Linux guest on this map under another VMM:');
    out.push('    ' + exactmapParams(g.e820).join(' '));
  }
  return out.join('\n') + '\n';
}
