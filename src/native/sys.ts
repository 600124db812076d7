import { HvmptError } from '../errors.js';

/**
 * The only native operations the monitor uses. Everything else (KVM structures, device
 * models, dispatch) is TypeScript on top of this. An implementation is chosen once per thread
 * (`loadSys`); the koffi one ships prebuilt in its npm package, and a node-gyp addon could
 * replace it behind the same interface (see docs/vmm.md for why koffi was chosen).
 */
export interface Sys {
  open(path: string, flags: number): number;
  close(fd: number): void;
  /** ioctl with an integer argument (or none); returns the non-negative result, throws SysError (made again after EINTR, as ioctlBuffer is). */
  ioctlValue(fd: number, request: number, arg: number | bigint): number;
  /** ioctl whose argument points at `data`; the kernel may read and write it. */
  ioctlBuffer(fd: number, request: number, data: Uint8Array): number;
  /**
   * The vCPU loop's ioctl (KVM_RUN): returns the result, or the negated errno instead of
   * throwing, so EINTR (a stop request) costs no exception on the hot path.
   */
  ioctlRaw(fd: number, request: number): number;
  /** `address` is a hint, or with MAP_FIXED the place (inside a mapping of ours) to map at. */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number, address?: bigint): Mapping;
  /** Unmaps a mapping, or any page-aligned part of one (only `address` and `length` are used). */
  munmap(mapping: Pick<Mapping, 'address' | 'length'>): void;
  /** madvise on part of a mapping of ours (MADV_HUGEPAGE for guest RAM). */
  madvise(address: bigint, length: number, advice: number): void;
  /** pread(2): fills `buf` from `offset` of the file (a VFIO region, a sysfs resource); returns the bytes read. */
  pread(fd: number, buf: Uint8Array, offset: number): number;
  /** pwrite(2): writes `buf` at `offset`; returns the bytes written. */
  pwrite(fd: number, buf: Uint8Array, offset: number): number;
  /** read(2)/write(2) of a small buffer (uio's interrupt count and unmask word). */
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  eventfd(initial: number, flags: number): number;
  /** Reads the 8-byte counter of an eventfd; undefined when non-blocking and zero. */
  eventfdRead(fd: number): bigint | undefined;
  eventfdWrite(fd: number, value: bigint): void;
  /** Waits for events on fds; returns the revents of each, in order. */
  poll(fds: ReadonlyArray<{ readonly fd: number; readonly events: number }>, timeoutMs: number): number[];
  /** The calling thread's pthread_t, to be handed to another thread for `signalThread`. */
  threadSelf(): bigint;
  /** pthread_kill: interrupts a blocking ioctl (KVM_RUN returns EINTR) in that thread. */
  signalThread(thread: bigint, signal: number): void;
  /**
   * UNIX stream sockets for vfio-user: a socket, bound and listening or connected to a path,
   * and messages with file descriptors (SCM_RIGHTS) each way. Blocking, like the rest.
   */
  unixSocket(): number;
  bindUnix(fd: number, path: string, backlog: number): void;
  accept(fd: number): number;
  connectUnix(fd: number, path: string): void;
  /** Sends all of `data` with `fds` attached to its first byte (MSG_NOSIGNAL: a closed peer is EPIPE, not a signal). */
  sendmsg(fd: number, data: Uint8Array, fds: readonly number[]): void;
  /** Receives up to `buf.length` bytes and any file descriptors that came with them; 0 bytes: the peer closed. */
  recvmsg(fd: number, buf: Uint8Array): { readonly bytes: number; readonly fds: number[] };
  /**
   * Blocks a signal in the calling thread; returns the thread's blocked set afterwards (signals
   * 1-64, bit n-1 for signal n), from which KVM_SET_SIGNAL_MASK's run-time set is made.
   */
  blockSignal(signal: number): bigint;
  /** Consumes a pending, blocked instance of `signal` without waiting (sigtimedwait); false when none was pending. */
  takeSignal(signal: number): boolean;
}

/** Memory mapped into this process: its address (for KVM) and a view of it (for us). */
export interface Mapping {
  readonly address: bigint;
  readonly length: number;
  readonly buffer: ArrayBuffer;
}

/** A system call that failed; `errno` is the positive error number. */
export class SysError extends HvmptError {
  readonly errno: number;
  readonly call: string;
  constructor(call: string, errno: number, input?: string) {
    super(`${call} failed: ${errnoName(errno)}`, input === undefined ? {} : { input });
    this.errno = errno;
    this.call = call;
  }
}

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM (operation not permitted)',
  2: 'ENOENT (no such file or directory)',
  4: 'EINTR (interrupted)',
  5: 'EIO (input/output error)',
  9: 'EBADF (bad file descriptor)',
  11: 'EAGAIN (try again)',
  12: 'ENOMEM (out of memory)',
  13: 'EACCES (permission denied)',
  14: 'EFAULT (bad address)',
  16: 'EBUSY (device or resource busy)',
  17: 'EEXIST (already exists)',
  19: 'ENODEV (no such device)',
  22: 'EINVAL (invalid argument)',
  24: 'EMFILE (too many open files)',
  25: 'ENOTTY (inappropriate ioctl)',
  28: 'ENOSPC (no space left)',
  38: 'ENOSYS (not implemented)',
  32: 'EPIPE (the other end closed)',
  95: 'EOPNOTSUPP (not supported)',
  104: 'ECONNRESET (connection reset by the other end)',
  111: 'ECONNREFUSED (nobody listens on the socket)',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED = 0x10;
export const MAP_NORESERVE = 0x4000;
export const MADV_HUGEPAGE = 14;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const POLLIN = 0x001;
export const EINTR = 4;
export const ECONNRESET = 104;
export const POLLHUP = 0x010;
export const POLLERR = 0x008;
export const EAGAIN = 11;
export const EPIPE = 32;
/**
 * The signal that interrupts a vCPU thread's KVM_RUN. vCPU threads keep it blocked and let
 * KVM unblock it only while in KVM_RUN (KVM_SET_SIGNAL_MASK), then consume it with
 * `takeSignal`: no handler runs, so no other thread is woken for it.
 */
export const SIGUSR2 = 12;

/** A signal's bit in the sets `blockSignal` returns. */
export function signalBit(signal: number): bigint {
  return 1n << BigInt(signal - 1);
}
