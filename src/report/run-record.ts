/**
 * What `hvmpt run --report FILE` records, as the report reads it back: validated at the edge
 * (the file may come from another version or be hand-edited), every field the page shows named.
 */
import { z } from 'zod';

const mapping = z.object({ address: z.string(), size: z.string() }).nullable();

export const runRecordSchema = z.looseObject({
  reason: z.looseObject({ kind: z.string() }),
  boots: z.number().optional(),
  wallMs: z.number().optional(),
  exits: z.number().optional(),
  unclaimed: z.array(z.string()).default([]),
  deviceFaults: z.array(z.object({ device: z.string(), message: z.string() })).default([]),
  iommuFaults: z.array(z.object({ device: z.string(), access: z.string(), address: z.string(), reason: z.string() })).default([]),
  fwCfgRefusals: z.array(z.string()).default([]),
  romWritesRefused: z.number().optional(),
  barMappings: z
    .array(
      z.looseObject({
        device: z.string(),
        bdf: z.string(),
        bar: z.union([z.number(), z.literal('rom')]),
        kind: z.string(),
        old: mapping,
        new: mapping,
        action: z.string(),
        detail: z.string().optional(),
        window: z.string().optional(),
      }),
    )
    .default([]),
});

export type RunRecord = z.output<typeof runRecordSchema>;

/** One line for why the run ended. */
export function describeEnd(r: RunRecord): string {
  const reason = r.reason as Record<string, unknown>;
  const extra = ['source', 'why', 'message', 'code', 'state'].map((k) => reason[k]).find((v) => v !== undefined);
  return `${r.reason.kind}${extra === undefined ? '' : ` (${String(extra)})`}`;
}
