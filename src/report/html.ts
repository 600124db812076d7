/**
 * `hvmpt report`: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
 * showing a composed platform — memory map, PCI tree, interrupt routing — with the host's
 * readiness findings when host facts are given and what a run recorded when its report is.
 */
import { passthroughFindings, type HostFacts, type HostFinding } from '../host/pci/host-facts.js';
import { sysfsName } from '../hw/pci/host-function.js';
import type { Plan } from '../plan/schema.js';
import type { ComposedMachine } from '../platform/compose.js';
import { passthroughInfo, platformFunctions, type PassthroughInfo } from '../platform/functions.js';
import type { PlatformInputs } from '../platform/inputs.js';
import { interruptRows } from './interrupts.js';
import { memoryView } from './memory.js';
import { describeEnd, type RunRecord } from './run-record.js';
import { esc, KIND_WORDS, memorySvg, pciSvg } from './svg.js';
import { pciTree } from './tree.js';

export interface ReportInput {
  readonly plan: Plan;
  readonly planFile: string;
  readonly composed: ComposedMachine;
  /** What composition read (the pass-through entries' host functions among it). */
  readonly inputs: PlatformInputs;
  /** Another host's facts the plan was composed against (`--host`), with their findings. */
  readonly host?: HostFacts;
  readonly run?: RunRecord;
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2329; background: #fbfbfa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d5d9dd; padding-bottom: 4px; }
.sub { color: #5b6670; } ul.summary { font: 12px/1.5 ui-monospace, monospace; color: #3a444d; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #d5d9dd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f3; } td.mono, .mono { font-family: ui-monospace, monospace; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; border: 1px solid #777; }
svg text { font: 11px ui-monospace, monospace; fill: #1d2329; }
svg .addr { fill: #5b6670; } svg .coltitle { font: bold 12px system-ui, sans-serif; } svg .grid { stroke: #e3e6e9; }
svg .hole { fill: #f4f4f2; stroke: #c9cdd1; stroke-dasharray: 3 3; }
.region rect { stroke: #ffffff; stroke-width: 0.5; }
.ram rect, i.ram { fill: #cfe8cf; background: #cfe8cf; } .identity rect, i.identity { fill: #7fc98b; background: #7fc98b; }
.carve rect, i.carve { fill: #f2b36b; background: #f2b36b; } .reserved rect, i.reserved { fill: #c8ccd2; background: #c8ccd2; }
.acpi rect, i.acpi { fill: #c9c1e8; background: #c9c1e8; } .nvs rect, i.nvs { fill: #a99fd6; background: #a99fd6; } .other rect, i.other { fill: #e0d7c8; background: #e0d7c8; }
.ecam rect, i.ecam { fill: #f7d774; background: #f7d774; } .window rect, i.window { fill: #dbe9f6; background: #dbe9f6; } .bar rect, i.bar { fill: #5b8fd1; background: #5b8fd1; }
.bar text { fill: #ffffff; }
.pcitree .bus text { font: bold 12px system-ui, sans-serif; } .pcitree .edge { fill: none; stroke: #9aa3ab; }
.fn rect { stroke: #59636c; stroke-width: 1; } .fn .title { font-weight: bold; } .fn .badge { font: bold 11px system-ui, sans-serif; }
.kind-chipset rect, i.kind-chipset { fill: #e4e8ee; background: #e4e8ee; } .kind-captured rect, i.kind-captured { fill: #fde2c4; background: #fde2c4; }
.kind-emulated rect, i.kind-emulated { fill: #d3f0d8; background: #d3f0d8; } .kind-fake rect, i.kind-fake { fill: #e9dcf7; background: #e9dcf7; }
.kind-passthrough rect, i.kind-passthrough { fill: #fbd0d0; background: #fbd0d0; }
.fn.hidden rect, i.hidden { fill: #f6f6f6; background: #f6f6f6; stroke-dasharray: 5 4; stroke: #9aa3ab; } .fn.hidden text { fill: #8a939b; } i.hidden { border-style: dashed; }
.finding-blocker { color: #a3161b; font-weight: bold; } .finding-warning { color: #8a5a00; }
`;

function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>, mono: readonly number[] = []): string {
  if (rows.length === 0) return '<p class="sub">none</p>';
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${mono.includes(i) ? ' class="mono"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function legend(items: ReadonlyArray<readonly [string, string]>): string {
  return `<p class="legend">${items.map(([cls, words]) => `<span><i class="${cls}"></i>${esc(words)}</span>`).join('')}</p>`;
}

function findingsSection(input: ReportInput, infos: readonly PassthroughInfo[]): string {
  const h = input.host;
  const source = h === undefined ? "this machine's sysfs" : h.source;
  const facts = h ?? { source, functions: [], iommuVendor: undefined, findings: [] };
  // Findings about the host as a whole, then each about a device the plan passes (the others are not this plan's).
  const findings: HostFinding[] = [...facts.findings.filter((f) => f.device === undefined), ...passthroughFindings(facts, infos)];
  const about = h === undefined ? '' : `: ${h.functions.length} PCI functions${h.iommuVendor === undefined ? '' : `, ${h.iommuVendor === 'intel' ? 'Intel VT-d' : 'AMD-Vi'} platform`}`;
  const head = `<p class="sub">The pass-through devices are described from <span class="mono">${esc(source)}</span>${about}.${h === undefined ? ' <span class="mono">--host</span> describes them from another host\'s collection (hvmpt collect), sysfs tree or lspci -xxx dump.' : ''}</p>`;
  const item = (f: HostFinding): string => `<li class="finding-${f.severity}">${esc(f.severity)}: ${esc(f.message)}</li>`;
  // A collection's own page also says why the functions the plan leaves with the host stay there.
  const passed = new Set(infos.map((i) => sysfsName(i.host.address)));
  const others = facts.findings.filter((f) => f.device !== undefined && !passed.has(f.device));
  const rest = h?.collection === undefined || others.length === 0 ? '' : `<h3>Functions the plan does not pass</h3><ul>${others.map((f) => item({ ...f, message: `${f.device}: ${f.message}` })).join('')}</ul>`;
  if (infos.length === 0) return `${head}<p>The plan passes no device through.</p>${rest}`;
  const rows = findings.map(item);
  return head + (rows.length === 0 ? '<p>No findings against the plan\'s pass-through devices.</p>' : `<ul>${rows.join('')}</ul>`) + rest;
}

function runSection(run: RunRecord | undefined): string {
  if (run === undefined) return '<p class="sub">No run recorded: <span class="mono">hvmpt run PLAN --report run.json</span>, then <span class="mono">hvmpt report PLAN --run run.json</span> (or <span class="mono">hvmpt run --report-html</span>).</p>';
  const facts = [`ended: ${describeEnd(run)}`, ...(run.boots === undefined ? [] : [`boots: ${run.boots}`]), ...(run.exits === undefined ? [] : [`exits: ${run.exits}`]), ...(run.wallMs === undefined ? [] : [`wall time: ${(run.wallMs / 1000).toFixed(1)} s`])];
  const maps = run.barMappings.map((m) => [m.device, m.bdf, m.bar === 'rom' ? 'ROM' : `BAR${m.bar}`, m.kind, m.old === null ? '—' : `${m.old.address} +${m.old.size}`, m.new === null ? '—' : `${m.new.address} +${m.new.size}`, m.action, m.window ?? '', m.detail ?? '']);
  return (
    `<p>${facts.map(esc).join(' · ')}</p>` +
    '<h3>BAR mappings</h3>' +
    table(['device', 'BDF', 'BAR', 'kind', 'old', 'new', 'action', 'window', 'detail'], maps, [1, 4, 5]) +
    '<h3>Refusals</h3>' +
    table(['what'], [...run.fwCfgRefusals.map((r) => [`fw_cfg: ${r}`]), ...(run.romWritesRefused ? [[`${run.romWritesRefused} writes to the BIOS ROM dropped`]] : [])]) +
    '<h3>Device faults</h3>' +
    table(['device', 'message'], run.deviceFaults.map((f) => [f.device, f.message])) +
    '<h3>IOMMU faults of passed-through devices</h3>' +
    table(['device', 'access', 'address', 'reason'], run.iommuFaults.map((f) => [f.device, f.access, f.address, f.reason]), [0, 2]) +
    '<h3>Unclaimed accesses</h3>' +
    table(['access'], run.unclaimed.map((u) => [u]), [0])
  );
}

export function renderReport(input: ReportInput): string {
  const { plan, composed } = input;
  const infos = passthroughInfo(plan, input.inputs);
  const functions = platformFunctions(composed.pci, infos);
  const memory = memoryView(composed, input.run);
  const tree = pciTree(functions);
  const irq = interruptRows(composed, functions);
  const title = plan.name ?? input.planFile;
  const id = composed.identity;
  const memoryKinds = new Set(memory.columns.flatMap((c) => c.regions.map((r) => r.kind)));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>hvmpt report: ${esc(title)}</title>
<style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="sub">hvmpt report of <span class="mono">${esc(input.planFile)}</span>: the platform the plan composes for its guest.</p>
<ul class="summary">${composed.summary.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<h2 id="memory">Memory</h2>
<p>${id === undefined ? 'An ordinary layout: guest RAM is the monitor\'s, anywhere in host memory.' : `An identity layout: the guest's RAM is host RAM at the same addresses, carved out of the host with <span class="mono">${esc(id.kernelParams.join(' '))}</span>; the guest's E820 mirrors the host's holes.`} BARs are shown ${esc(memory.barsFrom)}.</p>
${legend([...memoryKinds].map((k) => [k, KIND_WORDS[k]] as const))}
${memorySvg(memory)}
<h2 id="pci">PCI</h2>
<p>${functions.length} functions: ${(['chipset', 'captured', 'emulated', 'fake', 'passthrough'] as const).map((k) => `${functions.filter((f) => f.kind === k).length} ${k === 'captured' ? 'real (replayed)' : k === 'passthrough' ? 'passed through' : k}`).join(', ')}; ${tree.filter((n) => n.hidden).length} hidden.</p>
${legend([['kind-chipset', 'chipset'], ['kind-captured', 'real (replayed capture)'], ['kind-emulated', 'emulated'], ['kind-fake', 'fake'], ['kind-passthrough', 'passed through'], ['hidden', 'hidden']])}
${pciSvg(tree)}
<h2 id="interrupts">Interrupts</h2>
<p class="sub">INTx: the function's pin, swizzled at each bridge to a root slot's pin, the PIIX3 PIRQ line and the DSDT link device for it, and the GSI the _PRT gives in APIC mode. Vectors are the guest OS's choice, made at run time.</p>
${table(['device', 'BDF', 'pin', 'via', 'PIRQ', 'link', 'GSI', 'MSI / MSI-X'], irq.map((r) => [r.device, r.bdf, r.pin, r.via, r.pirq, r.link, r.gsi, r.msi]), [1])}
<h2 id="readiness">Readiness</h2>
${findingsSection(input, infos)}
<h2 id="run">Run</h2>
${runSection(input.run)}
</body></html>
`;
}
