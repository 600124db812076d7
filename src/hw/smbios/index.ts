export * from './structures.js';
export * from './encode.js';
export * from './decode.js';
export * from './guest.js';
