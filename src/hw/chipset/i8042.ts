import type { AccessSize, PortIoHandler } from '../io.js';
import type { IrqLine } from '../irq/line.js';
import type { SystemControl } from './system.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_STATUS_PORT = 0x64;
export const KBD_IRQ = 1;
export const AUX_IRQ = 12;

const STR_OBF = 0x01;
const STR_SYSFLAG = 0x04;
const STR_CMDDAT = 0x08;
const STR_KEYLOCK = 0x10;
const STR_AUXDATA = 0x20;

const CTR_KBDINT = 0x01;
const CTR_AUXINT = 0x02;
const CTR_SYSFLAG = 0x04;
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
const CTR_XLATE = 0x40;

const ACK = 0xfa;
const BAT_OK = 0xaa;

/**
 * The i8042 keyboard controller with a PS/2 keyboard and mouse that answer their commands
 * (self-tests, reset/BAT, get-ID, LEDs, scan sets, sample rates) the way SeaBIOS's ps2port.c
 * and Linux's i8042/atkbd drivers expect, so neither waits for a timeout. Output port bit 0 and
 * command 0xFE are the CPU reset line; bit 1 is A20 (KVM cannot mask A20, so it is recorded only).
 */
export class I8042 implements PortIoHandler {
  private ctr = CTR_KBDINT | CTR_SYSFLAG | CTR_XLATE;
  private readonly out: Array<{ byte: number; aux: boolean }> = [];
  /** A controller command waiting for its parameter byte on port 0x60. */
  private pendingCtl: number | undefined;
  /** A keyboard/mouse command waiting for its parameter byte. */
  private pendingKbd: number | undefined;
  private pendingAux: number | undefined;
  private lastWasCommand = false;
  private outputPort = 0x03;
  /** What port 0x60 reads when the buffer is empty: the last byte, as on real controllers (and QEMU). */
  private lastRead = 0;
  private kbdLevel = false;
  private auxLevel = false;
  a20 = true;

  constructor(
    private readonly system: SystemControl,
    private readonly kbdIrq: IrqLine,
    private readonly auxIrq: IrqLine,
  ) {}

  readPort(port: number, size: AccessSize): number {
    void size;
    if (port === I8042_STATUS_PORT) return this.status();
    const head = this.out.shift();
    if (head !== undefined) {
      this.lastRead = head.byte;
      // A real controller holds one byte at a time: the line falls as the byte is read and rises
      // again for the next one. Linux's IOAPIC pins 1 and 12 are edge-triggered, so a line left
      // high from one byte to the next is one interrupt for both, and libps2 waits out its
      // timeout for every byte after a command's ACK (a keyboard's ID, a mouse's BAT).
      this.lowerIrq();
    }
    this.updateIrq();
    return this.lastRead;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    void size;
    const v = value & 0xff;
    if (port === I8042_STATUS_PORT) {
      this.lastWasCommand = true;
      this.command(v);
    } else {
      this.lastWasCommand = false;
      this.data(v);
    }
  }

  private status(): number {
    let s = STR_KEYLOCK;
    if (this.ctr & CTR_SYSFLAG) s |= STR_SYSFLAG;
    if (this.lastWasCommand) s |= STR_CMDDAT;
    const head = this.out[0];
    if (head !== undefined) s |= STR_OBF | (head.aux ? STR_AUXDATA : 0);
    return s;
  }

  private push(byte: number, aux = false): void {
    this.out.push({ byte, aux });
    this.updateIrq();
  }

  private lowerIrq(): void {
    if (this.kbdLevel) this.kbdIrq.set((this.kbdLevel = false));
    if (this.auxLevel) this.auxIrq.set((this.auxLevel = false));
  }

  /**
   * IRQ1 (IRQ12 for mouse data) is high while the output buffer holds a byte of that port and
   * the command byte enables its interrupt, and falls when the byte is read.
   */
  private updateIrq(): void {
    const head = this.out[0];
    const kbd = head !== undefined && !head.aux && (this.ctr & CTR_KBDINT) !== 0;
    const aux = head !== undefined && head.aux && (this.ctr & CTR_AUXINT) !== 0;
    if (kbd !== this.kbdLevel) this.kbdIrq.set((this.kbdLevel = kbd));
    if (aux !== this.auxLevel) this.auxIrq.set((this.auxLevel = aux));
  }

  private command(cmd: number): void {
    switch (cmd) {
      case 0x20: // read command byte
        this.push(this.ctr);
        return;
      case 0x60: // write command byte
      case 0xd1: // write output port
      case 0xd2: // write keyboard output buffer
      case 0xd3: // write aux output buffer
      case 0xd4: // write to aux device
        this.pendingCtl = cmd;
        return;
      case 0xa7:
        this.ctr |= CTR_AUXDIS;
        return;
      case 0xa8:
        this.ctr &= ~CTR_AUXDIS;
        return;
      case 0xa9: // aux interface test: 0 = ok
      case 0xab: // keyboard interface test
        this.push(0x00);
        return;
      case 0xaa: // controller self-test
        this.push(0x55);
        return;
      case 0xad:
        this.ctr |= CTR_KBDDIS;
        return;
      case 0xae:
        this.ctr &= ~CTR_KBDDIS;
        return;
      case 0xc0: // read input port
        this.push(0x80);
        return;
      case 0xd0: // read output port
        this.push(this.outputPort);
        return;
      case 0xdd: // A20 off / on (HP vectra extension some firmware uses)
      case 0xdf:
        this.a20 = cmd === 0xdf;
        return;
      default:
        // 0xF0-0xFF pulse output-port lines; bit 0 low is the CPU reset.
        if (cmd >= 0xf0 && (cmd & 0x01) === 0) this.system.reset('i8042 command 0xfe (pulse reset line)');
    }
  }

  private data(v: number): void {
    const ctl = this.pendingCtl;
    this.pendingCtl = undefined;
    switch (ctl) {
      case 0x60:
        this.ctr = v;
        this.updateIrq();
        return;
      case 0xd1:
        this.outputPort = v;
        this.a20 = (v & 0x02) !== 0;
        if ((v & 0x01) === 0) this.system.reset('i8042 output port write (reset line low)');
        return;
      case 0xd2:
        this.push(v);
        return;
      case 0xd3:
        this.push(v, true);
        return;
      case 0xd4:
        this.auxByte(v);
        return;
      default:
        this.kbdByte(v);
    }
  }

  private kbdByte(v: number): void {
    // Sending to the keyboard implicitly enables its interface (as real controllers do).
    this.ctr &= ~CTR_KBDDIS;
    const pending = this.pendingKbd;
    this.pendingKbd = undefined;
    if (pending !== undefined) {
      if (pending === 0xf0 && v === 0) this.push(ACK), this.push(0x02); // query scan set: set 2
      else this.push(ACK);
      return;
    }
    switch (v) {
      case 0xff: // reset: ACK then BAT passed
        this.push(ACK);
        this.push(BAT_OK);
        return;
      case 0xf2: // get ID: MF2 keyboard, translated
        this.push(ACK);
        this.push(0xab);
        this.push(this.ctr & CTR_XLATE ? 0x41 : 0x83);
        return;
      case 0xed: // set LEDs
      case 0xf0: // scan code set
      case 0xf3: // typematic rate
        this.pendingKbd = v;
        this.push(ACK);
        return;
      case 0xee: // echo
        this.push(0xee);
        return;
      default: // enable/disable scanning, set defaults, and the rest: acknowledged
        this.push(ACK);
    }
  }

  private auxByte(v: number): void {
    const pending = this.pendingAux;
    this.pendingAux = undefined;
    if (pending !== undefined) {
      this.push(ACK, true);
      return;
    }
    switch (v) {
      case 0xff: // reset: ACK, BAT passed, device ID 0 (standard mouse)
        this.push(ACK, true);
        this.push(BAT_OK, true);
        this.push(0x00, true);
        return;
      case 0xf2: // get ID
        this.push(ACK, true);
        this.push(0x00, true);
        return;
      case 0xe9: // status request: ACK + 3 status bytes
        this.push(ACK, true);
        this.push(0x00, true);
        this.push(0x02, true);
        this.push(0x64, true);
        return;
      case 0xe8: // resolution
      case 0xf3: // sample rate
        this.pendingAux = v;
        this.push(ACK, true);
        return;
      default:
        this.push(ACK, true);
    }
  }
}

export const SYSTEM_CONTROL_PORT_A = 0x92;

/**
 * Port 0x92, "system control port A": bit 1 is A20 (recorded only: KVM has no A20 mask), and a
 * 0->1 transition of bit 0 is a fast CPU reset.
 */
export class SystemControlPortA implements PortIoHandler {
  private value = 0x02;

  constructor(private readonly system: SystemControl) {}

  get a20(): boolean {
    return (this.value & 0x02) !== 0;
  }

  readPort(): number {
    return this.value;
  }

  writePort(_port: number, _size: AccessSize, v: number): void {
    const rising = (v & 0x01) !== 0 && (this.value & 0x01) === 0;
    this.value = v & 0x03;
    if (rising) this.system.reset('port 0x92 fast reset');
  }
}
