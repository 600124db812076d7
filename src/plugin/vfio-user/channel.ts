/**
 * One vfio-user connection, driven synchronously: the vCPU thread asks and waits (a guest's
 * MMIO read cannot complete before the answer), and a `hvmpt serve-device` process answers one
 * message at a time. Framing follows the header's size; file descriptors come with a
 * message's first bytes. Every wait has a deadline, so a peer that hangs fails the device
 * instead of the monitor.
 */
import { HvmptError } from '../../errors.js';
import { POLLERR, POLLHUP, POLLIN, SysError, type Sys } from '../../native/sys.js';
import { CMD_NAMES, encodeMessage, FLAG, HEADER, MAX_MESSAGE, MAX_MSG_FDS, viewOf, type Message } from './protocol.js';

/** The connection broke, timed out or carried something that is not vfio-user. */
export class VfioUserError extends HvmptError {}

/** The peer sent a header that cannot be framed: the stream is lost, only closing is left. */
export class FramingError extends VfioUserError {
  constructor(
    message: string,
    where: { input?: string },
    readonly id: number,
    readonly command: number,
  ) {
    super(message, where);
  }
}

export class Channel {
  private nextId = 0;
  private readonly head = new Uint8Array(HEADER.length);
  closed = false;

  constructor(
    readonly sys: Sys,
    readonly fd: number,
    /** For messages: the socket path. */
    readonly name: string,
    /** How long one receive may wait, ms (negative: forever). */
    readonly timeoutMs: number,
  ) {}

  send(m: { id: number; command: number; flags: number; error?: number; payload?: Uint8Array }, fds: readonly number[] = []): void {
    try {
      this.sys.sendmsg(this.fd, encodeMessage(m), fds);
    } catch (err) {
      this.closed = true;
      throw new VfioUserError(`cannot send ${CMD_NAMES[m.command] ?? m.command}: ${err instanceof Error ? err.message : String(err)}`, { input: this.name });
    }
  }

  /** Waits until the socket is readable (or the peer hung up); false on timeout. */
  wait(timeoutMs = this.timeoutMs): boolean {
    const [revents] = this.sys.poll([{ fd: this.fd, events: POLLIN }], timeoutMs);
    return (revents! & (POLLIN | POLLHUP | POLLERR)) !== 0;
  }

  private fill(buf: Uint8Array, fds: number[], what: string): boolean {
    let got = 0;
    while (got < buf.length) {
      if (!this.wait()) {
        this.closed = true;
        throw new VfioUserError(`no ${what} within ${this.timeoutMs} ms`, { input: this.name });
      }
      let r;
      try {
        r = this.sys.recvmsg(this.fd, buf.subarray(got));
      } catch (err) {
        this.closed = true;
        throw new VfioUserError(`the connection broke: ${err instanceof SysError ? err.message : String(err)}`, { input: this.name });
      }
      fds.push(...r.fds);
      if (r.bytes === 0) {
        this.closed = true;
        if (got === 0 && what === 'message') return false;
        throw new VfioUserError(`the other end closed the connection in the middle of a ${what}`, { input: this.name });
      }
      got += r.bytes;
    }
    return true;
  }

  /** The next message; undefined when the peer closed the connection cleanly between messages. */
  receive(): Message | undefined {
    const fds: number[] = [];
    if (!this.fill(this.head, fds, 'message')) return undefined;
    const v = viewOf(this.head);
    const id = v.getUint16(HEADER.id, true);
    const command = v.getUint16(HEADER.command, true);
    const size = v.getUint32(HEADER.size, true);
    if (size < HEADER.length || size > MAX_MESSAGE) {
      for (const fd of fds) this.sys.close(fd);
      throw new FramingError(`message ${id} (command ${command}) says it is ${size} bytes: a message is ${HEADER.length} to ${MAX_MESSAGE}`, { input: this.name }, id, command);
    }
    const body = new Uint8Array(size - HEADER.length);
    this.fill(body, fds, 'message body');
    if (fds.length > MAX_MSG_FDS) {
      for (const fd of fds) this.sys.close(fd);
      throw new FramingError(`message ${id} carried ${fds.length} file descriptors, more than ${MAX_MSG_FDS}`, { input: this.name }, id, command);
    }
    return { id, command, flags: v.getUint32(HEADER.flags, true), error: v.getUint32(HEADER.error, true), payload: body, fds };
  }

  /**
   * Sends a command and waits for its reply. Commands the peer sends meanwhile (a server's
   * DMA_READ while it handles our REGION_WRITE) go to `onCommand`, which must reply to them.
   */
  request(command: number, body: Uint8Array, fds: readonly number[] = [], onCommand?: (m: Message) => void): Message {
    if (this.closed) throw new VfioUserError('the connection is closed', { input: this.name });
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    this.send({ id, command, flags: FLAG.COMMAND, payload: body }, fds);
    for (;;) {
      const m = this.receive();
      if (m === undefined) throw new VfioUserError(`the other end closed the connection before replying to ${CMD_NAMES[command] ?? command}`, { input: this.name });
      if ((m.flags & FLAG.TYPE_MASK) === FLAG.REPLY) {
        for (const fd of m.id === id ? [] : m.fds) this.sys.close(fd);
        if (m.id !== id || m.command !== command) continue;
        if ((m.flags & FLAG.ERROR) !== 0) {
          for (const fd of m.fds) this.sys.close(fd);
          throw new VfioUserError(`${CMD_NAMES[command] ?? command} failed: errno ${m.error}`, { input: this.name });
        }
        return m;
      }
      if (onCommand === undefined) {
        for (const fd of m.fds) this.sys.close(fd);
        this.send({ id: m.id, command: m.command, flags: FLAG.REPLY | FLAG.ERROR, error: 16 });
      } else onCommand(m);
    }
  }

  reply(to: Message, body?: Uint8Array, fds: readonly number[] = []): void {
    if ((to.flags & FLAG.NO_REPLY) !== 0) return;
    this.send({ id: to.id, command: to.command, flags: FLAG.REPLY, ...(body === undefined ? {} : { payload: body }) }, fds);
  }

  replyError(to: { id: number; command: number; flags?: number }, errno: number): void {
    if (((to.flags ?? 0) & FLAG.NO_REPLY) !== 0) return;
    this.send({ id: to.id, command: to.command, flags: FLAG.REPLY | FLAG.ERROR, error: errno });
  }
}
