import { createRequire } from 'node:module';
import type * as KoffiModule from 'koffi';
import { EAGAIN, SysError, type Mapping, type Sys } from './sys.js';

/**
 * Sys through koffi: libc's own functions called directly from JavaScript, no compiled code of
 * ours. Its prebuilt binary ships inside the npm package, so installing needs no compiler or
 * Node headers; a call costs about 0.2 µs, far below a KVM exit (docs/vmm.md has the figures).
 */
type Koffi = typeof KoffiModule;
type Fn = (...args: unknown[]) => unknown;

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const SIG_UNBLOCK = 1;

export function createKoffiSys(): Sys {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as Koffi;
  const libc = koffi.load('libc.so.6');
  const f = (decl: string): Fn => libc.func(decl) as Fn;
  const open = f('int open(const char *path, int flags)');
  const close = f('int close(int fd)');
  const ioctlValue = f('int ioctl(int fd, unsigned long req, uint64_t arg)');
  const ioctlBuffer = f('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)');
  const ioctlNone = f('int ioctl(int fd, unsigned long req, uint64_t arg)');
  const mmap = f('void *mmap(uint64_t addr, size_t len, int prot, int flags, int fd, int64_t off)');
  const munmap = f('int munmap(uint64_t addr, size_t len)');
  const madvise = f('int madvise(uint64_t addr, size_t len, int advice)');
  const eventfd = f('int eventfd(unsigned int initval, int flags)');
  const read = f('int64_t read(int fd, _Out_ uint8_t *buf, size_t n)');
  const write = f('int64_t write(int fd, const uint8_t *buf, size_t n)');
  const poll = f('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)');
  const pthreadSelf = f('unsigned long pthread_self()');
  const pthreadKill = f('int pthread_kill(unsigned long thread, int sig)');
  const pthreadSigmask = f('int pthread_sigmask(int how, const uint8_t *set, void *old)');
  const errno = (): number => koffi.errno();

  const check = (call: string, result: unknown, input?: string): number => {
    const n = Number(result);
    if (n < 0) throw new SysError(call, errno(), input);
    return n;
  };
  const eight = new Uint8Array(8);
  const eightView = new DataView(eight.buffer);

  return {
    open: (path, flags) => check('open', open(path, flags), path),
    close: (fd) => void check('close', close(fd)),
    ioctlValue: (fd, request, arg) => check(`ioctl 0x${request.toString(16)}`, ioctlValue(fd, request, arg)),
    ioctlBuffer: (fd, request, data) => check(`ioctl 0x${request.toString(16)}`, ioctlBuffer(fd, request, data)),
    ioctlRaw: (fd, request) => {
      const r = ioctlNone(fd, request, 0) as number;
      return r < 0 ? -errno() : r;
    },
    mmap: (length, prot, flags, fd, offset, at = 0n): Mapping => {
      const ptr = mmap(at, length, prot, flags, fd, offset);
      const address = koffi.address(ptr);
      if (address === MAP_FAILED) throw new SysError('mmap', errno());
      return { address, length, buffer: koffi.view(ptr, length) };
    },
    munmap: (m) => {
      check('munmap', munmap(m.address, m.length));
    },
    madvise: (address, length, advice) => {
      check('madvise', madvise(address, length, advice));
    },
    eventfd: (initial, flags) => check('eventfd', eventfd(initial, flags)),
    eventfdRead: (fd) => {
      const n = Number(read(fd, eight, 8));
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) return undefined;
        throw new SysError('read eventfd', e);
      }
      return eightView.getBigUint64(0, true);
    },
    eventfdWrite: (fd, value) => {
      const buf = new Uint8Array(8);
      new DataView(buf.buffer).setBigUint64(0, value, true);
      check('write eventfd', write(fd, buf, 8));
    },
    poll: (fds, timeoutMs) => {
      const buf = new Uint8Array(8 * fds.length);
      const v = new DataView(buf.buffer);
      fds.forEach((p, i) => {
        v.setInt32(i * 8, p.fd, true);
        v.setInt16(i * 8 + 4, p.events, true);
      });
      check('poll', poll(buf, fds.length, timeoutMs));
      return fds.map((_, i) => v.getInt16(i * 8 + 6, true));
    },
    threadSelf: () => BigInt(pthreadSelf() as number | bigint),
    signalThread: (thread, signal) => {
      const r = Number(pthreadKill(thread, signal));
      if (r !== 0) throw new SysError('pthread_kill', r);
    },
    unblockSignal: (signal) => {
      const set = new Uint8Array(128);
      set[(signal - 1) >> 3] = 1 << ((signal - 1) & 7);
      const r = Number(pthreadSigmask(SIG_UNBLOCK, set, null));
      if (r !== 0) throw new SysError('pthread_sigmask', r);
    },
  };
}
