/**
 * The VFIO back-end's config space, against a fake device fd that speaks the vfio-pci ABI
 * (device info, region info, pread/pwrite at the config region's offset, reset) and counts the
 * system calls: a Command write needs the bits the guest does not own, and the back-end serves
 * them from what it last read or wrote, not from one more pread per write (a driver that masks
 * INTx writes Command twice an interrupt).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIG_REGION } from '../../src/hw/pci/backend.js';
import { buildRealFunction } from '../../src/hw/pci/real.js';
import { attachVfio } from '../../src/host/vfio/attached.js';
import { DEVICE_FLAGS, DEVICE_INFO, HEAD, IOCTL, REGION_INFO } from '../../src/host/vfio/abi.js';
import type { Sys } from '../../src/native/sys.js';
import { endpointBytes } from '../pci/helpers.js';

const CONFIG_OFFSET = 7 * 2 ** 40;
const DEVICE_FD = 40;

/** A vfio-pci device fd over `config`: only what attachVfio and config access use. */
function fakeDevice(config: Uint8Array): { sys: Sys; calls: { pread: number; pwrite: number; reset: number } } {
  const calls = { pread: 0, pwrite: 0, reset: 0 };
  const at = (fd: number, offset: number, n: number): number => {
    assert.equal(fd, DEVICE_FD);
    const o = offset - CONFIG_OFFSET;
    assert.ok(o >= 0 && o + n <= config.length, `an access inside the config region: 0x${offset.toString(16)}+${n}`);
    return o;
  };
  const sys = {
    ioctlBuffer(fd: number, request: number, data: Uint8Array): number {
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (request === IOCTL.DEVICE_GET_INFO) {
        v.setUint32(HEAD.flags, DEVICE_FLAGS.PCI | DEVICE_FLAGS.RESET, true);
        v.setUint32(DEVICE_INFO.numRegions, 8, true);
        v.setUint32(DEVICE_INFO.numIrqs, 0, true);
        return 0;
      }
      if (request === IOCTL.DEVICE_GET_REGION_INFO) {
        const index = v.getUint32(REGION_INFO.index, true);
        v.setUint32(HEAD.flags, index === CONFIG_REGION ? 3 : 0, true);
        v.setBigUint64(REGION_INFO.size, index === CONFIG_REGION ? BigInt(config.length) : 0n, true);
        v.setBigUint64(REGION_INFO.offset, BigInt(index) << 40n, true);
        return 0;
      }
      throw new Error(`unexpected ioctl 0x${request.toString(16)} on fd ${fd}`);
    },
    ioctlValue(_fd: number, request: number): number {
      if (request !== IOCTL.DEVICE_RESET) throw new Error(`unexpected ioctl 0x${request.toString(16)}`);
      calls.reset++;
      return 0;
    },
    pread(fd: number, buf: Uint8Array, offset: number): number {
      calls.pread++;
      const o = at(fd, offset, buf.length);
      buf.set(config.subarray(o, o + buf.length));
      return buf.length;
    },
    pwrite(fd: number, buf: Uint8Array, offset: number): number {
      calls.pwrite++;
      config.set(buf, at(fd, offset, buf.length));
      return buf.length;
    },
  } as unknown as Sys;
  return { sys, calls };
}

test('a Command write through VFIO reads the device once, then keeps what it wrote; another register written or a reset reads it again', () => {
  // An endpoint with memory decode and bus mastering on as the host left it, and a reserved bit set.
  const bytes = endpointBytes({ vendor: 0x1234, device: 0x11e8 });
  new DataView(bytes.buffer).setUint16(0x04, 0x8006, true);
  const { sys, calls } = fakeDevice(bytes);
  const attached = attachVfio(sys, { kind: 'vfio', address: '0000:00:05.0', container: 41, group: 42, device: DEVICE_FD }, {
    description: { backend: 'vfio', source: 'fake', regions: [], interrupts: { intx: 1, msi: 0, msix: 0 }, reset: ['flr'] },
    rom: undefined,
  });
  const fn = buildRealFunction({ id: 'edu', backend: attached.config }).fn;
  const writeCommand = (value: number): number => {
    const before = calls.pread;
    fn.write(0x04, 2, value);
    return calls.pread - before;
  };
  // The guest's value for what it owns; the device's for decode (hvmpt emulates it) and the reserved bit.
  // Building the function read Command once (its descriptor's start value); writes need no more.
  assert.equal(writeCommand(0x0406), 0, 'the first Command write needs no read');
  assert.equal(new DataView(bytes.buffer).getUint16(0x04, true), 0x8406);
  for (let i = 0; i < 100; i++) {
    assert.equal(writeCommand(0x0006), 0, 'INTx unmasked with no read');
    assert.equal(writeCommand(0x0406), 0, 'INTx masked with no read');
  }
  assert.equal(new DataView(bytes.buffer).getUint16(0x04, true), 0x8406, 'the device keeps its own decode and reserved bits throughout');
  // Another register written through (Status, clearing an error bit): read again.
  const writes = calls.pwrite;
  fn.write(0x06, 2, 0x8000);
  assert.equal(calls.pwrite - writes, 1, 'the Status write went to the device');
  assert.equal(writeCommand(0x0006), 1);
  assert.equal(writeCommand(0x0406), 0);
  // The device behind it changed (a reset): read again.
  bytes[0x04] = 0x02;
  bytes[0x05] = 0x80;
  attached.reset();
  assert.equal(calls.reset, 1);
  assert.equal(writeCommand(0x0006), 1);
  assert.equal(new DataView(bytes.buffer).getUint16(0x04, true), 0x8006, 'after the reset, the device\'s decode as it is now');
  // A guest read of Command and Status always goes to the device (Status changes by itself).
  const reads = calls.pread;
  fn.read(0x04, 4);
  fn.read(0x04, 4);
  fn.read(0x06, 2);
  assert.equal(calls.pread - reads, 3);
  // The INTx cycle of a driver that masks through Command (uio_pci_generic): Command and Status
  // read, INTx masked; then, from user space, Command read alone and INTx unmasked. One read of
  // the device a cycle: the one that needs Status.
  const cycle = { pread: calls.pread, pwrite: calls.pwrite };
  for (let i = 0; i < 100; i++) {
    fn.read(0x04, 4);
    fn.write(0x04, 2, 0x0406);
    assert.equal(fn.read(0x04, 2), 0x8406, 'the guest\'s bits and the device\'s reserved bit');
    fn.write(0x04, 2, 0x0006);
  }
  assert.equal(calls.pread - cycle.pread, 100);
  assert.equal(calls.pwrite - cycle.pwrite, 200);
});
