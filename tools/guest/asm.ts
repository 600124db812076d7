/**
 * A tiny x86 code emitter for the micro guests the tests and benchmarks generate: the few
 * instructions they need, encoded by hand (Intel SDM vol. 2), for 16-bit real mode or 32-bit
 * flat protected mode. Labels resolve on `bytes()`; jumps use 16/32-bit relative forms.
 */
export type Bits = 16 | 32;
type Reg = 'eax' | 'ecx' | 'edx' | 'ebx' | 'esp' | 'ebp' | 'esi' | 'edi';
const REG: Record<Reg, number> = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 };

export class Asm {
  private readonly out: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: Array<{ at: number; label: string; width: 2 | 4; from: number }> = [];

  constructor(readonly bits: Bits) {}

  get offset(): number {
    return this.out.length;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`label ${name} defined twice`);
    this.labels.set(name, this.out.length);
    return this;
  }

  raw(...bytes: number[]): this {
    for (const b of bytes) this.out.push(b & 0xff);
    return this;
  }

  private imm(value: number, width: 1 | 2 | 4): void {
    for (let i = 0; i < width; i++) this.out.push((value >>> (8 * i)) & 0xff);
  }

  /** Operand-size prefix when the access width differs from the mode's default. */
  private opsize(width: 2 | 4): void {
    if ((this.bits === 16) !== (width === 2)) this.out.push(0x66);
  }

  private addrsize32(): void {
    if (this.bits === 16) this.out.push(0x67);
  }

  /** mov r8/r16/r32, imm */
  movImm(reg: Reg, value: number, width: 1 | 2 | 4 = 4): this {
    if (width === 1) {
      this.out.push(0xb0 + REG[reg]);
      this.imm(value, 1);
    } else {
      this.opsize(width);
      this.out.push(0xb8 + REG[reg]);
      this.imm(value, width);
    }
    return this;
  }

  /** out dx, al/ax/eax */
  outDx(width: 1 | 2 | 4): this {
    if (width === 1) this.out.push(0xee);
    else {
      this.opsize(width);
      this.out.push(0xef);
    }
    return this;
  }

  /** in al/ax/eax, dx */
  inDx(width: 1 | 2 | 4): this {
    if (width === 1) this.out.push(0xec);
    else {
      this.opsize(width);
      this.out.push(0xed);
    }
    return this;
  }

  /** mov [abs32], al/ax/eax (moffs form; a 32-bit address needs flat segments) */
  storeAbs(address: number, width: 1 | 2 | 4): this {
    this.addrsize32();
    if (width === 1) this.out.push(0xa2);
    else {
      this.opsize(width);
      this.out.push(0xa3);
    }
    this.imm(address, 4);
    return this;
  }

  /** mov al/ax/eax, [abs32] */
  loadAbs(address: number, width: 1 | 2 | 4): this {
    this.addrsize32();
    if (width === 1) this.out.push(0xa0);
    else {
      this.opsize(width);
      this.out.push(0xa1);
    }
    this.imm(address, 4);
    return this;
  }

  /** dec ecx (cx in 16-bit mode without prefix) — always the 32-bit register here. */
  decEcx(): this {
    this.opsize(4);
    this.out.push(0x49);
    return this;
  }

  /** jnz label (near, rel16/rel32) */
  jnz(label: string): this {
    this.out.push(0x0f, 0x85);
    return this.rel(label);
  }

  /** jz label (near, rel16/rel32) */
  jz(label: string): this {
    this.out.push(0x0f, 0x84);
    return this.rel(label);
  }

  /** test al, imm8 */
  testAl(value: number): this {
    return this.raw(0xa8, value);
  }

  jmp(label: string): this {
    this.out.push(0xe9);
    return this.rel(label);
  }

  private rel(label: string): this {
    const width = this.bits === 16 ? 2 : 4;
    const at = this.out.length;
    this.imm(0, width);
    this.fixups.push({ at, label, width, from: this.out.length });
    return this;
  }

  /** jmp far seg:off (16-bit form, from real mode) */
  jmpFar(segment: number, offset: number): this {
    this.out.push(0xea);
    this.imm(offset, 2);
    this.imm(segment, 2);
    return this;
  }

  /** mov word/dword [abs], imm (C7 /0 with a direct address; flat segments for 32-bit addresses) */
  storeImm(address: number, value: number, width: 2 | 4): this {
    this.opsize(width);
    if (this.bits === 16 && address > 0xffff) this.out.push(0x67);
    this.out.push(0xc7, this.bits === 16 && address <= 0xffff ? 0x06 : 0x05);
    this.imm(address, this.bits === 16 && address <= 0xffff ? 2 : 4);
    this.imm(value, width);
    return this;
  }

  /** mov byte [abs], imm8 */
  storeImm8(address: number, value: number): this {
    if (this.bits === 16 && address > 0xffff) this.out.push(0x67);
    this.out.push(0xc6, this.bits === 16 && address <= 0xffff ? 0x06 : 0x05);
    this.imm(address, this.bits === 16 && address <= 0xffff ? 2 : 4);
    this.imm(value, 1);
    return this;
  }

  /** and ebx, eax — accumulates what the guest read. */
  andEbxEax(): this {
    this.opsize(4);
    return this.raw(0x21, 0xc3);
  }

  /** mov eax, ebx */
  movEaxEbx(): this {
    this.opsize(4);
    return this.raw(0x89, 0xd8);
  }

  /** xor ax, ax; mov ds, ax — real-mode DS = 0 to reach the interrupt vector table. */
  zeroDs(): this {
    return this.raw(0x31, 0xc0, 0x8e, 0xd8);
  }

  /** lgdt / lidt [abs32] (32-bit mode) */
  lgdt(address: number): this {
    this.addrsize32();
    this.out.push(0x0f, 0x01, 0x15);
    this.imm(address, 4);
    return this;
  }

  lidt(address: number): this {
    this.addrsize32();
    this.out.push(0x0f, 0x01, 0x1d);
    this.imm(address, 4);
    return this;
  }

  /** or eax, imm32 */
  orEax(value: number): this {
    this.opsize(4);
    this.out.push(0x0d);
    this.imm(value, 4);
    return this;
  }

  /** rdmsr (ecx) -> edx:eax */
  rdmsr(): this {
    return this.raw(0x0f, 0x32);
  }

  /** wrmsr edx:eax -> msr ecx */
  wrmsr(): this {
    return this.raw(0x0f, 0x30);
  }

  sti(): this {
    return this.raw(0xfb);
  }

  cli(): this {
    return this.raw(0xfa);
  }

  hlt(): this {
    return this.raw(0xf4);
  }

  bytes(): Uint8Array {
    const code = Uint8Array.from(this.out);
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`undefined label ${f.label}`);
      const delta = target - f.from;
      for (let i = 0; i < f.width; i++) code[f.at + i] = (delta >>> (8 * i)) & 0xff;
    }
    return code;
  }
}

/** The size of a micro-guest firmware image; QEMU's -bios needs a multiple of 64 KiB. */
export const MICRO_BIOS_SIZE = 0x10000;

/**
 * A 64 KiB BIOS image whose reset vector (offset 0xFFF0, reached at F000:FFF0 and at
 * 0xFFFFFFF0) far-jumps to `code` placed at offset 0: the image QEMU's -bios, the C loop
 * and hvmpt all run identically.
 */
export function microBios(code: Uint8Array): Uint8Array {
  if (code.length > 0xff00) throw new Error(`micro guest code is ${code.length} bytes, at most 0xff00`);
  const image = new Uint8Array(MICRO_BIOS_SIZE);
  image.set(code, 0);
  image.set(new Asm(16).jmpFar(0xf000, 0).bytes(), 0xfff0);
  return image;
}
