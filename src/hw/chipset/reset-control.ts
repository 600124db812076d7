import type { AccessSize, PortIoHandler } from '../io.js';
import type { SystemControl } from './system.js';

export const RESET_CONTROL_PORT = 0xcf9;

const RCR_SYS_RST = 0x02;
const RCR_RST_CPU = 0x04;

/**
 * PIIX3's reset control register at 0xCF9 (a byte inside the CF8 dword, so the PCI config
 * decoder forwards byte accesses here): writing RST_CPU resets, SYS_RST choosing hard or soft,
 * both of which the monitor treats as a machine reset.
 */
export class ResetControl implements PortIoHandler {
  private value = 0;

  constructor(private readonly system: SystemControl) {}

  readPort(): number {
    return this.value;
  }

  writePort(_port: number, _size: AccessSize, v: number): void {
    this.value = v & RCR_SYS_RST;
    if (v & RCR_RST_CPU) this.system.reset(`port 0xcf9 ${v & RCR_SYS_RST ? 'hard' : 'soft'} reset`);
  }
}
