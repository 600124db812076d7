import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIommuFault } from '../../src/host/iommu-faults.js';

/** The kernel's IOMMU fault lines as drivers/iommu/intel/dmar.c and amd/iommu.c have printed them across versions. */
test('IOMMU fault lines: Intel VT-d (6.x NO_PASID, 5.x with PASID, 4.x) and AMD-Vi (with and without segment); other lines are none', () => {
  assert.deepEqual(parseIommuFault('DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x30000000 [fault reason 0x05] PTE Write access is not set'), {
    device: '0000:00:02.0', access: 'write', address: 0x3000_0000n, reason: 'PTE Write access is not set',
  });
  assert.deepEqual(parseIommuFault('DMAR: [DMA Read] Request device [03:00.1] PASID ffffffff fault addr 7ffff000 [fault reason 06] PTE Read access is not set'), {
    device: '0000:03:00.1', access: 'read', address: 0x7fff_f000n, reason: 'PTE Read access is not set',
  });
  assert.equal(parseIommuFault('DMAR: [DMA Read] Request device [0a:1f.7] fault addr 1000 [fault reason 02] Present bit in context entry is clear')?.device, '0000:0a:1f.7');
  assert.deepEqual(parseIommuFault('AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:00:05.0 domain=0x000b address=0x30000000 flags=0x0030]'), {
    device: '0000:00:05.0', access: 'write', address: 0x3000_0000n, reason: 'IO page fault',
  });
  assert.equal(parseIommuFault('AMD-Vi: Event logged [IO_PAGE_FAULT device=00:05.0 domain=0x000b address=0x1000 flags=0x0010]')?.access, 'read');
  assert.equal(parseIommuFault('DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x0 [fault reason 0x25] Blocked a compatibility format interrupt request'), undefined);
  assert.equal(parseIommuFault('e1000e 0000:00:02.0 eth0: NIC Link is Up 1000 Mbps Full Duplex'), undefined);
});
