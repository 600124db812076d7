/**
 * vfio-user conformance of `hvmpt serve-device`, driven with messages this test builds byte by
 * byte from the tables of QEMU's docs/interop/vfio-user.rst (not from hvmpt's protocol module):
 * version negotiation, device/region/IRQ info, config and BAR reads and writes, SET_IRQS with
 * eventfds passed as SCM_RIGHTS (INTx automasked until unmasked, MSI), DMA_MAP with an fd the
 * server mmaps and without one (the server then sends DMA_READ/DMA_WRITE, answered here),
 * reset; and the errors the specification asks for: commands before VERSION, bad lengths,
 * unknown commands, a missing fd, overlapping maps, a header that cannot be framed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadSys } from '../../src/native/index.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, POLLIN } from '../../src/native/sys.js';
import { REPO_ROOT } from '../helpers/paths.js';

const sys = loadSys();
const dir = mkdtempSync(join(tmpdir(), 'hvmpt-vfio-user-'));
const socket = join(dir, 'edu.sock');
let server: ChildProcess;

/** `hvmpt serve-device MODULE --socket PATH ...`, once it listens; its stderr collected in `log.text`. */
async function startServer(module: string, path: string, name: string, extra: string[] = []): Promise<{ process: ChildProcess; log: { text: string } }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'hvmpt.mjs'), 'serve-device', module, '--socket', path, '--name', name, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = { text: '' };
  child.stderr!.on('data', (d: Buffer) => (log.text += d.toString()));
  for (let i = 0; i < 600 && !log.text.includes(`(${name}) as a vfio-user server`); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(log.text, new RegExp(`\\(${name}\\) as a vfio-user server`), log.text);
  return { process: child, log };
}

before(async () => {
  server = (await startServer(join(REPO_ROOT, 'examples', 'plugins', 'edu.js'), socket, 'edu')).process;
});

after(() => {
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- messages by hand

interface Reply {
  id: number;
  command: number;
  size: number;
  flags: number;
  error: number;
  body: DataView;
  bytes: Uint8Array;
  fds: number[];
}

function message(id: number, command: number, body: Uint8Array = new Uint8Array(0), size = 16 + body.length): Uint8Array {
  const m = new Uint8Array(16 + body.length);
  const v = new DataView(m.buffer);
  v.setUint16(0, id, true);
  v.setUint16(2, command, true);
  v.setUint32(4, size, true);
  v.setUint32(8, 0, true); // command, reply wanted
  m.set(body, 16);
  return m;
}

function bytes(n: number, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(n);
  fill(new DataView(b.buffer));
  return b;
}

function recvExactly(fd: number, n: number, fds: number[]): Uint8Array | undefined {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const [rev] = sys.poll([{ fd, events: POLLIN }], 10_000);
    if (rev === 0) throw new Error('no reply within 10 s');
    const r = sys.recvmsg(fd, out.subarray(got));
    fds.push(...r.fds);
    if (r.bytes === 0) return undefined;
    got += r.bytes;
  }
  return out;
}

function receive(fd: number): Reply | undefined {
  const fds: number[] = [];
  const head = recvExactly(fd, 16, fds);
  if (head === undefined) return undefined;
  const hv = new DataView(head.buffer);
  const size = hv.getUint32(4, true);
  const body = recvExactly(fd, size - 16, fds)!;
  return { id: hv.getUint16(0, true), command: hv.getUint16(2, true), size, flags: hv.getUint32(8, true), error: hv.getUint32(12, true), body: new DataView(body.buffer), bytes: body, fds };
}

class Client {
  readonly fd = sys.unixSocket();
  private id = 100;
  /** Requests the server sent us meanwhile (DMA_READ/DMA_WRITE), answered by `serve`. */
  serve: ((m: Reply) => Uint8Array) | undefined;
  constructor(path = socket) {
    sys.connectUnix(this.fd, path);
  }
  send(raw: Uint8Array, fds: number[] = []): void {
    sys.sendmsg(this.fd, raw, fds);
  }
  /** Sends a command and returns its reply (answering the server's own requests on the way). */
  ask(command: number, body?: Uint8Array, fds: number[] = []): Reply {
    const id = this.id++;
    this.send(message(id, command, body), fds);
    return this.replyTo(id);
  }
  replyTo(id: number): Reply {
    for (;;) {
      const r = receive(this.fd);
      if (r === undefined) throw new Error('the server closed the connection');
      if ((r.flags & 0xf) === 0 && this.serve !== undefined) {
        const body = this.serve(r);
        const out = message(r.id, r.command, body);
        new DataView(out.buffer).setUint32(8, 1, true);
        this.send(out);
        continue;
      }
      assert.equal(r.flags & 0xf, 1, 'a reply');
      assert.equal(r.id, id, 'the reply carries the command\'s message ID');
      return r;
    }
  }
  close(): void {
    sys.close(this.fd);
  }
}

const ERROR = 0x20;
const EINVAL = 22;
const isError = (r: Reply, errno: number): void => {
  assert.equal(r.flags & ERROR, ERROR, `error bit on a reply to command ${r.command}`);
  assert.equal(r.error, errno);
  assert.equal(r.size, 16, 'an error reply is the header alone');
};

function version(c: Client): Reply {
  const json = new TextEncoder().encode('{"capabilities":{"max_msg_fds":8}}\0');
  return c.ask(1, bytes(4 + json.length, (v) => {
    v.setUint16(0, 0, true);
    v.setUint16(2, 1, true);
    new Uint8Array(v.buffer).set(json, 4);
  }));
}

const regionRead = (c: Client, region: number, offset: number, count: number): Reply =>
  c.ask(9, bytes(16, (v) => {
    v.setBigUint64(0, BigInt(offset), true);
    v.setUint32(8, region, true);
    v.setUint32(12, count, true);
  }));
const regionWrite = (c: Client, region: number, offset: number, value: number, count = 4): Reply =>
  c.ask(10, bytes(16 + count, (v) => {
    v.setBigUint64(0, BigInt(offset), true);
    v.setUint32(8, region, true);
    v.setUint32(12, count, true);
    for (let i = 0; i < count; i++) v.setUint8(16 + i, (value >>> (8 * i)) & 0xff);
  }));
const read32 = (c: Client, region: number, offset: number): number => {
  const r = regionRead(c, region, offset, 4);
  assert.equal(r.flags & ERROR, 0, `read of region ${region} at 0x${offset.toString(16)}`);
  return r.body.getUint32(16, true);
};
const setIrqs = (c: Client, flags: number, index: number, start: number, count: number, fds: number[] = [], data: Uint8Array = new Uint8Array(0)): Reply =>
  c.ask(8, bytes(20 + data.length, (v) => {
    v.setUint32(0, 20 + data.length, true);
    v.setUint32(4, flags, true);
    v.setUint32(8, index, true);
    v.setUint32(12, start, true);
    v.setUint32(16, count, true);
    new Uint8Array(v.buffer).set(data, 20);
  }), fds);
const count = (fd: number): bigint => sys.eventfdRead(fd) ?? 0n;

test('vfio-user: nothing before VERSION; the version and capabilities negotiated; device, region and IRQ info as the spec lays them out', () => {
  const c = new Client();
  try {
    isError(regionRead(c, 7, 0, 4), EINVAL);
    const v = version(c);
    assert.equal(v.flags & ERROR, 0);
    assert.equal(v.body.getUint16(0, true), 0, 'major');
    assert.equal(v.body.getUint16(2, true), 1, 'minor: at most what the client proposed');
    const caps = JSON.parse(new TextDecoder().decode(v.bytes.subarray(4)).replace(/\0$/, '')) as { capabilities: Record<string, number> };
    assert.equal(caps.capabilities['max_data_xfer_size'], 1 << 20);

    const info = c.ask(4, bytes(16, (x) => x.setUint32(0, 16, true)));
    assert.deepEqual([info.body.getUint32(0, true), info.body.getUint32(4, true), info.body.getUint32(8, true), info.body.getUint32(12, true)], [16, 3, 9, 5], 'argsz, RESET|PCI, 9 regions, 5 IRQ types');
    const region = (i: number): Reply => c.ask(5, bytes(32, (x) => {
      x.setUint32(0, 32, true);
      x.setUint32(8, i, true);
    }));
    const bar0 = region(0);
    assert.equal(bar0.body.getBigUint64(16, true), 1n << 20n, 'BAR0: 1 MiB');
    assert.equal(bar0.body.getUint32(4, true), 3, 'read and write, no mmap (handlers)');
    assert.equal(region(7).body.getBigUint64(16, true), 256n, 'config space');
    assert.equal(region(1).body.getBigUint64(16, true), 0n);
    isError(region(9), EINVAL);
    const irq = (i: number): Reply => c.ask(7, bytes(16, (x) => {
      x.setUint32(0, 16, true);
      x.setUint32(8, i, true);
    }));
    assert.equal(irq(0).body.getUint32(12, true), 1, 'INTx');
    assert.equal(irq(0).body.getUint32(4, true) & 7, 7, 'eventfd, maskable, automasked');
    assert.equal(irq(1).body.getUint32(12, true), 1, 'one MSI vector');
    assert.equal(irq(2).body.getUint32(12, true), 0, 'no MSI-X');

    assert.equal(read32(c, 7, 0), 0x11e81234, 'config: vendor and device');
    assert.equal(read32(c, 0, 0), 0x010000ed, 'BAR0: the edu ID register');
    regionWrite(c, 0, 4, 0x5a5a0000);
    assert.equal(read32(c, 0, 4), ~0x5a5a0000 >>> 0, 'liveness');
    regionWrite(c, 0, 8, 5);
    assert.equal(read32(c, 0, 8), 120, 'factorial');
  } finally {
    c.close();
  }
});

test('vfio-user errors: bad lengths, out-of-range accesses, unknown commands, a missing fd, and a header that cannot be framed', () => {
  const c = new Client();
  try {
    version(c);
    isError(c.ask(9, new Uint8Array(8)), EINVAL); // REGION_READ with half its fields
    isError(c.ask(10, bytes(16 + 2, (v) => {
      v.setUint32(8, 0, true);
      v.setUint32(12, 4, true); // says 4 bytes, carries 2
    })), EINVAL);
    isError(regionRead(c, 0, (1 << 20) - 2, 4), EINVAL); // past BAR0's end
    isError(regionRead(c, 7, 0, (1 << 20) + 1), EINVAL); // more than max_data_xfer_size
    isError(c.ask(99), EINVAL);
    isError(c.ask(16, bytes(8, (v) => v.setUint32(0, 8, true))), 95); // DEVICE_FEATURE: none offered
    isError(c.ask(4, bytes(16, (v) => v.setUint32(0, 4, true))), EINVAL); // argsz below the structure
    isError(setIrqs(c, 4 | 32, 0, 0, 1), EINVAL); // DATA_EVENTFD | TRIGGER for one vector, no fd sent
    isError(setIrqs(c, 1 | 2 | 32, 0, 0, 1), EINVAL); // two DATA flags
    isError(setIrqs(c, 4 | 32, 2, 0, 1, [sys.eventfd(0, EFD_CLOEXEC)]), EINVAL); // MSI-X: the device has none
    isError(c.ask(1, new Uint8Array(4)), EINVAL); // VERSION again
    assert.equal(read32(c, 0, 0), 0x010000ed, 'the connection survives refused commands');
    // A header whose size is smaller than a header: the stream is lost; an error, then the server closes.
    c.send(message(7, 9, new Uint8Array(0), 8));
    const r = receive(c.fd)!;
    isError(r, EINVAL);
    assert.equal(receive(c.fd), undefined, 'then the connection closes');
  } finally {
    c.close();
  }
});

test('vfio-user interrupts: INTx through an eventfd, automasked until UNMASK; MSI through its own', () => {
  const c = new Client();
  const trigger = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const msi = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  try {
    version(c);
    assert.equal(setIrqs(c, 4 | 32, 0, 0, 1, [trigger]).flags & ERROR, 0);
    regionWrite(c, 0, 0x60, 0x10001); // raise
    assert.equal(count(trigger), 1n);
    regionWrite(c, 0, 0x60, 0x10002); // still asserted and masked: nothing new
    assert.equal(count(trigger), 0n);
    setIrqs(c, 1 | 16, 0, 0, 1); // DATA_NONE | UNMASK: still asserted, so it fires and masks again
    assert.equal(count(trigger), 1n);
    regionWrite(c, 0, 0x64, 0x10003); // acknowledge: the line drops
    setIrqs(c, 1 | 16, 0, 0, 1);
    assert.equal(count(trigger), 0n, 'no interrupt once acknowledged');

    assert.equal(setIrqs(c, 4 | 32, 1, 0, 1, [msi]).flags & ERROR, 0);
    regionWrite(c, 0, 0x60, 0x1);
    assert.equal(count(msi), 1n, 'MSI vector 0');
    assert.equal(count(trigger), 0n, 'no INTx while MSI is on');
    regionWrite(c, 0, 0x64, 0x1);
    setIrqs(c, 1 | 32, 1, 0, 0); // DATA_NONE | TRIGGER, count 0: MSI off
  } finally {
    c.close();
    sys.close(trigger);
    sys.close(msi);
  }
});

test('vfio-user DMA: a map with an fd the server mmaps, one without (DMA_READ/DMA_WRITE answered here), EEXIST and exact unmaps; reset', () => {
  const c = new Client();
  const file = join(dir, 'guest-ram');
  const ramFd = openSync(file, 'w+');
  ftruncateSync(ramFd, 0x10000);
  try {
    version(c);
    regionWrite(c, 7, 4, 0x0006, 2); // Command: memory decode, bus master
    const map = (address: bigint, size: bigint, fds: number[] = [], offset = 0n): Reply =>
      c.ask(2, bytes(32, (v) => {
        v.setUint32(0, 32, true);
        v.setUint32(4, 3, true);
        v.setBigUint64(8, offset, true);
        v.setBigUint64(16, address, true);
        v.setBigUint64(24, size, true);
      }), fds);
    assert.equal(map(0x100000n, 0x10000n, [ramFd]).flags & ERROR, 0);
    isError(map(0x108000n, 0x1000n), 17); // EEXIST: overlaps
    const pattern = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7 + 3) & 0xff));
    writeSync(ramFd, pattern, 0, 512, 0x100);
    const dma = (src: number, dst: number, len: number, cmd: number): void => {
      for (const [o, v] of [[0x80, src], [0x84, 0], [0x88, dst], [0x8c, 0], [0x90, len], [0x98, cmd | 1]] as const) regionWrite(c, 0, o, v);
    };
    dma(0x100100, 0x40000, 512, 0);
    dma(0x40000, 0x100800, 512, 2);
    const back = Buffer.alloc(512);
    readSync(ramFd, back, 0, 512, 0x800);
    assert.deepEqual(back, pattern, 'the server wrote the fd-backed memory it mmaps');

    // No fd: the server reaches this memory by asking.
    const mine = new Uint8Array(0x1000).map((_, i) => (i * 13 + 1) & 0xff);
    const asked: string[] = [];
    c.serve = (m) => {
      const address = m.body.getBigUint64(0, true);
      const n = Number(m.body.getBigUint64(8, true));
      const at = Number(address - 0x200000n);
      asked.push(`${m.command === 11 ? 'read' : 'write'} 0x${address.toString(16)} ${n}`);
      if (m.command === 11) return bytes(16 + n, (v) => {
        v.setBigUint64(0, address, true);
        v.setBigUint64(8, BigInt(n), true);
        new Uint8Array(v.buffer).set(mine.subarray(at, at + n), 16);
      });
      mine.set(m.bytes.subarray(16, 16 + n), at);
      return bytes(12, (v) => {
        v.setBigUint64(0, address, true);
        v.setUint32(8, n, true);
      });
    };
    assert.equal(map(0x200000n, 0x1000n).flags & ERROR, 0);
    const expect = mine.slice(0x10, 0x10 + 256);
    dma(0x200010, 0x40000, 256, 0);
    dma(0x40000, 0x200400, 256, 2);
    assert.deepEqual(asked, ['read 0x200010 256', 'write 0x200400 256']);
    assert.deepEqual([...mine.subarray(0x400, 0x500)], [...expect]);

    const unmap = (address: bigint, size: bigint): Reply =>
      c.ask(3, bytes(24, (v) => {
        v.setUint32(0, 24, true);
        v.setBigUint64(8, address, true);
        v.setBigUint64(16, size, true);
      }));
    isError(unmap(0x100000n, 0x1000n), EINVAL); // not exactly a mapping
    const u = unmap(0x100000n, 0x10000n);
    assert.equal(u.flags & ERROR, 0);
    assert.equal(u.body.getBigUint64(8, true), 0x100000n, 'the reply echoes the entry');

    regionWrite(c, 0, 4, 0x1);
    assert.equal(c.ask(13).flags & ERROR, 0, 'DEVICE_RESET');
    assert.equal(read32(c, 0, 4), 0xffff_ffff, 'liveness back to its reset value');
    assert.equal(read32(c, 7, 4) & 0x7, 0, 'Command reset');
  } finally {
    c.close();
    closeSync(ramFd);
  }
  assert.ok(existsSync(socket), 'the server keeps serving after its client left');
});

test('serve-device stops a plug-in call that hangs: that command answered with all ones, the device failed once, the server serving on', async () => {
  // A plug-in file in a bare directory: its import of 'hvmpt' is the serving hvmpt's.
  const plugin = join(dir, 'hang.js');
  writeFileSync(
    plugin,
    `import { definePciDevice, z } from 'hvmpt';\n` +
      `export default definePciDevice({ name: 'hang', summary: 'hangs on a read at 0x10', options: z.strictObject({}),\n` +
      `  layout: () => ({ vendorId: 0x1234, deviceId: 0x99, classCode: 0xff0000, bars: [{ index: 0, kind: 'mem32', size: 4096 }] }),\n` +
      `  create: () => ({ bars: { 0: { read: (o) => { while (o === 0x10) {} return 0x5a; }, write: () => {} } } }) });\n`,
  );
  const path = join(dir, 'hang.sock');
  const s = await startServer(plugin, path, 'hang', ['--watchdog', '300']);
  try {
    const c = new Client(path);
    assert.equal(version(c).flags & ERROR, 0);
    assert.equal(read32(c, 0, 0), 0x5a);
    assert.equal(read32(c, 0, 0x10), 0xffff_ffff, 'the stopped read is answered, as a failed device answers');
    assert.equal(read32(c, 0, 0), 0xffff_ffff, 'failed: all ones from then on');
    assert.equal(read32(c, 7, 0), 0x0099_1234, 'config space still answers');
    c.close();
    const again = new Client(path);
    assert.equal(version(again).flags & ERROR, 0, 'the server takes the next client');
    assert.equal(read32(again, 0, 0), 0xffff_ffff);
    again.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.log.text.match(/device failed/g)?.length, 1, s.log.text);
    assert.match(s.log.text, /device failed \(it answers all ones from now on\): watchdog: its code ran longer than 300 ms; stopped/);
  } finally {
    s.process.kill('SIGKILL');
  }
});
