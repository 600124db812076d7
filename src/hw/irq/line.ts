/**
 * Interrupt lines as device models see them. A model raises and lowers a line; what the line
 * drives (an in-kernel PIC/IOAPIC pin through KVM_IRQ_LINE, a PIRQ router, a test's probe) is
 * wired in by whoever builds the machine.
 */
export interface IrqLine {
  set(level: boolean): void;
}

/** Edge-triggered ISA sources (UART, i8042) signal by a rising edge: raise, then lower. */
export function pulse(line: IrqLine): void {
  line.set(true);
  line.set(false);
}

/** Where GSIs end up: the monitor implements it with KVM_IRQ_LINE; tests record calls. */
export interface GsiSink {
  setGsi(gsi: number, level: boolean): void;
}

export function gsiLine(sink: GsiSink, gsi: number): IrqLine {
  return { set: (level) => sink.setGsi(gsi, level) };
}

/** A line nobody listens to (a device whose interrupt the plan does not wire). */
export const NO_LINE: IrqLine = { set: () => {} };
