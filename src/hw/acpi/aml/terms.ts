/**
 * The AML term tree: every ACPI 6.x opcode as a member of one discriminated union (`Term`),
 * with the few encoding choices that a byte-identical re-encode needs kept beside the values
 * (PkgLength width when the original used a longer form than needed, integer constant width,
 * the MultiNamePrefix form of short name strings).
 *
 * Trees are immutable values: rewriters build new trees, and the parser may share one object
 * for constants that occur thousands of times (Zero, One, Local0, Arg0, small integers).
 */

/** PkgLength encoding width in bytes. */
export type PkgLengthWidth = 1 | 2 | 3 | 4;

/**
 * A name string as AML writes it: an optional root prefix (`\`) or parent prefixes (`^`),
 * then zero or more 4-character segments, kept padded as encoded (`EC0_`, not `EC0`).
 */
export interface NameString {
  readonly root: boolean;
  readonly parents: number;
  readonly segs: readonly string[];
  /** The original used MultiNamePrefix for 0, 1 or 2 segments, where a shorter form would do. */
  readonly multi?: true;
}

/** How an integer constant was (or will be) encoded: a constant opcode or a prefixed width. */
export type IntegerEncoding = 'zero' | 'one' | 'ones' | 'byte' | 'word' | 'dword' | 'qword';

export interface IntegerTerm {
  readonly kind: 'Integer';
  /** Ones reads as 0xFFFFFFFFFFFFFFFF; a revision-1 table interprets it as 32 bits. */
  readonly value: bigint;
  readonly enc: IntegerEncoding;
}

export interface StringTerm {
  readonly kind: 'String';
  /** One character per byte (Latin-1), so any byte sequence survives a round trip. */
  readonly value: string;
}

export interface BufferTerm {
  readonly kind: 'Buffer';
  /** The declared size; usually an Integer equal to data.length, but any TermArg is legal. */
  readonly size: Term;
  readonly data: Uint8Array;
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface PackageTerm {
  readonly kind: 'Package';
  /** NumElements as declared; may exceed elements.length (the rest are uninitialized). */
  readonly count: number;
  readonly elements: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface VarPackageTerm {
  readonly kind: 'VarPackage';
  readonly count: Term;
  readonly elements: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

/** A reference to a named object (not an invocation). */
export interface NamePathTerm {
  readonly kind: 'NamePath';
  readonly name: NameString;
}

/** An invocation of a control method; `args.length` is the method's argument count. */
export interface MethodCallTerm {
  readonly kind: 'MethodCall';
  readonly name: NameString;
  readonly args: readonly Term[];
}

export interface LocalTerm {
  readonly kind: 'Local';
  readonly index: number;
}

export interface ArgTerm {
  readonly kind: 'Arg';
  readonly index: number;
}

export type NullaryKind = 'Noop' | 'Break' | 'Continue' | 'BreakPoint' | 'Revision' | 'Debug' | 'Timer';
export interface NullaryTerm {
  readonly kind: NullaryKind;
}

/** A Target or SuperName slot: `null` is the NullName (0x00), meaning "no destination". */
export type Target = Term | null;

export type BinaryKind =
  | 'Add'
  | 'Concatenate'
  | 'Subtract'
  | 'Multiply'
  | 'ShiftLeft'
  | 'ShiftRight'
  | 'And'
  | 'Nand'
  | 'Or'
  | 'Nor'
  | 'Xor'
  | 'Mod'
  | 'Index'
  | 'ConcatenateResTemplate';
export interface BinaryTerm {
  readonly kind: BinaryKind;
  readonly left: Term;
  readonly right: Term;
  readonly target: Target;
}

export type UnaryTargetKind =
  | 'Not'
  | 'FindSetLeftBit'
  | 'FindSetRightBit'
  | 'ToBuffer'
  | 'ToDecimalString'
  | 'ToHexString'
  | 'ToInteger'
  | 'FromBCD'
  | 'ToBCD';
export interface UnaryTargetTerm {
  readonly kind: UnaryTargetKind;
  readonly operand: Term;
  readonly target: Target;
}

export type LogicalKind = 'LAnd' | 'LOr' | 'LEqual' | 'LGreater' | 'LLess';
export interface LogicalTerm {
  readonly kind: LogicalKind;
  readonly left: Term;
  readonly right: Term;
}

/** One-operand opcodes without a target. LNotEqual is LNot(LEqual(..)) in AML and in this tree. */
export type UnaryKind =
  | 'LNot'
  | 'RefOf'
  | 'DerefOf'
  | 'Increment'
  | 'Decrement'
  | 'SizeOf'
  | 'ObjectType'
  | 'Sleep'
  | 'Stall'
  | 'Signal'
  | 'Reset'
  | 'Release'
  | 'Unload'
  | 'Return';
export interface UnaryTerm {
  readonly kind: UnaryKind;
  readonly operand: Term;
}

export interface StoreTerm {
  readonly kind: 'Store';
  readonly value: Term;
  readonly target: Target;
}

/** CopyObject's destination is a SimpleName: a name there is never a call. */
export interface CopyObjectTerm {
  readonly kind: 'CopyObject';
  readonly value: Term;
  readonly target: Target;
}

export interface DivideTerm {
  readonly kind: 'Divide';
  readonly dividend: Term;
  readonly divisor: Term;
  readonly remainder: Target;
  readonly quotient: Target;
}

export interface MatchTerm {
  readonly kind: 'Match';
  readonly package: Term;
  /** Match operator codes: 0 MTR, 1 MEQ, 2 MLE, 3 MLT, 4 MGE, 5 MGT. */
  readonly op1: number;
  readonly operand1: Term;
  readonly op2: number;
  readonly operand2: Term;
  readonly start: Term;
}

export interface MidTerm {
  readonly kind: 'Mid';
  readonly source: Term;
  readonly index: Term;
  readonly length: Term;
  readonly target: Target;
}

export interface ToStringTerm {
  readonly kind: 'ToString';
  readonly source: Term;
  readonly length: Term;
  readonly target: Target;
}

export interface CondRefOfTerm {
  readonly kind: 'CondRefOf';
  readonly operand: Term;
  readonly target: Target;
}

export interface NotifyTerm {
  readonly kind: 'Notify';
  readonly object: Term;
  readonly value: Term;
}

export interface AcquireTerm {
  readonly kind: 'Acquire';
  readonly mutex: Term;
  /** Milliseconds; 0xFFFF waits forever. */
  readonly timeout: number;
}

export interface WaitTerm {
  readonly kind: 'Wait';
  readonly event: Term;
  readonly timeout: Term;
}

export interface FatalTerm {
  readonly kind: 'Fatal';
  readonly type: number;
  readonly code: number;
  readonly arg: Term;
}

export interface LoadTerm {
  readonly kind: 'Load';
  readonly name: NameString;
  readonly target: Target;
}

export interface LoadTableTerm {
  readonly kind: 'LoadTable';
  readonly signature: Term;
  readonly oemId: Term;
  readonly oemTableId: Term;
  readonly rootPath: Term;
  readonly parameterPath: Term;
  readonly parameterData: Term;
}

export interface ElseClause {
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface IfTerm {
  readonly kind: 'If';
  readonly predicate: Term;
  readonly body: readonly Term[];
  readonly else?: ElseClause;
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface WhileTerm {
  readonly kind: 'While';
  readonly predicate: Term;
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

// ---- Named objects -------------------------------------------------------------------

export interface AliasTerm {
  readonly kind: 'Alias';
  readonly source: NameString;
  readonly name: NameString;
}

export interface NameTerm {
  readonly kind: 'Name';
  readonly name: NameString;
  readonly value: Term;
}

export interface ScopeTerm {
  readonly kind: 'Scope' | 'Device' | 'ThermalZone';
  readonly name: NameString;
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface MethodTerm {
  readonly kind: 'Method';
  readonly name: NameString;
  /** 0-7. */
  readonly argCount: number;
  readonly serialized: boolean;
  /** 0-15. */
  readonly syncLevel: number;
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

/** ACPI object type codes used by External (and ObjectType's results). */
export const ObjectType = {
  Any: 0,
  Integer: 1,
  String: 2,
  Buffer: 3,
  Package: 4,
  FieldUnit: 5,
  Device: 6,
  Event: 7,
  Method: 8,
  Mutex: 9,
  OperationRegion: 10,
  PowerResource: 11,
  Processor: 12,
  ThermalZone: 13,
  BufferField: 14,
  DdbHandle: 15,
  DebugObject: 16,
} as const;

export interface ExternalTerm {
  readonly kind: 'External';
  readonly name: NameString;
  /** An ObjectType code; 8 (Method) makes `argCount` meaningful. */
  readonly objectType: number;
  readonly argCount: number;
}

export interface MutexTerm {
  readonly kind: 'Mutex';
  readonly name: NameString;
  /** SyncFlags as encoded: bits 0-3 are the sync level, 4-7 reserved. */
  readonly syncFlags: number;
}

export interface EventTerm {
  readonly kind: 'Event';
  readonly name: NameString;
}

/** Region space codes (OperationRegion). */
export const RegionSpace = {
  SystemMemory: 0,
  SystemIO: 1,
  PCI_Config: 2,
  EmbeddedControl: 3,
  SMBus: 4,
  SystemCMOS: 5,
  PciBarTarget: 6,
  IPMI: 7,
  GeneralPurposeIO: 8,
  GenericSerialBus: 9,
  PCC: 10,
  PlatformRtMechanism: 11,
  FunctionalFixedHW: 0x7f,
} as const;

export interface OperationRegionTerm {
  readonly kind: 'OperationRegion';
  readonly name: NameString;
  readonly space: number;
  readonly offset: Term;
  readonly length: Term;
}

export interface DataRegionTerm {
  readonly kind: 'DataRegion';
  readonly name: NameString;
  readonly signature: Term;
  readonly oemId: Term;
  readonly oemTableId: Term;
}

/** A named field unit of `bits` bits. */
export interface NamedFieldElement {
  readonly kind: 'NamedField';
  readonly name: string;
  readonly bits: number;
  readonly pkgLenBytes?: PkgLengthWidth;
}

/** Unnamed bits (ASL `Offset(..)` and `, N` gaps). */
export interface ReservedFieldElement {
  readonly kind: 'ReservedField';
  readonly bits: number;
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface AccessAsElement {
  readonly kind: 'AccessAs';
  readonly accessType: number;
  readonly attrib: number;
}

export interface ExtendedAccessAsElement {
  readonly kind: 'ExtendedAccessAs';
  readonly accessType: number;
  readonly attrib: number;
  readonly length: number;
}

export interface ConnectionElement {
  readonly kind: 'Connection';
  readonly name: NameString;
}

export interface ConnectionBufferElement {
  readonly kind: 'ConnectionBuffer';
  readonly buffer: BufferTerm;
}

export type FieldElement =
  | NamedFieldElement
  | ReservedFieldElement
  | AccessAsElement
  | ExtendedAccessAsElement
  | ConnectionElement
  | ConnectionBufferElement;

export interface FieldTerm {
  readonly kind: 'Field';
  readonly region: NameString;
  /** FieldFlags: bits 0-3 access type, bit 4 lock rule, bits 5-6 update rule. */
  readonly flags: number;
  readonly elements: readonly FieldElement[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface IndexFieldTerm {
  readonly kind: 'IndexField';
  readonly index: NameString;
  readonly data: NameString;
  readonly flags: number;
  readonly elements: readonly FieldElement[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface BankFieldTerm {
  readonly kind: 'BankField';
  readonly region: NameString;
  readonly bank: NameString;
  readonly bankValue: Term;
  readonly flags: number;
  readonly elements: readonly FieldElement[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export type CreateSizedFieldKind =
  | 'CreateBitField'
  | 'CreateByteField'
  | 'CreateWordField'
  | 'CreateDWordField'
  | 'CreateQWordField';
export interface CreateSizedFieldTerm {
  readonly kind: CreateSizedFieldKind;
  readonly source: Term;
  /** A byte index, or a bit index for CreateBitField. */
  readonly index: Term;
  readonly name: NameString;
}

export interface CreateFieldTerm {
  readonly kind: 'CreateField';
  readonly source: Term;
  readonly bitIndex: Term;
  readonly numBits: Term;
  readonly name: NameString;
}

export interface ProcessorTerm {
  readonly kind: 'Processor';
  readonly name: NameString;
  readonly procId: number;
  readonly pblkAddress: number;
  readonly pblkLength: number;
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export interface PowerResourceTerm {
  readonly kind: 'PowerResource';
  readonly name: NameString;
  readonly systemLevel: number;
  readonly resourceOrder: number;
  readonly body: readonly Term[];
  readonly pkgLenBytes?: PkgLengthWidth;
}

export type Term =
  | IntegerTerm
  | StringTerm
  | BufferTerm
  | PackageTerm
  | VarPackageTerm
  | NamePathTerm
  | MethodCallTerm
  | LocalTerm
  | ArgTerm
  | NullaryTerm
  | BinaryTerm
  | UnaryTargetTerm
  | LogicalTerm
  | UnaryTerm
  | StoreTerm
  | CopyObjectTerm
  | DivideTerm
  | MatchTerm
  | MidTerm
  | ToStringTerm
  | CondRefOfTerm
  | NotifyTerm
  | AcquireTerm
  | WaitTerm
  | FatalTerm
  | LoadTerm
  | LoadTableTerm
  | IfTerm
  | WhileTerm
  | AliasTerm
  | NameTerm
  | ScopeTerm
  | MethodTerm
  | ExternalTerm
  | MutexTerm
  | EventTerm
  | OperationRegionTerm
  | DataRegionTerm
  | FieldTerm
  | IndexFieldTerm
  | BankFieldTerm
  | CreateSizedFieldTerm
  | CreateFieldTerm
  | ProcessorTerm
  | PowerResourceTerm;

export type TermKind = Term['kind'];

/** Terms that open a namespace scope: their body's declarations live under their name. */
export type ScopedTerm = ScopeTerm | MethodTerm | ProcessorTerm | PowerResourceTerm;
