import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { loadSys } from '../native/index.js';
import { PlanError } from '../plan/load.js';
import { importPlugin, resolvePluginModule, validateOptions } from '../plugin/modules.js';
import { DEFAULT_SERVE_WATCHDOG_MS, serveDevice } from '../plugin/vfio-user/server.js';

interface ServeOptions {
  socket: string;
  options?: string;
  export?: string;
  name: string;
  watchdog: string;
}

export function registerServeDevice(program: Command): void {
  program
    .command('serve-device')
    .summary('serve a device plug-in as a vfio-user server (QEMU, cloud-hypervisor and hvmpt run connect to it)')
    .description(
      'loads a device plug-in (docs/plugins.md) and serves it on a UNIX socket with the vfio-user protocol ' +
        "(QEMU's docs/interop/vfio-user.rst): version negotiation, device, region and IRQ info, SET_IRQS with eventfds, " +
        'region reads and writes, DMA maps (mmap\'ed when the client sends fds, else DMA_READ/DMA_WRITE), reset. ' +
        'One client at a time; runs until it is stopped. A plug-in call that runs past --watchdog fails the device (all ones from then on) and the server goes on. A plan uses it with pci.plugins: [{ socket: PATH, at: SLOT }].',
    )
    .argument('<plugin-module>', 'the plug-in: a file (relative to the current directory) or a package name')
    .requiredOption('--socket <PATH>', 'the UNIX socket to listen on (replaced if it exists)')
    .option('--options <JSON>', "the plug-in's options, as JSON", '{}')
    .option('--export <NAME>', 'the export holding the definition (default: the default export)')
    .option('--name <NAME>', 'the device\'s name in messages', 'device')
    .option('--watchdog <MS>', 'ms one call into the plug-in may run before the device is failed', String(DEFAULT_SERVE_WATCHDOG_MS))
    .action(async (moduleSpec: string, o: ServeOptions) => {
      const watchdogMs = Number(o.watchdog);
      if (!Number.isInteger(watchdogMs) || watchdogMs < 1) throw new UsageError(`--watchdog ${o.watchdog}: a whole number of ms, 1 or more`);
      let raw: unknown;
      try {
        raw = JSON.parse(o.options ?? '{}');
      } catch (err) {
        throw new UsageError(`--options is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      // A file that exists is the plug-in, as a shell user means it (examples/plugins/edu.js); anything else a module specifier.
      const spec = existsSync(moduleSpec) && statSync(moduleSpec).isFile() ? resolve(moduleSpec) : moduleSpec;
      const def = await importPlugin(resolvePluginModule(spec, resolve('serve-device')), o.export, 'device');
      const v = await validateOptions(def.options, raw, 'options');
      if ('problems' in v) throw new PlanError('--options', v.problems);
      serveDevice(loadSys(), {
        socket: resolve(o.socket),
        definition: def,
        options: v.value,
        name: o.name,
        watchdogMs,
        log: (line) => process.stderr.write(`hvmpt serve-device: ${line}\n`),
      });
    });
}
