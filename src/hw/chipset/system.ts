/**
 * What chipset models ask of the machine around them: reset, power-off. Requests are recorded
 * by the monitor and acted on after the access that made them, so a model never blocks.
 */
export interface SystemControl {
  reset(source: string): void;
  powerOff(source: string): void;
}
