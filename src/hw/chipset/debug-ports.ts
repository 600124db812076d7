import type { AccessSize, PortIoHandler } from '../io.js';

export const DEBUGCON_PORT = 0x402;
/** The POST code port firmware writes its progress to. */
export const POST_PORT = 0x80;
/** What reading the port returns so SeaBIOS (qemu_debug_preinit) knows its log is captured. */
const DEBUGCON_READBACK = 0xe9;

/** QEMU's isa-debugcon: bytes written are the firmware's log, handed to `sink` without waiting. */
export class DebugCon implements PortIoHandler {
  constructor(private readonly sink: (byte: number) => void) {}

  readPort(): number {
    return DEBUGCON_READBACK;
  }

  writePort(_port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.sink((value >>> (8 * i)) & 0xff);
  }
}

export const DEBUG_EXIT_PORT = 0xf4;

/**
 * QEMU's isa-debug-exit: a write ends the machine with status (value << 1) | 1. Micro guests
 * use it to end a run the same way under hvmpt and under QEMU.
 */
export class DebugExit implements PortIoHandler {
  constructor(private readonly exit: (code: number) => void) {}

  readPort(): number {
    return 0xff;
  }

  writePort(_port: number, _size: AccessSize, value: number): void {
    this.exit(((value & 0xff) << 1) | 1);
  }
}
