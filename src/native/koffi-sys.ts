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
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_MAX = 108;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x4000_0000;
const EINTR = 4;
/** struct msghdr on x86-64 and arm64 Linux. */
const MSG = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48 } as const;
const IOV = 64;
const CMSG = 128;
/** struct cmsghdr: cmsg_len (size_t), level, type. */
const CMSG_HEADER = 16;
const MAX_FDS = 64;
const CMSG_SPACE = CMSG_HEADER + MAX_FDS * 4;
const DATA = 1024;
const SCRATCH_SIZE = 4 << 20;
const SIG_BLOCK = 0;
/** glibc's sigset_t: 1024 bits. */
const SIGSET_BYTES = 128;

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
  const pread = f('int64_t pread(int fd, _Out_ uint8_t *buf, size_t n, int64_t off)');
  const pwrite = f('int64_t pwrite(int fd, const uint8_t *buf, size_t n, int64_t off)');
  const poll = f('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)');
  const pthreadSelf = f('unsigned long pthread_self()');
  const pthreadKill = f('int pthread_kill(unsigned long thread, int sig)');
  const socket = f('int socket(int domain, int type, int protocol)');
  const bind = f('int bind(int fd, const uint8_t *addr, uint32_t len)');
  const listen = f('int listen(int fd, int backlog)');
  const accept4 = f('int accept4(int fd, uint64_t addr, uint64_t len, int flags)');
  const connect = f('int connect(int fd, const uint8_t *addr, uint32_t len)');
  const sendmsg = f('int64_t sendmsg(int fd, uint64_t msg, int flags)');
  const recvmsg = f('int64_t recvmsg(int fd, uint64_t msg, int flags)');
  const pthreadSigmask = f('int pthread_sigmask(int how, const uint8_t *set, _Out_ uint8_t *old)');
  const sigtimedwait = f('int sigtimedwait(const uint8_t *set, void *info, const uint8_t *timeout)');
  const zeroTimeout = new Uint8Array(16);
  const sigset = (signal: number): Uint8Array => {
    const set = new Uint8Array(SIGSET_BYTES);
    set[(signal - 1) >> 3] = 1 << ((signal - 1) & 7);
    return set;
  };
  const taken = new Map<number, Uint8Array>();
  const errno = (): number => koffi.errno();

  const check = (call: string, result: unknown, input?: string): number => {
    const n = Number(result);
    if (n < 0) throw new SysError(call, errno(), input);
    return n;
  };
  /**
   * A call a signal interrupted is made again: a profiler's SIGPROF reaches the thread it
   * samples in the middle of whatever it does, a kick may come late, and KVM_CREATE_VM, for
   * one, gives EINTR for it. Only KVM_RUN's EINTR means something (a kick): that goes through
   * ioctlRaw.
   */
  const untilDone = (call: () => unknown): unknown => {
    for (;;) {
      const r = call();
      if (Number(r) >= 0 || errno() !== EINTR) return r;
    }
  };
  const eight = new Uint8Array(8);
  const eightView = new DataView(eight.buffer);

  /**
   * sendmsg/recvmsg take pointers inside their structures, so the message header, the I/O
   * vector, the control buffer and the data live in one anonymous mapping whose address we
   * know: one per thread, made on first use, reused by every message.
   */
  let scratch: { address: bigint; bytes: Uint8Array; view: DataView } | undefined;
  const scratchArea = (): { address: bigint; bytes: Uint8Array; view: DataView } => {
    if (scratch !== undefined) return scratch;
    const ptr = mmap(0n, SCRATCH_SIZE, 3, 0x22 | 0x4000, -1, 0);
    const address = koffi.address(ptr);
    if (address === MAP_FAILED) throw new SysError('mmap', errno());
    const buffer = koffi.view(ptr, SCRATCH_SIZE);
    scratch = { address, bytes: new Uint8Array(buffer), view: new DataView(buffer) };
    return scratch;
  };
  const sockaddr = (path: string): Uint8Array => {
    const name = new TextEncoder().encode(path);
    if (name.length >= SUN_PATH_MAX) throw new SysError('socket path', 36, path);
    const a = new Uint8Array(2 + SUN_PATH_MAX);
    a[0] = AF_UNIX;
    a.set(name, 2);
    return a;
  };
  /** Lays out msghdr + iovec + cmsg at the start of the scratch area; data follows at DATA. */
  const header = (length: number, controlLength: number): bigint => {
    const s = scratchArea();
    const v = s.view;
    v.setBigUint64(MSG.name, 0n, true);
    v.setUint32(MSG.namelen, 0, true);
    v.setBigUint64(MSG.iov, s.address + BigInt(IOV), true);
    v.setBigUint64(MSG.iovlen, 1n, true);
    v.setBigUint64(MSG.control, controlLength === 0 ? 0n : s.address + BigInt(CMSG), true);
    v.setBigUint64(MSG.controllen, BigInt(controlLength), true);
    v.setInt32(MSG.flags, 0, true);
    v.setBigUint64(IOV, s.address + BigInt(DATA), true);
    v.setBigUint64(IOV + 8, BigInt(length), true);
    return s.address;
  };

  return {
    open: (path, flags) => check('open', open(path, flags), path),
    close: (fd) => void check('close', close(fd)),
    ioctlValue: (fd, request, arg) => check(`ioctl 0x${request.toString(16)}`, untilDone(() => ioctlValue(fd, request, arg))),
    ioctlBuffer: (fd, request, data) => check(`ioctl 0x${request.toString(16)}`, untilDone(() => ioctlBuffer(fd, request, data))),
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
    pread: (fd, buf, offset) => check('pread', pread(fd, buf, buf.length, offset)),
    pwrite: (fd, buf, offset) => check('pwrite', pwrite(fd, buf, buf.length, offset)),
    read: (fd, buf) => check('read', read(fd, buf, buf.length)),
    write: (fd, buf) => check('write', write(fd, buf, buf.length)),
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
    unixSocket: () => check('socket', socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)),
    bindUnix: (fd, path, backlog) => {
      const a = sockaddr(path);
      check('bind', bind(fd, a, a.length), path);
      check('listen', listen(fd, backlog), path);
    },
    accept: (fd) => check('accept', accept4(fd, 0n, 0n, SOCK_CLOEXEC)),
    connectUnix: (fd, path) => {
      const a = sockaddr(path);
      check('connect', connect(fd, a, a.length), path);
    },
    sendmsg: (fd, data, fds) => {
      const s = scratchArea();
      let sent = 0;
      while (sent < data.length || (sent === 0 && data.length === 0)) {
        const n = Math.min(data.length - sent, SCRATCH_SIZE - DATA);
        s.bytes.set(data.subarray(sent, sent + n), DATA);
        let control = 0;
        if (sent === 0 && fds.length > 0) {
          if (fds.length > MAX_FDS) throw new SysError('sendmsg: too many fds', 7);
          control = CMSG_HEADER + ((fds.length * 4 + 7) & ~7);
          s.view.setBigUint64(CMSG, BigInt(CMSG_HEADER + fds.length * 4), true);
          s.view.setInt32(CMSG + 8, SOL_SOCKET, true);
          s.view.setInt32(CMSG + 12, SCM_RIGHTS, true);
          fds.forEach((f2, i) => s.view.setInt32(CMSG + CMSG_HEADER + i * 4, f2, true));
        }
        const r = Number(sendmsg(fd, header(n, control), MSG_NOSIGNAL));
        if (r < 0) {
          const e = errno();
          if (e === EINTR) continue;
          throw new SysError('sendmsg', e);
        }
        sent += r;
        if (data.length === 0) break;
      }
    },
    recvmsg: (fd, buf) => {
      const s = scratchArea();
      for (;;) {
        const n = Math.min(buf.length, SCRATCH_SIZE - DATA);
        const r = Number(recvmsg(fd, header(n, CMSG_SPACE), MSG_CMSG_CLOEXEC));
        if (r < 0) {
          const e = errno();
          if (e === EINTR) continue;
          throw new SysError('recvmsg', e);
        }
        buf.set(s.bytes.subarray(DATA, DATA + r));
        const fds: number[] = [];
        const controlLength = Number(s.view.getBigUint64(MSG.controllen, true));
        for (let at = 0; at + CMSG_HEADER <= controlLength; ) {
          const len = Number(s.view.getBigUint64(CMSG + at, true));
          if (len < CMSG_HEADER) break;
          if (s.view.getInt32(CMSG + at + 8, true) === SOL_SOCKET && s.view.getInt32(CMSG + at + 12, true) === SCM_RIGHTS) {
            for (let i = 0; CMSG_HEADER + i * 4 + 4 <= len; i++) fds.push(s.view.getInt32(CMSG + at + CMSG_HEADER + i * 4, true));
          }
          at += (len + 7) & ~7;
        }
        return { bytes: r, fds };
      }
    },
    blockSignal: (signal) => {
      const old = new Uint8Array(SIGSET_BYTES);
      const r = Number(pthreadSigmask(SIG_BLOCK, sigset(signal), old));
      if (r !== 0) throw new SysError('pthread_sigmask', r);
      const before = new DataView(old.buffer).getBigUint64(0, true);
      return before | (1n << BigInt(signal - 1));
    },
    takeSignal: (signal) => {
      let set = taken.get(signal);
      if (set === undefined) taken.set(signal, (set = sigset(signal)));
      return Number(sigtimedwait(set, null, zeroTimeout)) === signal;
    },
  };
}
