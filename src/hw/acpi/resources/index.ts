/** Resource descriptors (_CRS/_PRS/_SRS templates): types and codec. See docs/aml.md. */
export * from './types.js';
export { decodeResources, encodeResources, encodeResource, isResourceTemplate, ResourceError } from './codec.js';
export type { DecodeResourceOptions } from './codec.js';
