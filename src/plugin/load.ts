/**
 * The plug-in edge: module specifiers resolved relative to the plan, modules imported, their
 * definitions checked, options validated by each plug-in's own schema (every problem by its
 * plan path), device layouts turned into the PCI core's specs, vfio-user servers described.
 * Policies run here too, on the plan as written, before it is validated again and composed.
 */
import { dirname, resolve } from 'node:path';
import { HvmptError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { readInputText } from '../plan/input.js';
import { parseStructuredText, PlanError, validate, type PlanProblem } from '../plan/load.js';
import { pluginName, type PluginEntry } from '../plan/pci.js';
import { planSchema, type Plan } from '../plan/schema.js';
import type { PluginInput } from '../platform/plugins.js';
import type { PciDeviceDefinition, PolicyChange, PolicyDefinition } from './api.js';
import { importPlugin, PluginLoadError, resolvePluginModule, validateOptions } from './modules.js';

export { importPlugin, PluginLoadError, resolvePluginModule, validateOptions } from './modules.js';
import { layoutSpec } from './layout.js';
import { applyPolicy, policyHostFacts } from './policy.js';
import { describeVfioUserServer } from './vfio-user/client.js';

export const DEFAULT_WATCHDOG_MS = 2000;
export const DEFAULT_SOCKET_TIMEOUT_MS = 5000;

/** Loads one in-process device plug-in entry: its definition, validated options, and the layout as a spec. */
async function resolveModuleEntry(entry: Extract<PluginEntry, { module: string }>, index: number, planFile: string, problems: PlanProblem[]): Promise<PluginInput | undefined> {
  const path = `pci.plugins[${index}]`;
  const name = pluginName(entry, index);
  let url: string;
  let def: PciDeviceDefinition;
  try {
    url = resolvePluginModule(entry.module, planFile);
    def = await importPlugin(url, entry.export, 'device');
  } catch (err) {
    if (!(err instanceof HvmptError)) throw err;
    problems.push({ path: `${path}.module`, message: err.message });
    return undefined;
  }
  const options = await validateOptions(def.options, entry.options, `${path}.options`);
  if ('problems' in options) {
    problems.push(...options.problems);
    return undefined;
  }
  let spec;
  try {
    spec = layoutSpec(def.layout(options.value), name);
  } catch (err) {
    // Whatever it threw (a vendor's code may throw anything), it is this entry's problem.
    problems.push({ path: `${path}.options`, message: `${def.name}'s layout for these options: ${err instanceof Error ? err.message : String(err)}` });
    return undefined;
  }
  return {
    kind: 'module',
    path,
    name,
    at: entry.at,
    spec,
    attachment: { name, path, module: url, export: entry.export ?? 'default', options: entry.options ?? {}, watchdogMs: entry.watchdog ?? DEFAULT_WATCHDOG_MS },
    summary: `${name}: ${def.name} from ${entry.module} (${def.summary})`,
  };
}

export interface PluginLoadOptions {
  /** Connect to vfio-user servers and keep the sockets for a run (default: describe and close). */
  readonly connect?: boolean;
}

/** Every `pci.plugins` entry of a validated plan, resolved; one PlanError lists every problem by path. */
export async function loadPlanPlugins(plan: Plan, planFile: string, options: PluginLoadOptions = {}): Promise<PluginInput[]> {
  const problems: PlanProblem[] = [];
  const out: PluginInput[] = [];
  const entries = plan.pci?.plugins ?? [];
  for (const [i, entry] of entries.entries()) {
    if ('module' in entry) {
      const p = await resolveModuleEntry(entry, i, planFile, problems);
      if (p !== undefined) out.push(p);
      continue;
    }
    const path = `pci.plugins[${i}]`;
    const socket = resolve(dirname(planFile), entry.socket);
    try {
      const d = describeVfioUserServer(socket, { keep: options.connect === true, timeoutMs: entry.timeout ?? DEFAULT_SOCKET_TIMEOUT_MS });
      out.push({
        kind: 'socket',
        path,
        name: pluginName(entry, i),
        at: entry.at,
        capture: d.capture,
        description: d.description,
        ...(d.handle === undefined ? {} : { handle: d.handle }),
        summary: `${pluginName(entry, i)}: vfio-user server at ${socket} (${d.description.regions.filter((r) => r.size > 0n).length} regions, INTx ${d.description.interrupts.intx}, MSI ${d.description.interrupts.msi}, MSI-X ${d.description.interrupts.msix})`,
      });
    } catch (err) {
      if (!(err instanceof HvmptError)) throw err;
      problems.push({ path: `${path}.socket`, message: err.message });
    }
  }
  if (problems.length > 0) {
    closePluginSockets(out);
    throw new PlanError(planFile, problems);
  }
  return out;
}

/** Closes the vfio-user connections `loadPlanPlugins` kept for a run. */
export function closePluginSockets(plugins: readonly PluginInput[]): void {
  for (const p of plugins) if (p.kind === 'socket' && p.handle?.kind === 'vfio-user') closeSocketQuietly(p.handle.socket);
}


function closeSocketQuietly(fd: number): void {
  try {
    loadSys().close(fd);
  } catch {
    // Already closed.
  }
}

/** A plan made ready for composition: policies applied (with their record) and plug-ins loaded. */
export interface PreparedPlan {
  readonly plan: Plan;
  readonly changes: readonly PolicyChange[];
  readonly plugins: readonly PluginInput[];
}

/**
 * Reads a plan, applies its policies to the document as written (each in order, each seeing
 * the last's result), validates the result again, and loads its device plug-ins.
 */
export async function preparePlan(planFile: string, options: PluginLoadOptions = {}): Promise<PreparedPlan> {
  // The bounded reader every plan goes through: /dev/zero or a sparse file is refused, not read.
  const text = readInputText(planFile, 'plan');
  let doc = parseStructuredText(text, planFile);
  let plan = validate(planSchema, doc, planFile);
  const changes: PolicyChange[] = [];
  const policies = plan.policies ?? [];
  if (policies.length > 0) {
    const problems: PlanProblem[] = [];
    for (const [i, p] of policies.entries()) {
      const path = `policies[${i}]`;
      let def: PolicyDefinition;
      try {
        def = await importPlugin(resolvePluginModule(p.module, planFile), p.export, 'policy');
      } catch (err) {
        if (!(err instanceof HvmptError)) throw err;
        problems.push({ path: `${path}.module`, message: err.message });
        continue;
      }
      const o = await validateOptions(def.options, p.options, `${path}.options`);
      if ('problems' in o) {
        problems.push(...o.problems);
        continue;
      }
      try {
        const facts = policyHostFacts(validate(planSchema, doc, planFile), planFile);
        const r = applyPolicy(def, o.value, doc as Record<string, unknown>, facts);
        doc = r.doc;
        changes.push(...r.changes);
      } catch (err) {
        if (err instanceof PlanError) throw err;
        problems.push({ path, message: `${def.name} failed: ${err instanceof HvmptError ? err.detail : err instanceof Error ? err.message : String(err)}` });
      }
    }
    if (problems.length > 0) throw new PlanError(planFile, problems);
    plan = validate(planSchema, doc, `${planFile} (after its policies)`);
  }
  const plugins = await loadPlanPlugins(plan, planFile, options);
  return { plan, changes, plugins };
}
