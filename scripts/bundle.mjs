#!/usr/bin/env node
// Bundles the compiled CLI into one CommonJS file, dist/hvmpt-cli.cjs, started by dist/hvmpt.mjs through
// V8's code cache (src/cli/code-cache.ts), which this script writes last; the boot vCPU's thread into another,
// dist/hvmpt-vcpu.mjs, and the other vCPUs' thread into dist/hvmpt-ap.mjs, a uio device's INTx thread into dist/hvmpt-uio-intx.mjs (koffi stays a
// package: it loads its native library by path). One file instead of ~200 modules is what makes hvmpt start fast where every file access and every
// module link is slow: in a lab host under TCG, over 9p (docs/lab.md).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * zod's classic and core entries re-export every locale (`z.locales`, ~390 KB, a sixth of the bundle),
 * all parsed and evaluated at each start; hvmpt uses none but English, which zod's schemas
 * import on their own. The namespace is bundled empty.
 */
const noZodLocales = {
  name: 'no-zod-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => (/[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'hvmpt-empty' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'hvmpt-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

const common = {
  plugins: [noZodLocales],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS packages in the bundle (commander) call require() for node's own modules.
  banner: { js: "import { createRequire as __hvmptCreateRequire } from 'node:module'; const require = __hvmptCreateRequire(import.meta.url);" },
  define: { HVMPT_WORKER_FILE: '"./hvmpt-vcpu.mjs"', HVMPT_AP_WORKER_FILE: '"./hvmpt-ap.mjs"', HVMPT_UIO_WORKER_FILE: '"./hvmpt-uio-intx.mjs"' },
};
await Promise.all([
  build({ ...common, entryPoints: ['dist/src/cli/launcher.js'], outfile: 'dist/hvmpt.mjs' }),
  build({
    ...common,
    entryPoints: ['dist/src/cli/bin.js'],
    outfile: 'dist/hvmpt-cli.cjs',
    format: 'cjs',
    banner: {},
    define: { ...common.define, 'import.meta': '__hvmptImportMeta' },
  }),
  build({ ...common, entryPoints: ['dist/src/vmm/worker.js'], outfile: 'dist/hvmpt-vcpu.mjs' }),
  build({ ...common, entryPoints: ['dist/src/vmm/ap-worker.js'], outfile: 'dist/hvmpt-ap.mjs' }),
  build({ ...common, entryPoints: ['dist/src/host/uio/intx-worker.js'], outfile: 'dist/hvmpt-uio-intx.mjs' }),
]);

// The cache holds what V8 compiled by the end of one command that plans and composes a platform
// as `hvmpt run` does before its machine starts: the path whose start the lab waits for.
const cache = 'dist/hvmpt-cli.cache';
rmSync(cache, { force: true });
const scratch = mkdtempSync(join(tmpdir(), 'hvmpt-cache-'));
const trained = spawnSync(process.execPath, ['dist/hvmpt.mjs', 'report', 'examples/desktop.yaml', '--out', join(scratch, 'report.html')], {
  env: { ...process.env, HVMPT_CODE_CACHE: 'write' },
  encoding: 'utf8',
});
rmSync(scratch, { recursive: true, force: true });
if (!existsSync(cache)) {
  process.stderr.write(`bundle: the code cache was not written (hvmpt report exited ${trained.status}): hvmpt starts without it\n${trained.stderr}`);
} else if (trained.status !== 0) {
  process.stderr.write(`bundle: the code cache was written from an hvmpt report that exited ${trained.status}, so it may lack the plan's path\n${trained.stderr}`);
}
