import { HvmptError, UsageError } from '../../errors.js';

/** Anything that kept a lab from running its command. */
export class LabError extends HvmptError {}

/** A device the lab cannot give: an image it cannot read, a device sysfs does not show where it was placed. */
export class LabDeviceError extends LabError {}

/**
 * A `--device` spec that is wrong as written: an unknown model, a bad KEY=VALUE, a placement
 * that does not fit. A usage error (exit 2), as for any other option's value.
 */
export class LabSpecError extends UsageError {}

/**
 * The lab host did not come up: QEMU missing or refusing its arguments, the kernel stopping,
 * the host root not mounting. `console` holds what the lab host printed.
 */
export class LabBootError extends LabError {
  readonly console: string;
  constructor(message: string, console: string, where: { input?: string; at?: string } = { input: 'lab host' }) {
    super(message, where);
    this.console = console;
  }
}

/** The command ran past `--timeout`. */
export class LabTimeoutError extends LabError {}
