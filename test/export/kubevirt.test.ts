import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { V1KubeVirtFromJSON, V1KubeVirtToJSON, V1VirtualMachineFromJSON, V1VirtualMachineToJSON } from '@kubevirt-ui-ext/kubevirt-api/kubevirt';
import { DESKTOP, EVERY_FEATURE, exportIn, P6T6 } from './helpers.js';

/**
 * KubeVirt's own OpenAPI types (npm @kubevirt-ui-ext/kubevirt-api, generated from KubeVirt's
 * API) are the oracle: read with V1VirtualMachineFromJSON and written back with ToJSON, a
 * manifest comes back unchanged only when every field in it is one KubeVirt knows. The CR
 * snippet gets the same check against the KubeVirt type.
 */

function documents(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, []);
  return docs.map((d) => d.toJS() as unknown);
}

/** JSON.parse(JSON.stringify(x)): drops the undefined members ToJSON writes for absent fields. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

test('kubevirt: the VirtualMachine and the KubeVirt CR snippet come back unchanged through KubeVirt\'s types', () => {
  for (const [plan, host] of [[EVERY_FEATURE, P6T6], [DESKTOP, undefined]] as const) {
    const [vm, cr] = documents(exportIn(plan, 'kubevirt', host === undefined ? {} : { host }).text);
    assert.deepEqual(plain(V1VirtualMachineToJSON(V1VirtualMachineFromJSON(vm))), vm);
    assert.deepEqual(plain(V1KubeVirtToJSON(V1KubeVirtFromJSON(cr))), cr);
  }
});

test('kubevirt: the round trip is an oracle that can fail: a field KubeVirt does not know is lost', () => {
  const [vm] = documents(exportIn(EVERY_FEATURE, 'kubevirt', { host: P6T6 }).text) as Array<{ spec: { template: { spec: { domain: { devices: { hostDevices: Array<Record<string, unknown>> } } } } } }>;
  vm!.spec.template.spec.domain.devices.hostDevices[0]!.pciAddress = '0000:00:07.0';
  assert.notDeepEqual(plain(V1VirtualMachineToJSON(V1VirtualMachineFromJSON(vm))), vm);
});

test('kubevirt: every pass-through entry is asked for by resource name, and the CR permits that vendor:device under that name', () => {
  const e = exportIn(EVERY_FEATURE, 'kubevirt', { host: P6T6 });
  const [vmDoc, crDoc] = documents(e.text);
  const vm = V1VirtualMachineFromJSON(vmDoc);
  const kv = V1KubeVirtFromJSON(crDoc);
  const asked = vm.spec!.template.spec!.domain.devices.hostDevices!.map((h) => [h.name, h.deviceName]);
  assert.deepEqual(
    asked,
    e.model.passthrough.map((p) => [p.placement.name, `hvmpt.io/${p.hostIds!.vendorId.toString(16).padStart(4, '0')}_${p.hostIds!.deviceId.toString(16).padStart(4, '0')}`]),
  );
  const permitted = kv.spec._configuration!.permittedHostDevices!.pciHostDevices!;
  for (const [, resource] of asked) {
    const p = permitted.find((x) => x.resourceName === resource);
    assert.ok(p !== undefined, `${resource} is not permitted`);
    assert.equal(p.pciVendorSelector.toLowerCase(), resource!.slice('hvmpt.io/'.length).replace('_', ':'));
  }
  assert.equal(vm.spec!.template.spec!.domain.memory!.guest, '256Mi');
  assert.equal(vm.spec!.template.spec!.domain.firmware!.uuid, '68766d70-0000-4000-8000-0000000000ff');
});
