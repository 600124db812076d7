// @ts-check
/**
 * A virtio-blk disk as a hvmpt plug-in, backed by an image file: a modern (virtio 1.0) PCI
 * device — the virtio vendor capabilities in config space, common/ISR/device/notify structures
 * in BAR 4, MSI-X in BAR 1 — with one split virtqueue. SeaBIOS boots from it (its own
 * virtio-blk driver polls the used ring) and Linux's virtio_blk uses it with MSI-X. Requests
 * are served as the guest notifies the queue: descriptors and data move only through the DMA
 * API, so the protection map decides what the disk may touch.
 *
 *   pci:
 *     plugins:
 *       - { name: disk, module: ./virtio-blk.js, at: "00:05.0", options: { image: /var/lib/disk.img } }
 *
 * `image` is resolved against hvmpt's working directory; `readOnly` refuses writes (and
 * offers VIRTIO_BLK_F_RO).
 */
import { fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { definePciDevice, isDmaRefused, z } from 'hvmpt';

const SECTOR = 512;
const QUEUE_MAX = 256;
/** Where each virtio structure lives in BAR 4. */
const AREA = { common: 0x0000, isr: 0x1000, device: 0x2000, notify: 0x3000 };
const NOTIFY_MULTIPLIER = 4;
const CFG = { common: 1, notify: 2, isr: 3, device: 4 };
const F_RO = 5;
const F_VERSION_1 = 32;
const STATUS_FEATURES_OK = 8;
const STATUS_NEEDS_RESET = 64;
const NO_VECTOR = 0xffff;
const DESC_NEXT = 1;
const DESC_WRITE = 2;
const REQ = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8 };
const REQ_STATUS = { OK: 0, IOERR: 1, UNSUPP: 2 };

/** A virtio PCI capability (struct virtio_pci_cap, and the notify one's multiplier). */
const virtioCap = (type, offset, length, extra = []) => ({
  id: 0x09,
  length: 16 + extra.length * 4,
  registers: [
    { offset: 2, size: /** @type {1} */ (1), value: 16 + extra.length * 4 },
    { offset: 3, size: /** @type {1} */ (1), value: type },
    { offset: 4, size: /** @type {1} */ (1), value: 4 },
    { offset: 8, size: /** @type {4} */ (4), value: offset },
    { offset: 12, size: /** @type {4} */ (4), value: length },
    ...extra.map((v, i) => ({ offset: 16 + i * 4, size: /** @type {4} */ (4), value: v })),
  ],
});

export default definePciDevice({
  name: 'virtio-blk',
  summary: 'a virtio 1.0 block device (one queue, MSI-X) backed by a disk image',
  options: z.strictObject({
    image: z.string().min(1),
    readOnly: z.boolean().default(false),
    serial: z.string().max(20).default('hvmpt-virtio-blk'),
  }),
  layout: () => ({
    vendorId: 0x1af4,
    deviceId: 0x1042,
    classCode: 0x018000,
    revision: 1,
    subsystemVendorId: 0x1af4,
    subsystemId: 0x1100,
    interruptPin: 'A',
    bars: [
      { index: 1, kind: 'mem32', size: 0x1000 },
      { index: 4, kind: 'mem32', size: 0x4000 },
    ],
    msix: { vectors: 2, bar: 1, tableOffset: 0, pbaOffset: 0x800 },
    capabilities: [
      virtioCap(CFG.common, AREA.common, 0x38),
      virtioCap(CFG.isr, AREA.isr, 1),
      virtioCap(CFG.device, AREA.device, 0x20),
      virtioCap(CFG.notify, AREA.notify, 4, [NOTIFY_MULTIPLIER]),
    ],
  }),
  create(ctx, o) {
    const file = resolve(o.image);
    const fd = openSync(file, o.readOnly ? 'r' : 'r+');
    const sectors = BigInt(Math.floor(fstatSync(fd).size / SECTOR));
    const features = (1n << BigInt(F_VERSION_1)) | (o.readOnly ? 1n << BigInt(F_RO) : 0n);

    const s = {
      deviceFeatureSelect: 0,
      driverFeatureSelect: 0,
      driverFeatures: 0n,
      configVector: NO_VECTOR,
      status: 0,
      isr: 0,
      queue: { size: QUEUE_MAX, vector: NO_VECTOR, enabled: 0, desc: 0n, avail: 0n, used: 0n, lastAvail: 0 },
    };
    const reset = () => {
      Object.assign(s, { deviceFeatureSelect: 0, driverFeatureSelect: 0, driverFeatures: 0n, configVector: NO_VECTOR, status: 0, isr: 0 });
      s.queue = { size: QUEUE_MAX, vector: NO_VECTOR, enabled: 0, desc: 0n, avail: 0n, used: 0n, lastAvail: 0 };
      ctx.intx(false);
    };

    const u16 = (b, at) => b[at] | (b[at + 1] << 8);
    const le = (value, size) => {
      const b = new Uint8Array(size);
      for (let i = 0; i < size; i++) b[i] = Number((BigInt(value) >> BigInt(8 * i)) & 0xffn);
      return b;
    };
    const interrupt = (vector) => {
      if (ctx.messageMode() === 'msix') {
        if (vector !== NO_VECTOR) ctx.message(vector);
        return;
      }
      s.isr |= 1;
      ctx.intx(true);
    };

    /** Serves every request the driver made available since the last notify. */
    const serve = () => {
      const q = s.queue;
      if (!q.enabled || (s.status & STATUS_FEATURES_OK) === 0 || (s.status & STATUS_NEEDS_RESET) !== 0) return;
      const availIdx = u16(ctx.dma.read(q.avail + 2n, 2), 0);
      let served = 0;
      while (q.lastAvail !== availIdx) {
        const head = u16(ctx.dma.read(q.avail + 4n + BigInt((q.lastAvail % q.size) * 2), 2), 0);
        const written = request(head);
        const usedIdx = u16(ctx.dma.read(q.used + 2n, 2), 0);
        const elem = new Uint8Array(8);
        elem.set(le(head, 4), 0);
        elem.set(le(written, 4), 4);
        ctx.dma.write(q.used + 4n + BigInt((usedIdx % q.size) * 8), elem);
        ctx.dma.write(q.used + 2n, le((usedIdx + 1) & 0xffff, 2));
        q.lastAvail = (q.lastAvail + 1) & 0xffff;
        served++;
      }
      if (served > 0) interrupt(q.vector);
    };

    /**
     * A ring or buffer the rules keep the device's DMA from: as virtio 1.0 (2.1.1) has a device
     * that cannot go on, DEVICE_NEEDS_RESET and a configuration change interrupt — the driver
     * resets the device — rather than a failed device.
     */
    const notified = () => {
      try {
        serve();
      } catch (err) {
        if (!isDmaRefused(err)) throw err;
        ctx.log(`virtqueue DMA refused (${err.refusal.reason}): the device needs a reset`);
        s.status |= STATUS_NEEDS_RESET;
        if (ctx.messageMode() === 'msix') {
          if (s.configVector !== NO_VECTOR) ctx.message(s.configVector);
        } else {
          s.isr |= 2;
          ctx.intx(true);
        }
      }
    };

    /** One request: its chain's readable bytes (header, then data for writes) and writable buffers (data for reads, then the status byte). */
    const request = (head) => {
      const q = s.queue;
      const out = [];
      const ins = [];
      for (let i = head, n = 0; ; n++) {
        if (n >= q.size) throw new Error(`descriptor chain from ${head} loops`);
        const d = ctx.dma.read(q.desc + BigInt(i * 16), 16);
        const v = new DataView(d.buffer, d.byteOffset, 16);
        const addr = v.getBigUint64(0, true);
        const len = v.getUint32(8, true);
        const flags = v.getUint16(12, true);
        if (flags & DESC_WRITE) ins.push({ addr, len });
        else out.push(ctx.dma.read(addr, len));
        if (!(flags & DESC_NEXT)) break;
        i = v.getUint16(14, true);
      }
      const readable = new Uint8Array(out.reduce((n, b) => n + b.length, 0));
      out.reduce((at, b) => (readable.set(b, at), at + b.length), 0);
      if (readable.length < 16 || ins.length === 0) throw new Error(`a request without its header or status byte (chain ${head})`);
      const hv = new DataView(readable.buffer, 0, 16);
      const type = hv.getUint32(0, true);
      const sector = hv.getBigUint64(8, true);
      const room = ins.reduce((n, b) => n + b.len, 0);
      /** Fills the writable buffers in order with `data`, then the status byte. */
      const reply = (data, status) => {
        const all = new Uint8Array(data.length + 1);
        all.set(data);
        all[data.length] = status;
        let at = 0;
        for (const b of ins) {
          const n = Math.min(b.len, all.length - at);
          if (n <= 0) break;
          ctx.dma.write(b.addr, all.subarray(at, at + n));
          at += n;
        }
        return at;
      };
      const inRange = (bytes) => sector + BigInt(Math.ceil(bytes / SECTOR)) <= sectors;
      switch (type) {
        case REQ.IN: {
          const n = room - 1;
          if (!inRange(n)) return reply(new Uint8Array(0), REQ_STATUS.IOERR);
          const data = new Uint8Array(n);
          readSync(fd, data, 0, n, Number(sector) * SECTOR);
          return reply(data, REQ_STATUS.OK);
        }
        case REQ.OUT: {
          const data = readable.subarray(16);
          if (o.readOnly || !inRange(data.length)) return reply(new Uint8Array(0), REQ_STATUS.IOERR);
          writeSync(fd, data, 0, data.length, Number(sector) * SECTOR);
          return reply(new Uint8Array(0), REQ_STATUS.OK);
        }
        case REQ.FLUSH:
          return reply(new Uint8Array(0), REQ_STATUS.OK);
        case REQ.GET_ID: {
          const id = new Uint8Array(20);
          id.set(new TextEncoder().encode(o.serial).subarray(0, 20));
          return reply(id.subarray(0, Math.min(20, room - 1)), REQ_STATUS.OK);
        }
        default:
          return reply(new Uint8Array(0), REQ_STATUS.UNSUPP);
      }
    };

    /** The common configuration structure's fields: offset → [size, read, write]. */
    const common = {
      0x00: [4, () => s.deviceFeatureSelect, (v) => (s.deviceFeatureSelect = v)],
      0x04: [4, () => (s.deviceFeatureSelect < 2 ? Number((features >> BigInt(32 * s.deviceFeatureSelect)) & 0xffff_ffffn) : 0), () => {}],
      0x08: [4, () => s.driverFeatureSelect, (v) => (s.driverFeatureSelect = v)],
      0x0c: [4, () => (s.driverFeatureSelect < 2 ? Number((s.driverFeatures >> BigInt(32 * s.driverFeatureSelect)) & 0xffff_ffffn) : 0), (v) => {
        if (s.driverFeatureSelect > 1) return;
        const shift = BigInt(32 * s.driverFeatureSelect);
        s.driverFeatures = (s.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v >>> 0) << shift);
      }],
      0x10: [2, () => s.configVector, (v) => (s.configVector = v)],
      0x12: [2, () => 1, () => {}],
      0x14: [1, () => s.status, (v) => {
        if (v === 0) return reset();
        // FEATURES_OK holds only if the driver took nothing we did not offer, and took VERSION_1.
        if (v & STATUS_FEATURES_OK && ((s.driverFeatures & ~features) !== 0n || !(s.driverFeatures & (1n << BigInt(F_VERSION_1))))) v &= ~STATUS_FEATURES_OK;
        s.status = v | (s.status & STATUS_NEEDS_RESET);
      }],
      0x15: [1, () => 0, () => {}],
      0x16: [2, () => 0, () => {}],
      0x18: [2, () => s.queue.size, (v) => (s.queue.size = Math.min(Math.max(v, 1), QUEUE_MAX))],
      0x1a: [2, () => s.queue.vector, (v) => (s.queue.vector = v)],
      0x1c: [2, () => s.queue.enabled, (v) => (s.queue.enabled = v & 1)],
      0x1e: [2, () => 0, () => {}],
    };
    const addresses = { 0x20: 'desc', 0x28: 'avail', 0x30: 'used' };

    const readCommon = (offset, size) => {
      const a = offset & ~7;
      if (addresses[a] !== undefined) {
        const v = s.queue[addresses[a]];
        return Number((offset & 4 ? v >> 32n : v) & 0xffff_ffffn);
      }
      const f = common[offset];
      return f !== undefined && f[0] === size ? f[1]() >>> 0 : 0;
    };
    const writeCommon = (offset, size, value) => {
      const a = offset & ~7;
      if (addresses[a] !== undefined && size === 4) {
        const key = addresses[a];
        const v = s.queue[key];
        s.queue[key] = offset & 4 ? (v & 0xffff_ffffn) | (BigInt(value >>> 0) << 32n) : (v & ~0xffff_ffffn) | BigInt(value >>> 0);
        return;
      }
      const f = common[offset];
      if (f !== undefined && f[0] === size) f[2](value);
    };

    const deviceConfig = new Uint8Array(0x20);
    deviceConfig.set(le(sectors, 8), 0);

    return {
      bars: {
        4: {
          read(offset, size) {
            if (offset < AREA.isr) return readCommon(offset, size);
            if (offset === AREA.isr) {
              const v = s.isr;
              s.isr = 0;
              ctx.intx(false);
              return v;
            }
            if (offset >= AREA.device && offset + size <= AREA.device + deviceConfig.length) {
              let v = 0;
              for (let i = size - 1; i >= 0; i--) v = (v << 8) | deviceConfig[offset - AREA.device + i];
              return v >>> 0;
            }
            return 0;
          },
          write(offset, size, value) {
            if (offset < AREA.isr) return writeCommon(offset, size, value);
            if (offset >= AREA.notify && offset < AREA.notify + 4 && (value & 0xffff) === 0) notified();
          },
        },
      },
      // The image stays open for the device's life; the process ends it.
      reset,
    };
  },
});
