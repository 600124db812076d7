#!/usr/bin/env node
// dist/hvmpt.mjs: runs the CLI bundle through V8's code cache (code-cache.ts). The bundle's
// import.meta.resolve and import() are this module's, which sits beside it in dist/.
import { launchCli } from './code-cache.js';

launchCli(
  import.meta.url,
  (specifier) => import.meta.resolve(specifier),
  (specifier) => import(specifier),
);
