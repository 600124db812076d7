/**
 * AML: the term tree, its parser and encoder, name strings, and the builder for generated
 * tables. See docs/aml.md.
 */
export * from './terms.js';
export { parseAml, parseAmlTables, collectDeclarations, DEFAULT_MAX_DEPTH } from './parse.js';
export type { AmlInput, AmlTree, ParseOptions, UnresolvedName } from './parse.js';
export { encodeAml, encodeTerm, encodeNameString } from './encode.js';
export type { EncodeOptions } from './encode.js';
export { AmlParseError, AmlDepthError, AmlEncodeError } from './errors.js';
export { nameSeg, nameString, formatName, trimSeg, pathOf, absoluteSegs, parsePath, isSearchable } from './names.js';
export { DeclarationIndex, DeclNode } from './declarations.js';
export { childTerms, visitTerms, editTermLists } from './walk.js';
export { encodeEisaId, decodeEisaId, isEisaIdText } from './eisaid.js';
export * as build from './builder.js';
