// @ts-check
/**
 * An edu-compatible device as a hvmpt plug-in: the register map of QEMU's educational device
 * (QEMU's docs/specs/edu.rst) — identification, liveness, factorial, interrupt raise and
 * acknowledge (INTx or MSI), and the DMA engine with its 4 KiB buffer — so a guest driver
 * written for QEMU's edu (tools/guest/c/edu-tool.c in hvmpt's tree) drives this one unchanged.
 *
 * Work QEMU does on a timer (the factorial, a DMA transfer) is done at once here: a guest sees
 * the busy bit already clear, as a fast device would show it.
 *
 *   pci:
 *     plugins:
 *       - { name: edu, module: ./edu.js, at: "00:06.0", options: { dmaMaskBits: 28 } }
 */
import { definePciDevice, z } from 'hvmpt';

const REG = { ID: 0x00, LIVE: 0x04, FACT: 0x08, STATUS: 0x20, IRQ_STATUS: 0x24, IRQ_RAISE: 0x60, IRQ_ACK: 0x64, DMA_SRC: 0x80, DMA_DST: 0x88, DMA_COUNT: 0x90, DMA_CMD: 0x98 };
const STATUS_COMPUTING = 0x01;
const STATUS_IRQ_FACT = 0x80;
const DMA_START = 0x1;
const DMA_FROM_EDU = 0x2;
const DMA_IRQ = 0x4;
const IRQ_FACT = 0x1;
const IRQ_DMA = 0x100;
const BUFFER = 0x40000;
const BUFFER_SIZE = 4096;

export default definePciDevice({
  name: 'edu',
  summary: "QEMU's educational device: liveness, factorial, interrupts (INTx, MSI) and a DMA engine",
  options: z.strictObject({
    /** Bits of address the DMA engine drives (QEMU's dma_mask: 28 by default). */
    dmaMaskBits: z.number().int().min(12).max(64).default(28),
  }),
  layout: () => ({
    vendorId: 0x1234,
    deviceId: 0x11e8,
    classCode: 0x00ff00,
    revision: 0x10,
    subsystemVendorId: 0x1af4,
    subsystemId: 0x1100,
    interruptPin: 'A',
    bars: [{ index: 0, kind: 'mem32', size: 1 << 20 }],
    msi: { vectors: 1, address64: true },
  }),
  create(ctx, options) {
    const mask = options.dmaMaskBits === 64 ? (1n << 64n) - 1n : (1n << BigInt(options.dmaMaskBits)) - 1n;
    let live = 0;
    let fact = 0;
    let status = 0;
    let irqStatus = 0;
    /** The DMA registers, 64-bit each, written as two 32-bit halves. */
    const dma = { src: 0n, dst: 0n, count: 0n, cmd: 0n };
    const buffer = new Uint8Array(BUFFER_SIZE);

    const raise = (bits) => {
      irqStatus = (irqStatus | bits) >>> 0;
      if (irqStatus === 0) return;
      if (ctx.message(0) === 'off') ctx.intx(true);
    };
    const lower = (bits) => {
      irqStatus = (irqStatus & ~bits) >>> 0;
      if (irqStatus === 0 && ctx.messageMode() === 'off') ctx.intx(false);
    };
    const factorial = (n) => {
      let v = 1;
      for (let i = n; i > 1; i--) v = Math.imul(v, i) >>> 0;
      return v;
    };
    const inBuffer = (address, count) => address >= BigInt(BUFFER) && address + count <= BigInt(BUFFER + BUFFER_SIZE);
    const runDma = () => {
      const count = dma.count;
      if (dma.cmd & BigInt(DMA_FROM_EDU)) {
        if (!inBuffer(dma.src, count)) throw new Error(`DMA from the edu buffer at 0x${dma.src.toString(16)} (+${count}) outside it`);
        const at = Number(dma.src) - BUFFER;
        ctx.dma.write(dma.dst & mask, buffer.subarray(at, at + Number(count)));
      } else {
        if (!inBuffer(dma.dst, count)) throw new Error(`DMA to the edu buffer at 0x${dma.dst.toString(16)} (+${count}) outside it`);
        buffer.set(ctx.dma.read(dma.src & mask, Number(count)), Number(dma.dst) - BUFFER);
      }
      dma.cmd &= ~BigInt(DMA_START);
      if (dma.cmd & BigInt(DMA_IRQ)) raise(IRQ_DMA);
    };
    /** One 32-bit half of a 64-bit DMA register. */
    const half = (value, offset, v) => (offset & 4 ? (value & 0xffff_ffffn) | (BigInt(v) << 32n) : (value & ~0xffff_ffffn) | BigInt(v));
    const pick = (value, offset) => Number((offset & 4 ? value >> 32n : value) & 0xffff_ffffn);
    const dmaKey = (offset) => (offset < REG.DMA_DST ? 'src' : offset < REG.DMA_COUNT ? 'dst' : offset < REG.DMA_CMD ? 'count' : 'cmd');

    return {
      bars: {
        0: {
          read(offset, size) {
            if (offset >= BUFFER && offset + size <= BUFFER + BUFFER_SIZE) {
              let v = 0;
              for (let i = size - 1; i >= 0; i--) v = (v << 8) | buffer[offset - BUFFER + i];
              return v >>> 0;
            }
            if (size !== 4) return 0xffff_ffff;
            if (offset >= REG.DMA_SRC && offset < REG.DMA_CMD + 8) return pick(dma[dmaKey(offset)], offset);
            switch (offset) {
              case REG.ID:
                return 0x010000ed;
              case REG.LIVE:
                return ~live >>> 0;
              case REG.FACT:
                return fact;
              case REG.STATUS:
                return status;
              case REG.IRQ_STATUS:
                return irqStatus;
              default:
                return 0xffff_ffff;
            }
          },
          write(offset, size, value) {
            if (offset >= BUFFER && offset + size <= BUFFER + BUFFER_SIZE) {
              for (let i = 0; i < size; i++) buffer[offset - BUFFER + i] = (value >>> (8 * i)) & 0xff;
              return;
            }
            if (size !== 4) return;
            if (offset >= REG.DMA_SRC && offset < REG.DMA_CMD + 8) {
              const key = dmaKey(offset);
              if (key === 'cmd' && dma.cmd & BigInt(DMA_START)) return;
              dma[key] = half(dma[key], offset, value);
              if (key === 'cmd' && (offset & 4) === 0 && value & DMA_START) runDma();
              return;
            }
            switch (offset) {
              case REG.LIVE:
                live = value;
                return;
              case REG.FACT:
                if (status & STATUS_COMPUTING) return;
                status |= STATUS_COMPUTING;
                fact = factorial(value);
                status &= ~STATUS_COMPUTING;
                if (status & STATUS_IRQ_FACT) raise(IRQ_FACT);
                return;
              case REG.STATUS:
                status = (status & STATUS_COMPUTING) | (value & STATUS_IRQ_FACT);
                return;
              case REG.IRQ_RAISE:
                raise(value);
                return;
              case REG.IRQ_ACK:
                lower(value);
                return;
            }
          },
        },
      },
      reset() {
        live = fact = status = irqStatus = 0;
        dma.src = dma.dst = dma.count = dma.cmd = 0n;
        buffer.fill(0);
      },
      save: () => ({ live, fact, status, irqStatus, dma: { src: String(dma.src), dst: String(dma.dst), count: String(dma.count), cmd: String(dma.cmd) }, buffer: Buffer.from(buffer).toString('base64') }),
      restore(state) {
        const s = /** @type {{ live: number, fact: number, status: number, irqStatus: number, dma: Record<'src'|'dst'|'count'|'cmd', string>, buffer: string }} */ (/** @type {unknown} */ (state));
        ({ live, fact, status, irqStatus } = s);
        for (const k of /** @type {const} */ (['src', 'dst', 'count', 'cmd'])) dma[k] = BigInt(s.dma[k]);
        buffer.set(Buffer.from(s.buffer, 'base64'));
      },
    };
  },
});
