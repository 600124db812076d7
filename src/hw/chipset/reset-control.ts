import { allOnes, type AccessSize, type PortIoHandler } from '../io.js';
import type { SystemControl } from './system.js';

export const RESET_CONTROL_PORT = 0xcf9;

const RCR_SYS_RST = 0x02;
const RCR_RST_CPU = 0x04;

/**
 * PIIX3's reset control register at 0xCF9 (a byte inside the CF8 dword, so the PCI config
 * decoder forwards byte accesses here): writing RST_CPU resets, SYS_RST choosing hard or soft,
 * both of which the monitor treats as a machine reset. Only a byte access at 0xCF9 reaches it:
 * the other bytes of 0xCF8-0xCFB read as all ones and drop writes, so an OS probing for
 * configuration mechanism #2 there (writing 0xF0 | function << 1 at 0xCF8) neither finds one
 * nor resets the machine.
 */
export class ResetControl implements PortIoHandler {
  private value = 0;

  constructor(private readonly system: SystemControl) {}

  readPort(port: number, size: AccessSize): number {
    return port === RESET_CONTROL_PORT && size === 1 ? this.value : allOnes(size);
  }

  writePort(port: number, size: AccessSize, v: number): void {
    if (port !== RESET_CONTROL_PORT || size !== 1) return;
    this.value = v & RCR_SYS_RST;
    if (v & RCR_RST_CPU) this.system.reset(`port 0xcf9 ${v & RCR_SYS_RST ? 'hard' : 'soft'} reset`);
  }
}
