/**
 * Policy plug-ins at work: a policy sees the plan as written and the host facts the plan
 * starts from, and changes the plan only through `PolicyContext`, which records every change
 * with the policy's reason. The changed document is validated again like any plan, so a
 * policy cannot produce what a user could not have written.
 */
import { formatBdf, parseBdf, sameBdf } from '../hw/pci/address.js';
import { loadCapture } from '../host/pci/load.js';
import { resolvePlanFiles } from '../host/plan/files.js';
import type { Plan } from '../plan/schema.js';
import type { PolicyChange, PolicyContext, PolicyDefinition, PolicyPciFunction } from './api.js';
import { PluginFault } from './device.js';
import { isThenable, withTimeLimit } from './watchdog.js';

/** What a policy may read about the machine. */
export interface PolicyHostFacts {
  readonly pci: readonly PolicyPciFunction[];
  readonly acpiTables: readonly string[];
}

/** ms a policy's apply may run: it reads a plan and host facts, nothing slow. */
const POLICY_LIMIT_MS = 5000;
const le16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const classOf = (b: Uint8Array): number => (b[0x0b]! << 16) | (b[0x0a]! << 8) | b[0x09]!;

/** The functions the guest's bus would start from: the host capture's (those the plan keeps) and the plan's own replayed and generic devices. */
export function policyHostFacts(plan: Plan, planFile: string): PolicyHostFacts {
  const hidden = (plan.pci?.hide ?? []).map((h) => h.bdf).filter((b) => b !== undefined);
  const pci: PolicyPciFunction[] = [];
  let acpiTables: string[] = [];
  const needsFiles = plan.machine.hostPci !== undefined || (plan.pci?.real ?? []).length > 0 || plan.machine.acpiTables !== undefined;
  const files = needsFiles ? resolvePlanFiles(plan, planFile) : undefined;
  if (files !== undefined && plan.machine.hostPci !== undefined) {
    const keep = plan.machine.hostPci.functions?.map((f) => parseBdf(f));
    for (const f of files.capture('machine.hostPci.capture').capture.functions) {
      if (keep !== undefined && !keep.some((k) => k !== undefined && sameBdf(k, f.bdf))) continue;
      pci.push({ at: formatBdf(f.bdf), origin: 'host', vendorId: le16(f.bytes, 0), deviceId: le16(f.bytes, 2), classCode: classOf(f.bytes), hidden: hidden.some((h) => sameBdf(h, f.bdf)) });
    }
  }
  (plan.pci?.real ?? []).forEach((r, i) => {
    const cap = files!.capture(`pci.real[${i}].dump`).capture;
    const f = r.bdf === undefined ? cap.functions[0] : cap.functions.find((x) => sameBdf(x.bdf, r.bdf!));
    if (f !== undefined) pci.push({ at: r.name, origin: 'plan', vendorId: le16(f.bytes, 0), deviceId: le16(f.bytes, 2), classCode: classOf(f.bytes), hidden: false });
  });
  for (const e of plan.pci?.emulated ?? []) {
    const o = e.options as { vendor?: number; device?: number; class?: number } | undefined;
    if (e.model === 'generic' && o?.vendor !== undefined) pci.push({ at: e.name, origin: 'plan', vendorId: o.vendor, deviceId: o.device ?? 0, classCode: o.class ?? 0, hidden: false });
  }
  if (files !== undefined && plan.machine.acpiTables !== undefined) acpiTables = files.acpiTables('machine.acpiTables').tables.map((t) => t.signature);
  return { pci, acpiTables };
}

/** Loads a capture for tests and tools that build facts without a plan. */
export function captureFacts(path: string): PolicyPciFunction[] {
  return loadCapture(path).functions.map((f) => ({ at: formatBdf(f.bdf), origin: 'host' as const, vendorId: le16(f.bytes, 0), deviceId: le16(f.bytes, 2), classCode: classOf(f.bytes), hidden: false }));
}

type Doc = Record<string, unknown>;

function section(doc: Doc, key: string): Doc {
  const v = doc[key];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Doc;
  const fresh: Doc = {};
  doc[key] = fresh;
  return fresh;
}

function list(doc: Doc, key: string): unknown[] {
  const v = doc[key];
  if (Array.isArray(v)) return v;
  const fresh: unknown[] = [];
  doc[key] = fresh;
  return fresh;
}

/** Runs one policy on a copy of the document; returns the changed copy and what changed. */
export function applyPolicy<O>(def: PolicyDefinition<O>, options: O, doc: Doc, facts: PolicyHostFacts): { doc: Doc; changes: PolicyChange[] } {
  const out = structuredClone(doc);
  const changes: PolicyChange[] = [];
  const record = (action: PolicyChange['action'], target: string, why: string): void => void changes.push({ policy: def.name, action, target, why: String(why) });
  const pciHidden = (at: string): boolean => {
    const b = parseBdf(at);
    const hide = (out['pci'] as Doc | undefined)?.['hide'];
    return b !== undefined && Array.isArray(hide) && hide.some((h) => typeof (h as Doc)['bdf'] === 'string' && sameBdf(parseBdf((h as Doc)['bdf'] as string) ?? { segment: -1, bus: 0, device: 0, fn: 0 }, b));
  };
  const ctx: PolicyContext = {
    plan: out,
    host: {
      pci: facts.pci.map((f) => ({ ...f, hidden: f.hidden || pciHidden(f.at) })),
      acpiTables: facts.acpiTables,
    },
    hidePci(at, why) {
      const b = parseBdf(at);
      if (b === undefined) throw new TypeError(`hidePci: '${at}' is not a PCI address like 00:1f.3`);
      if (pciHidden(at)) return;
      list(section(out, 'pci'), 'hide').push({ bdf: formatBdf(b) });
      record('hide-pci', formatBdf(b), why);
    },
    exposePci(at, why) {
      const b = parseBdf(at);
      if (b === undefined) throw new TypeError(`exposePci: '${at}' is not a PCI address like 00:1f.3`);
      const pci = section(out, 'pci');
      const hide = list(pci, 'hide');
      const kept = hide.filter((h) => {
        const hb = typeof (h as Doc)['bdf'] === 'string' ? parseBdf((h as Doc)['bdf'] as string) : undefined;
        return hb === undefined || !sameBdf(hb, b);
      });
      if (kept.length === hide.length) return;
      pci['hide'] = kept;
      record('expose-pci', formatBdf(b), why);
    },
    acpiRule(rule, why) {
      list(section(out, 'acpi'), 'rules').push(structuredClone(rule));
      const target = ['path', 'method', 'signature', 'device', 'bridge'].map((k) => rule[k]).find((v) => typeof v === 'string');
      record('acpi-rule', `${String(rule['action'])}${target === undefined ? '' : ` ${String(target)}`}`, why);
    },
    addSsdt(ssdt, why) {
      const acpi = section(out, 'acpi');
      const id = typeof ssdt['oemTableId'] === 'string' ? ssdt['oemTableId'] : 'SSDT';
      if (acpi['tables'] === 'host') list(acpi, 'rules').push({ action: 'add-ssdt', ...structuredClone(ssdt) });
      else list(section(acpi, 'generate'), 'ssdts').push(structuredClone(ssdt));
      record('add-ssdt', id, why);
    },
  };
  const r = withTimeLimit(POLICY_LIMIT_MS, () => def.apply(ctx, options));
  if (!('value' in r)) throw new PluginFault(`it ran longer than ${POLICY_LIMIT_MS} ms; stopped`, { input: def.name });
  const returned: unknown = r.value;
  if (isThenable(returned)) {
    Promise.resolve(returned).catch(() => {});
    throw new PluginFault('apply returned a promise: policies are synchronous, and what it changes after an await is lost', { input: def.name });
  }
  return { doc: out, changes };
}
