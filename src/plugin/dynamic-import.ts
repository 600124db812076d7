/**
 * Where the CLI runs as a vm.Script from V8's code cache (src/cli/code-cache.ts), V8 has no
 * dynamic-import callback for the cached code: `import()` there throws. The launcher, a real
 * module, lends its own `import()` through this global, and plug-ins are imported through it.
 */
const KEY = Symbol.for('hvmpt.import');

type Importer = (specifier: string) => Promise<unknown>;

/** Makes `importer` the one plug-ins are imported with in this thread. */
export function lendImport(importer: Importer): void {
  (globalThis as Record<symbol, unknown>)[KEY] = importer;
}

/** `import(specifier)`, through the launcher's import when it lent one. */
export function dynamicImport(specifier: string): Promise<unknown> {
  const lent = (globalThis as Record<symbol, unknown>)[KEY];
  return typeof lent === 'function' ? (lent as Importer)(specifier) : import(specifier);
}
