import type { Bdf } from './address.js';

/** One function's config space as some tool captured it. */
export interface CapturedFunction {
  readonly bdf: Bdf;
  /** The captured bytes; their count is what was captured (64, 256, 4096, or what a dump held). */
  readonly bytes: Uint8Array;
  /** BAR sizes the capture recorded (index 6 = expansion ROM): `[size=…]` in `lspci -v`, sysfs `resource`. */
  readonly barSizes: ReadonlyMap<number, bigint>;
  /** The capture's own words for the function (lspci's description line), for reports. */
  readonly description: string;
  /** Where in the input it was: `line 12`, or a sysfs path. */
  readonly at: string;
}

/** A captured machine (or one device): every function a dump or a sysfs tree held. */
export interface Capture {
  /** The file or directory it came from. */
  readonly source: string;
  readonly functions: readonly CapturedFunction[];
  /** The dump wrote domains (`0000:00:1f.3`): the mirror writes them back the same way. */
  readonly withDomains: boolean;
  /** What the reader accepted but doubts, each naming its place (`line 40: … may be cut short`). */
  readonly warnings?: readonly string[];
}
