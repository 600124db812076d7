import type { AccessSize, PortIoHandler } from '../io.js';
import type { IrqLine } from '../irq/line.js';

/** Register offsets from the UART's base port (DLAB selects the divisor latch at 0 and 1). */
const RBR_THR = 0;
const IER = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IIR_NONE = 0x01;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_FIFO_ENABLED = 0xc0;
const LCR_DLAB = 0x80;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const RX_FIFO_MAX = 4096;

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;

/**
 * A 16550A UART (8250-compatible) whose transmitter is infinitely fast: every byte written to
 * THR goes straight to `transmit` (the monitor hands it off to stdout, a file or a socket
 * without waiting), so LSR always shows an empty transmitter. Received bytes come from
 * `receive`. The interrupt logic follows the 16550 datasheet closely enough for SeaBIOS's
 * detection (IER write/read back, IIR = THRE pending) and for interrupt-driven drivers.
 */
export class Uart8250 implements PortIoHandler {
  private ier = 0;
  private lcr = 0x03;
  private mcr = 0;
  private scr = 0;
  private dll = 0x0c;
  private dlm = 0;
  private fcr = 0;
  private thrEmptyPending = false;
  private readonly rx: number[] = [];
  private irqLevel = false;

  constructor(
    readonly base: number,
    private readonly transmit: (byte: number) => void,
    private readonly irq: IrqLine,
  ) {}

  /** Bytes typed at the guest's console. */
  receive(bytes: Uint8Array): void {
    for (const b of bytes) if (this.rx.length < RX_FIFO_MAX) this.rx.push(b);
    this.update();
  }

  readPort(port: number, size: AccessSize): number {
    // Wider accesses read consecutive registers, as on a real ISA bus.
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readReg((port - this.base + i) & 7) << (8 * i);
    return v >>> 0;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.writeReg((port - this.base + i) & 7, (value >>> (8 * i)) & 0xff);
  }

  private readReg(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case RBR_THR: {
        if (dlab) return this.dll;
        const b = this.rx.shift() ?? 0;
        this.update();
        return b;
      }
      case IER:
        return dlab ? this.dlm : this.ier;
      case IIR_FCR: {
        const id = this.interruptId();
        // Reading IIR while it reports THRE clears that source (16550 datasheet, table 5).
        if (id === IIR_THRI) {
          this.thrEmptyPending = false;
          this.update();
        }
        return id | (this.fcr & 1 ? IIR_FIFO_ENABLED : 0);
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        return LSR_THRE | LSR_TEMT | (this.rx.length > 0 ? LSR_DR : 0);
      case MSR:
        // In loopback the modem outputs feed the inputs; otherwise report a connected line (CTS, DSR, DCD).
        if (this.mcr & MCR_LOOP) return ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x01) << 5) | ((this.mcr & 0x02) << 3);
        return 0xb0;
      default:
        return this.scr;
    }
  }

  private writeReg(reg: number, v: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case RBR_THR:
        if (dlab) this.dll = v;
        else {
          if (this.mcr & MCR_LOOP) this.receive(Uint8Array.of(v));
          else this.transmit(v);
          this.thrEmptyPending = true;
          this.update();
        }
        return;
      case IER:
        if (dlab) this.dlm = v;
        else {
          const enablingThri = (v & IER_THRI) !== 0 && (this.ier & IER_THRI) === 0;
          this.ier = v & 0x0f;
          // The transmitter is always empty, so enabling its interrupt raises it at once.
          if (enablingThri) this.thrEmptyPending = true;
          this.update();
        }
        return;
      case IIR_FCR:
        this.fcr = v & 0xc9;
        if (v & 0x02) this.rx.length = 0;
        this.update();
        return;
      case LCR:
        this.lcr = v;
        return;
      case MCR:
        this.mcr = v & 0x1f;
        this.update();
        return;
      case LSR:
      case MSR:
        return;
      default:
        this.scr = v;
    }
  }

  private interruptId(): number {
    if (this.ier & IER_RDI && this.rx.length > 0) return IIR_RDI;
    if (this.ier & IER_THRI && this.thrEmptyPending) return IIR_THRI;
    return IIR_NONE;
  }

  private update(): void {
    // PC UARTs gate their interrupt output with OUT2.
    const level = this.interruptId() !== IIR_NONE && (this.mcr & MCR_OUT2) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.set(level);
  }
}
