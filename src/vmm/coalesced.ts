/**
 * KVM's coalesced-write ring (struct kvm_coalesced_mmio_ring): guest writes to a registered
 * zone are queued in a page every vCPU's mmap shares, with no exit, and the monitor applies
 * them in order before it serves anything else. hvmpt queues the CF8 address latch this way,
 * as QEMU's i440FX host asks KVM to: a config-space access then costs one exit (the data port)
 * instead of two. Under nesting every exit to user space is a trip through two
 * hypervisors, and uio_pci_generic alone makes four config accesses per interrupt.
 */
import { COALESCED_ENTRY, COALESCED_RING, SIZE } from './kvm/abi.js';
import { writeGuestBytes, type MmioBus, type PortBus } from './io-bus.js';

/** The ring's page: x86's 4 KiB (KVM_COALESCED_MMIO_MAX is counted from PAGE_SIZE). */
export const RING_PAGE = 4096;

export class CoalescedRing {
  /** Entries the ring holds (KVM_COALESCED_MMIO_MAX: what fits in its page after the header). */
  readonly capacity: number;
  /** Writes applied from the ring, over the run. */
  applied = 0;

  /** `page`: the ring's page of the vCPU mmap (at the offset KVM_CAP_COALESCED_MMIO answers). */
  constructor(private readonly page: DataView) {
    this.capacity = Math.floor((page.byteLength - SIZE.coalescedRingHeader) / SIZE.coalescedEntry);
  }

  /**
   * Applies every queued write, oldest first, freeing each slot as it goes (KVM exits as usual
   * once the ring is full). Called before any exit is served: a write queued before an access
   * must land before it, whichever vCPU made either.
   */
  drain(ports: PortBus, mmio: MmioBus): void {
    const v = this.page;
    let first = v.getUint32(COALESCED_RING.first, true);
    if (first === v.getUint32(COALESCED_RING.last, true)) return;
    do {
      const e = SIZE.coalescedRingHeader + first * SIZE.coalescedEntry;
      const address = v.getUint32(e + COALESCED_ENTRY.physAddr, true) + v.getUint32(e + COALESCED_ENTRY.physAddr + 4, true) * 0x1_0000_0000;
      const len = v.getUint32(e + COALESCED_ENTRY.len, true);
      const pio = v.getUint32(e + COALESCED_ENTRY.pio, true) !== 0;
      writeGuestBytes(pio ? ports : mmio, address, len, v, e + COALESCED_ENTRY.data);
      this.applied++;
      first = (first + 1) % this.capacity;
      // KVM reads `first` to find room; the slot is free once the write has been applied.
      v.setUint32(COALESCED_RING.first, first, true);
    } while (first !== v.getUint32(COALESCED_RING.last, true));
  }
}
