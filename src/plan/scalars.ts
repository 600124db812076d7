import { z } from 'zod';

/** An integer that fits in `bits` bits, written as a number (YAML's 0x1F included) or a "0x…"/decimal string. */
export function uint(bits: number): z.ZodType<number> {
  return z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(v) ? Number(v.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** bits) {
      ctx.addIssue({ code: 'custom', message: `expected an integer from 0 to 0x${(2 ** bits - 1).toString(16)}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });
}
