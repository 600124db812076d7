/**
 * Plug-in modules: found by specifier, imported, checked to be what the plan says they are,
 * their options validated by their own schema. Used by the main thread (src/plugin/load.ts)
 * and by the vCPU thread, which loads the same modules itself (it never receives a copy).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HvmptError } from '../errors.js';
import { formatPath } from '../util/format.js';
import { dynamicImport } from './dynamic-import.js';
import { isPciDeviceDefinition, isPolicyDefinition, PLUGIN_API_VERSION, type OptionsSchema, type PciDeviceDefinition, type PolicyDefinition } from './api.js';

/** A problem with a plug-in's options, by plan path. */
export interface OptionProblem {
  readonly path: string;
  readonly message: string;
}

/** A plug-in module that cannot be found, loaded or is not a plug-in. */
export class PluginLoadError extends HvmptError {}

/**
 * A specifier as a plan writes it, to a file URL: `./x.js` and `../x.js` relative to the plan
 * file, absolute paths as they are, anything else a package found in node_modules beside the
 * plan or above it (its `exports` "." entry for import, else `main`, else index.js).
 */
export function resolvePluginModule(specifier: string, planFile: string): string {
  if (specifier.startsWith('file:')) return specifier;
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier)) {
    const file = resolve(dirname(planFile), specifier);
    if (!existsSync(file)) throw new PluginLoadError(`no such file: ${file}`, { input: specifier });
    return pathToFileURL(file).href;
  }
  try {
    return pathToFileURL(createRequire(resolve(planFile)).resolve(specifier)).href;
  } catch {
    // ESM-only packages export no "require" condition: look them up the way import does.
  }
  const m = /^((?:@[^/]+\/)?[^/]+)(\/.*)?$/.exec(specifier);
  if (m === null) throw new PluginLoadError('not a module specifier', { input: specifier });
  const [, pkg, sub] = m;
  for (let dir = dirname(resolve(planFile)); ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', pkg!);
    if (existsSync(join(root, 'package.json'))) return pathToFileURL(packageEntry(root, sub === undefined ? '.' : `.${sub}`, specifier)).href;
    if (dirname(dir) === dir) break;
  }
  throw new PluginLoadError(`no package ${pkg} in node_modules beside the plan or above it`, { input: specifier });
}

function packageEntry(root: string, subpath: string, specifier: string): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports?: unknown; main?: string };
  const pick = (e: unknown): string | undefined => {
    if (typeof e === 'string') return e;
    if (typeof e === 'object' && e !== null) {
      const o = e as Record<string, unknown>;
      for (const k of ['import', 'node', 'default']) {
        const v = pick(o[k]);
        if (v !== undefined) return v;
      }
    }
    return undefined;
  };
  let target: string | undefined;
  if (pkg.exports !== undefined) {
    const ex = pkg.exports;
    const entry = typeof ex === 'object' && ex !== null && Object.keys(ex).some((k) => k.startsWith('.')) ? (ex as Record<string, unknown>)[subpath] : subpath === '.' ? ex : undefined;
    target = pick(entry);
    if (target === undefined) throw new PluginLoadError(`the package exports no ${subpath} for import`, { input: specifier });
  } else target = subpath === '.' ? (pkg.main ?? 'index.js') : subpath;
  const file = join(root, target);
  if (!existsSync(file) || !statSync(file).isFile()) throw new PluginLoadError(`the package's entry ${file} does not exist`, { input: specifier });
  return file;
}

/**
 * A module resolution hook: a plug-in's `import ... from 'hvmpt'` that node cannot resolve
 * from where the plug-in lives (a file beside a plan, hvmpt installed elsewhere) gets the
 * hvmpt that is loading it. One the plug-in can resolve (its own dependency) is left alone,
 * so the API version check sees the version it was really built with. A data: URL, because
 * the bundled CLI has no hooks file beside it.
 */
const HOOKS = `let entry;
export function initialize(data) { entry = data.entry; }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (specifier === 'hvmpt' && err?.code === 'ERR_MODULE_NOT_FOUND') return { url: entry, shortCircuit: true };
    throw err;
  }
}`;
let hooked = false;

/** Registers the hook in this thread (node 20's hooks do not reach worker threads: the vCPU thread calls this too). */
function letPluginsImportHvmpt(): void {
  if (hooked) return;
  hooked = true;
  let entry: string;
  try {
    entry = import.meta.resolve('hvmpt');
  } catch {
    // Not inside the hvmpt package (a test harness importing the sources): nothing to point to.
    return;
  }
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, { data: { entry } });
}

/** Imports `url` and returns its export `name` (default: the default export), checked to be a plug-in of `kind`. */
export async function importPlugin<K extends 'device' | 'policy'>(url: string, name: string | undefined, kind: K): Promise<K extends 'device' ? PciDeviceDefinition : PolicyDefinition> {
  letPluginsImportHvmpt();
  let mod: Record<string, unknown>;
  try {
    mod = (await dynamicImport(url)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginLoadError(`cannot load: ${err instanceof Error ? err.message : String(err)}`, { input: url });
  }
  const key = name ?? 'default';
  const def = mod[key];
  const ok = kind === 'device' ? isPciDeviceDefinition(def) : isPolicyDefinition(def);
  if (!ok) {
    const what = kind === 'device' ? 'a device plug-in (definePciDevice)' : 'a policy plug-in (definePolicy)';
    throw new PluginLoadError(`its ${key === 'default' ? 'default export' : `export ${key}`} is not ${what}`, { input: url });
  }
  const d = def as PciDeviceDefinition | PolicyDefinition;
  const version = apiVersionProblem(d.apiVersion);
  if (version !== undefined) throw new PluginLoadError(version, { input: url });
  const missing = definitionProblems(d as unknown as Record<string, unknown>, kind);
  if (missing.length > 0) throw new PluginLoadError(`its ${key === 'default' ? 'default export' : `export ${key}`} is not a complete ${kind === 'device' ? 'device' : 'policy'} plug-in: ${missing.join('; ')}`, { input: url });
  return d as K extends 'device' ? PciDeviceDefinition : PolicyDefinition;
}

/**
 * The API version check (docs/plugins.md, "Stability and versions"): a definition carries the
 * version of the `hvmpt` it was built with; this hvmpt runs only its own.
 */
export function apiVersionProblem(version: unknown): string | undefined {
  if (version === PLUGIN_API_VERSION) return undefined;
  if (typeof version !== 'number' || !Number.isInteger(version)) return `it carries no plug-in API version (make it with definePciDevice or definePolicy from 'hvmpt')`;
  if (version > PLUGIN_API_VERSION) return `written for plug-in API ${version}, newer than this hvmpt's (${PLUGIN_API_VERSION}): use an hvmpt that speaks API ${version}`;
  return `written for plug-in API ${version}, which this hvmpt (API ${PLUGIN_API_VERSION}) no longer runs: rebuild it against this hvmpt`;
}

/** What a hand-made (or mangled) definition lacks: each member hvmpt will call or read. */
function definitionProblems(d: Record<string, unknown>, kind: 'device' | 'policy'): string[] {
  const problems: string[] = [];
  for (const k of ['name', 'summary']) if (typeof d[k] !== 'string' || d[k] === '') problems.push(`${k} is not a non-empty string`);
  const o = d['options'] as { '~standard'?: { validate?: unknown } } | undefined;
  if (typeof o !== 'object' || o === null || typeof o['~standard']?.validate !== 'function') problems.push('options is not a Standard Schema (z.strictObject({ ... }), say)');
  for (const k of kind === 'device' ? ['layout', 'create'] : ['apply']) if (typeof d[k] !== 'function') problems.push(`${k} is not a function`);
  return problems;
}

/** Validates options with the plug-in's schema; problems carry `path` (the plan's `…options`) before each issue's own path. */
export async function validateOptions<O>(schema: OptionsSchema<O>, raw: unknown, path: string): Promise<{ value: O } | { problems: OptionProblem[] }> {
  let result: Awaited<ReturnType<OptionsSchema<O>['~standard']['validate']>>;
  try {
    result = await schema['~standard'].validate(raw ?? {});
  } catch (err) {
    return { problems: [{ path, message: `the plug-in's options schema threw: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  if (typeof result !== 'object' || result === null) return { problems: [{ path, message: 'the plug-in\'s options schema returned no result' }] };
  if (result.issues === undefined) return { value: result.value };
  return {
    problems: result.issues.map((i) => {
      const keys = (i.path ?? []).map((k) => (typeof k === 'object' && k !== null && 'key' in k ? k.key : k));
      const suffix = formatPath(keys);
      return { path: suffix === '' ? path : suffix.startsWith('[') ? path + suffix : `${path}.${suffix}`, message: i.message };
    }),
  };
}

