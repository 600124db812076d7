import type { GsiRoute, Vm } from './kvm/vm.js';
import { defaultPcRouting } from './kvm/vm.js';

/** GSIs below this are the IOAPIC's pins; MSI routes take the numbers above. */
const FIRST_MSI_GSI = 24;
/** KVM's default routing table holds at most 4096 entries; ours stays far below. */
const MAX_GSI = 1024;

/**
 * The VM's GSI routing: the PC's irqchip routes plus one MSI route per vector in use. KVM
 * replaces the whole table on each change, so changes are batched and committed together
 * (one ioctl per guest reprogramming, not per vector).
 */
export class MsiRoutes {
  private readonly msi = new Map<number, { address: bigint; data: number }>();
  private readonly free: number[] = [];
  private next = FIRST_MSI_GSI;
  private dirty = false;

  constructor(private readonly vm: Vm) {}

  allocate(): number {
    const gsi = this.free.pop() ?? this.next++;
    if (gsi >= MAX_GSI) throw new RangeError(`out of GSIs for MSI (${MAX_GSI - FIRST_MSI_GSI} in use)`);
    return gsi;
  }

  release(gsi: number): void {
    if (this.msi.delete(gsi)) this.dirty = true;
    this.free.push(gsi);
  }

  /** Routes `gsi` to an MSI message (a fixed GSI of the caller's own choosing is taken as is). */
  set(gsi: number, address: bigint, data: number): void {
    const have = this.msi.get(gsi);
    if (have !== undefined && have.address === address && have.data === data) return;
    this.msi.set(gsi, { address, data });
    if (gsi >= this.next) this.next = gsi + 1;
    this.dirty = true;
  }

  /** GSIs held for MSI now (allocated and not released). */
  get inUse(): number {
    return this.next - FIRST_MSI_GSI - this.free.length;
  }

  /** Installs the table if anything changed since the last commit. */
  commit(): void {
    if (!this.dirty) return;
    const routes: GsiRoute[] = [...defaultPcRouting()];
    for (const [gsi, m] of this.msi) routes.push({ kind: 'msi', gsi, address: m.address, data: m.data });
    this.vm.setGsiRouting(routes);
    this.dirty = false;
  }

  /** Installs the PC's routing even with no MSI in use (GSI 0 on IOAPIC pin 2, as the MADT says). */
  install(): void {
    this.dirty = true;
    this.commit();
  }
}
