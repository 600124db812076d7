import type { BinaryKind, CreateSizedFieldKind, LogicalKind, NullaryKind, UnaryKind, UnaryTargetKind } from './terms.js';

/**
 * AML opcode values (ACPI 6.5 section 20.3). Extended opcodes are 0x5B followed by the second
 * byte; they are written here as 0x5Bxx.
 */
export const Op = {
  Zero: 0x00,
  One: 0x01,
  Alias: 0x06,
  Name: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  Scope: 0x10,
  Buffer: 0x11,
  Package: 0x12,
  VarPackage: 0x13,
  Method: 0x14,
  External: 0x15,
  DualNamePrefix: 0x2e,
  MultiNamePrefix: 0x2f,
  ExtPrefix: 0x5b,
  RootChar: 0x5c,
  ParentPrefixChar: 0x5e,
  Local0: 0x60,
  Arg0: 0x68,
  Store: 0x70,
  RefOf: 0x71,
  Increment: 0x75,
  Decrement: 0x76,
  Divide: 0x78,
  DerefOf: 0x83,
  Notify: 0x86,
  SizeOf: 0x87,
  Match: 0x89,
  ObjectType: 0x8e,
  LNot: 0x92,
  ToString: 0x9c,
  CopyObject: 0x9d,
  Mid: 0x9e,
  Continue: 0x9f,
  If: 0xa0,
  Else: 0xa1,
  While: 0xa2,
  Noop: 0xa3,
  Return: 0xa4,
  Break: 0xa5,
  BreakPoint: 0xcc,
  Ones: 0xff,
  // Extended (0x5B-prefixed) opcodes, second byte.
  Mutex: 0x01,
  Event: 0x02,
  CondRefOf: 0x12,
  CreateField: 0x13,
  LoadTable: 0x1f,
  Load: 0x20,
  Stall: 0x21,
  Sleep: 0x22,
  Acquire: 0x23,
  Signal: 0x24,
  Wait: 0x25,
  Reset: 0x26,
  Release: 0x27,
  FromBCD: 0x28,
  ToBCD: 0x29,
  Unload: 0x2a,
  Revision: 0x30,
  Debug: 0x31,
  Fatal: 0x32,
  Timer: 0x33,
  OpRegion: 0x80,
  Field: 0x81,
  Device: 0x82,
  Processor: 0x83,
  PowerRes: 0x84,
  ThermalZone: 0x85,
  IndexField: 0x86,
  BankField: 0x87,
  DataRegion: 0x88,
} as const;

/** Field list element prefixes. */
export const FieldOp = {
  Reserved: 0x00,
  Access: 0x01,
  Connection: 0x02,
  ExtendedAccess: 0x03,
} as const;

/** Opcode of each kind that shares a shape with others; an extended opcode is 0x5Bxx. */
export const BINARY_OPS: Readonly<Record<BinaryKind, number>> = {
  Add: 0x72,
  Concatenate: 0x73,
  Subtract: 0x74,
  Multiply: 0x77,
  ShiftLeft: 0x79,
  ShiftRight: 0x7a,
  And: 0x7b,
  Nand: 0x7c,
  Or: 0x7d,
  Nor: 0x7e,
  Xor: 0x7f,
  ConcatenateResTemplate: 0x84,
  Mod: 0x85,
  Index: 0x88,
};

export const UNARY_TARGET_OPS: Readonly<Record<UnaryTargetKind, number>> = {
  Not: 0x80,
  FindSetLeftBit: 0x81,
  FindSetRightBit: 0x82,
  ToBuffer: 0x96,
  ToDecimalString: 0x97,
  ToHexString: 0x98,
  ToInteger: 0x99,
  FromBCD: 0x5b28,
  ToBCD: 0x5b29,
};

export const LOGICAL_OPS: Readonly<Record<LogicalKind, number>> = {
  LAnd: 0x90,
  LOr: 0x91,
  LEqual: 0x93,
  LGreater: 0x94,
  LLess: 0x95,
};

export const UNARY_OPS: Readonly<Record<UnaryKind, number>> = {
  LNot: 0x92,
  RefOf: 0x71,
  DerefOf: 0x83,
  Increment: 0x75,
  Decrement: 0x76,
  SizeOf: 0x87,
  ObjectType: 0x8e,
  Sleep: 0x5b22,
  Stall: 0x5b21,
  Signal: 0x5b24,
  Reset: 0x5b26,
  Release: 0x5b27,
  Unload: 0x5b2a,
  Return: 0xa4,
};

export const NULLARY_OPS: Readonly<Record<NullaryKind, number>> = {
  Noop: 0xa3,
  Break: 0xa5,
  Continue: 0x9f,
  BreakPoint: 0xcc,
  Revision: 0x5b30,
  Debug: 0x5b31,
  Timer: 0x5b33,
};

export const CREATE_FIELD_OPS: Readonly<Record<CreateSizedFieldKind, number>> = {
  CreateDWordField: 0x8a,
  CreateWordField: 0x8b,
  CreateByteField: 0x8c,
  CreateBitField: 0x8d,
  CreateQWordField: 0x8f,
};

/** First byte of a NameString: a lead name character, a prefix, or a segment-count prefix. */
export function isNameStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x5c || c === 0x5e || c === 0x2e || c === 0x2f;
}

/** Lead character of a NameSeg: A-Z or underscore. */
export function isLeadNameChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}
