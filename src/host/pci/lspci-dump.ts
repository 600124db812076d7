import { formatBdf, parseBdf, sameBdf, type Bdf } from '../../hw/pci/address.js';
import { PciDumpError } from '../../hw/pci/errors.js';
import type { Capture, CapturedFunction } from '../../hw/pci/capture.js';

/**
 * Reads `lspci -x`, `-xxx` and `-xxxx` output (with or without `-v` text and domains), the
 * format `lspci -F` reads. Line rules follow pciutils' dump reader: a device line starts
 * with its address and a space, hex lines are `OFFSET: xx xx …`, an empty line ends the
 * device, other lines are text. From the text, `Region N: … [size=…]` and
 * `Expansion ROM at … [size=…]` give BAR sizes, which a hex dump alone does not carry.
 */
const DEVICE_LINE = /^((?:[0-9a-f]{4,5}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?: (.*))?$/i;
const HEX_LINE = /^([0-9a-f]{2,8}): (.*)$/i;
const HEX_BYTES = /^[0-9a-f]{2}(?: [0-9a-f]{2})*$/i;
const REGION = /^\s*Region ([0-5]): .*\[size=(\d+)([KMGT]?)\]/;
const ROM = /^\s*(?:\[virtual\] )?Expansion ROM at .*\[size=(\d+)([KMGT]?)\]/;

const UNIT: Record<string, bigint> = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n };

/** At least the standard header must be there: everything hvmpt composes starts from it. */
const MIN_CAPTURE = 0x40;
const MAX_CONFIG = 0x1000;

/** What lspci prints: -x, -xxx, -xxxx. Anything else was cut (pciutils reads it all the same). */
const LSPCI_LENGTHS = new Set([0x40, 0x100, MAX_CONFIG]);

interface Building {
  bdf: Bdf;
  description: string;
  line: number;
  /** The last hex line read for it. */
  lastLine: number;
  data: Uint8Array;
  length: number;
  barSizes: Map<number, bigint>;
}

export function parseLspciDump(text: string, source: string): Capture {
  const lines = text.split('\n');
  const done: Building[] = [];
  let current: Building | undefined;
  let withDomains = false;
  const fail = (line: number, message: string): never => {
    throw new PciDumpError(message, { input: source, at: `line ${line}` });
  };

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.replace(/\r$/, '');
    if (line.length > 4096) fail(n, `line of ${line.length} characters: not an lspci dump`);
    const dev = DEVICE_LINE.exec(line);
    if (dev !== null) {
      const bdf = parseBdf(dev[1]!);
      if (bdf === undefined) fail(n, `bad device address ${dev[1]}`);
      if (dev[1]!.split(':').length === 3) withDomains = true;
      current = { bdf: bdf!, description: dev[2] ?? '', line: n, lastLine: n, data: new Uint8Array(MAX_CONFIG).fill(0xff), length: 0, barSizes: new Map() };
      const dup = done.find((d) => sameBdf(d.bdf, bdf!));
      if (dup !== undefined) fail(n, `function ${formatBdf(bdf!, true)} appears twice (first at line ${dup.line})`);
      done.push(current);
      continue;
    }
    if (line.trim() === '') {
      current = undefined;
      continue;
    }
    if (current === undefined) continue; // text outside any device, as pciutils ignores it
    const hex = HEX_LINE.exec(line);
    if (hex !== null) {
      const offset = parseInt(hex[1]!, 16);
      const bytes = hex[2]!.trimEnd();
      if (!HEX_BYTES.test(bytes)) fail(n, `malformed hex line: expected "${hex[1]}: " and bytes like "8f 00 1a"`);
      const values = bytes.split(' ').map((b) => parseInt(b, 16));
      if (offset + values.length > MAX_CONFIG) fail(n, `offset 0x${(offset + values.length - 1).toString(16)} is past the 4096 bytes of config space`);
      current.data.set(values, offset);
      current.length = Math.max(current.length, offset + values.length);
      current.lastLine = n;
      continue;
    }
    const region = REGION.exec(line);
    if (region !== null) current.barSizes.set(Number(region[1]), BigInt(region[2]!) * UNIT[region[3]!]!);
    const rom = ROM.exec(line);
    if (rom !== null) current.barSizes.set(6, BigInt(rom[1]!) * UNIT[rom[2]!]!);
  }

  if (done.length === 0) {
    throw new PciDumpError('no PCI functions found: expected the output of lspci -x, -xxx or -xxxx', { input: source });
  }
  const functions: CapturedFunction[] = done.map((d) => {
    if (d.length < MIN_CAPTURE) {
      fail(d.line, `${formatBdf(d.bdf, withDomains)} has ${d.length} bytes of config space; at least the 64-byte header is needed (lspci -x)`);
    }
    return { bdf: d.bdf, bytes: d.data.slice(0, d.length), barSizes: d.barSizes, description: d.description, at: `line ${d.line}` };
  });
  const warnings = done
    .filter((d) => !LSPCI_LENGTHS.has(d.length))
    .map((d) => `line ${d.lastLine}: ${formatBdf(d.bdf, withDomains)} has ${d.length} bytes of config space, not the 64, 256 or 4096 lspci prints: the dump may be cut short here`);
  return { source, functions, withDomains, ...(warnings.length > 0 ? { warnings } : {}) };
}
