/**
 * The `memory` section of a plan: how much RAM the guest gets, whether it is laid out 1:1
 * (identity, for pass-through without an IOMMU) or ordinarily, what the identity planner must
 * keep clear of, and what the guest sees below 1 MiB.
 *
 * ```yaml
 * memory:
 *   size: 2G
 *   layout: identity          # or: ordinary (the default)
 *   identity: { align: 2M, above: 16M, below: 4G, maxRegions: 1, hostKeep: 512M }
 *   reservations:
 *     - { start: 0x1000000, size: 64M, owner: hypervisor, name: xen heap }
 *   lowMemory: private        # or: none
 * ```
 */
import { z } from 'zod';
import type { IdentityRequest, LowMemoryPolicy, Reservation } from '../hw/mem/identity.js';
import { parseSize } from '../util/format.js';
import { loadStructuredFile } from './load.js';

const LIMIT = 1n << 64n;

/** A byte count or address: a number, or a string such as "2G", "512M", "0x7400000". */
export const sizeSchema = z.union([z.number(), z.string()]).transform((v, ctx): bigint => {
  let value: bigint | undefined;
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) value = BigInt(v);
    else ctx.addIssue({ code: 'custom', message: `${v} is not a whole number of bytes (write large values as strings such as "0x100000000" or "4G")` });
  } else {
    value = parseSize(v);
    if (value === undefined) ctx.addIssue({ code: 'custom', message: `'${v}' is not a size (examples: 4096, 0x1000, 512M, 2G)` });
  }
  if (value !== undefined && value > LIMIT) {
    ctx.addIssue({ code: 'custom', message: `${v} is beyond the 64-bit address space` });
    return 0n;
  }
  return value ?? 0n;
});

const reservationSchema = z
  .strictObject({
    start: sizeSchema,
    end: sizeSchema.optional(),
    size: sizeSchema.optional(),
    owner: z.enum(['host', 'hypervisor']).default('hypervisor'),
    name: z.string().min(1).default('reserved'),
  })
  .superRefine((r, ctx) => {
    if ((r.end === undefined) === (r.size === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of end and size' });
    const end = r.end ?? r.start + (r.size ?? 0n);
    if (end <= r.start) ctx.addIssue({ code: 'custom', message: 'the range is empty', path: [r.end !== undefined ? 'end' : 'size'] });
    if (end > LIMIT) ctx.addIssue({ code: 'custom', message: 'the range runs past the 64-bit address space' });
  });

/** The most RAM a plan gives a guest: beyond any machine hvmpt runs on, and well inside the 64-bit space its PCI windows follow. */
export const MAX_GUEST_RAM = 16n << 40n;

export const memorySectionSchema = z.strictObject({
  size: sizeSchema
    .refine((v) => v > 0n && v % 4096n === 0n, 'must be a positive multiple of 4 KiB')
    .refine((v) => v <= MAX_GUEST_RAM, 'must be at most 16T, the most guest RAM hvmpt lays out'),
  layout: z.enum(['identity', 'ordinary']).default('ordinary'),
  identity: z
    .strictObject({
      align: sizeSchema.optional(),
      above: sizeSchema.optional(),
      below: sizeSchema.optional(),
      maxRegions: z.number().int().min(1).max(32).optional(),
      hostKeep: sizeSchema.optional(),
    })
    .optional(),
  reservations: z.array(reservationSchema).default([]),
  lowMemory: z.enum(['private', 'none']).default('private'),
});

export type MemorySection = z.output<typeof memorySectionSchema>;

/** A whole plan as far as memory is concerned: other top-level sections are accepted and ignored here. */
export const planMemorySchema = z.looseObject({ memory: memorySectionSchema.optional() });

export function loadMemorySection(file: string): MemorySection | undefined {
  return loadStructuredFile(planMemorySchema, file).memory;
}

/** The identity planner's request for one guest described by this section. */
export function identityRequestFromPlan(section: MemorySection): IdentityRequest {
  const reservations: Reservation[] = section.reservations.map((r) => ({
    start: r.start,
    end: r.end ?? r.start + (r.size ?? 0n),
    owner: r.owner,
    name: r.name,
  }));
  const id = section.identity ?? {};
  return {
    size: section.size,
    guests: 1,
    reservations,
    lowMemory: section.lowMemory as LowMemoryPolicy,
    ...(id.align !== undefined ? { align: id.align } : {}),
    ...(id.above !== undefined ? { above: id.above } : {}),
    ...(id.below !== undefined ? { below: id.below } : {}),
    ...(id.maxRegions !== undefined ? { maxRegionsPerGuest: id.maxRegions } : {}),
    ...(id.hostKeep !== undefined ? { hostKeep: id.hostKeep } : {}),
  };
}

/**
 * The plan path behind an identity request field an IdentityPlanError names (`size`,
 * `reservations[2]`), so the planner's message points into the plan.
 */
export function identityPlanPath(field: string): string {
  const reservation = /^reservations(\[\d+\].*)$/.exec(field);
  if (reservation !== null) return `memory.reservations${reservation[1]}`;
  switch (field) {
    case 'size':
    case 'guests':
      return 'memory.size';
    case 'maxRegionsPerGuest':
      return 'memory.identity.maxRegions';
    case 'align':
    case 'below':
    case 'hostKeep':
      return `memory.identity.${field}`;
  }
  return 'memory';
}
