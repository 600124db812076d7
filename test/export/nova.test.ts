import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { formatBdf } from '../../src/hw/pci/address.js';
import { run } from '../helpers/run.js';
import { EVERY_FEATURE, exportIn, P6T6, scratch } from './helpers.js';

/**
 * Nova's configuration is read by oslo.config (Debian python3-oslo.config), the library Nova
 * itself uses: the options are declared as nova/conf/pci.py declares them (MultiStrOpt in group
 * [pci]) and the exported file is parsed by it; each value is then read as the JSON Nova's
 * documented forms say (device_spec: vendor_id, product_id, address; alias: name, vendor_id,
 * product_id, device_type, numa_policy).
 */

const work = scratch('hvmpt-nova-');
const PYTHON = '/usr/bin/python3';
const PARSE = `
import json, sys
from oslo_config import cfg
conf = cfg.ConfigOpts()
group = cfg.OptGroup(name='pci')
conf.register_group(group)
conf.register_opts([cfg.MultiStrOpt('alias', default=[]), cfg.MultiStrOpt('device_spec', default=[])], group=group)
conf(args=[], default_config_files=[sys.argv[1]])
print(json.dumps({'alias': [json.loads(a) for a in conf.pci.alias], 'device_spec': [json.loads(d) for d in conf.pci.device_spec]}))
`;

function haveOslo(t: TestContext): boolean {
  if (existsSync(PYTHON) && run(PYTHON, ['-c', 'import oslo_config']).status === 0) return true;
  const why = `SKIPPED (no oslo.config for ${PYTHON}; install Debian package python3-oslo.config or run scripts/setup.sh): ${t.name}`;
  process.stdout.write(why + '\n');
  t.skip(why);
  return false;
}

interface NovaConf {
  alias: Array<Record<string, string>>;
  device_spec: Array<Record<string, string>>;
}

function parseNova(name: string, text: string): NovaConf {
  const file = join(work, `${name}.conf`);
  writeFileSync(file, text);
  const script = join(work, 'parse.py');
  writeFileSync(script, PARSE);
  const r = run(PYTHON, [script, file]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as NovaConf;
}

test('nova: oslo.config reads back one device_spec and one alias per pass-through entry, with the plan\'s devices', (t) => {
  if (!haveOslo(t)) return;
  const e = exportIn(EVERY_FEATURE, 'nova', { host: P6T6 });
  const conf = parseNova('every-feature', e.text);
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  assert.deepEqual(
    conf.device_spec,
    e.model.passthrough.map((p) => ({ vendor_id: hex(p.hostIds!.vendorId), product_id: hex(p.hostIds!.deviceId), address: formatBdf(p.hostBdf!, true) })),
  );
  assert.deepEqual(
    conf.alias,
    e.model.passthrough.map((p) => ({ name: p.placement.name, vendor_id: hex(p.hostIds!.vendorId), product_id: hex(p.hostIds!.deviceId), device_type: 'type-PCI', numa_policy: 'legacy' })),
  );
  // Every key is one nova/conf/pci.py documents, every value in its documented range.
  for (const a of conf.alias) {
    assert.deepEqual(Object.keys(a).filter((k) => !['name', 'product_id', 'vendor_id', 'device_type', 'numa_policy', 'resource_class', 'traits'].includes(k)), []);
    assert.ok(['type-PCI', 'type-PF', 'type-VF'].includes(a.device_type!));
    assert.ok(['legacy', 'preferred', 'required', 'socket'].includes(a.numa_policy!));
    assert.match(a.vendor_id!, /^[0-9a-f]{4}$/);
  }
  for (const d of conf.device_spec) assert.match(d.address!, /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/);
});

test('nova: the flavor has the plan\'s RAM and vCPUs (one socket of N cores, hw:cpu_*) and asks for each alias once, in the form pci_passthrough:alias=NAME:COUNT,…', () => {
  const e = exportIn(EVERY_FEATURE, 'nova', { host: P6T6 });
  const line = e.text.split('\n').find((l) => l.includes('--property pci_passthrough:alias='));
  assert.ok(line !== undefined);
  const value = /pci_passthrough:alias=(\S+)$/.exec(line)![1]!;
  const requests = value.split(',').map((r) => r.split(':'));
  assert.deepEqual(requests, e.model.passthrough.map((p) => [p.placement.name, '1']));
  assert.match(e.text, /openstack flavor create --ram 256 --vcpus 2 --disk 0 every-feature\n#   openstack flavor set every-feature --property hw:cpu_sockets=1 --property hw:cpu_cores=2 --property hw:cpu_threads=1/);
});
