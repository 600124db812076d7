/**
 * The control socket of a running machine (`hvmpt run --control unix:PATH`), spoken the way
 * QEMU's QMP is: a UNIX stream socket carrying one JSON object per line. The server greets
 * each client with `{"hvmpt": {...}}`; a client sends `{"execute": VERB, "arguments": {...},
 * "id": ANY}` and gets `{"return": {...}, "id"}` or `{"error": {"class", "desc"}, "id"}`;
 * events (`{"event": NAME, "data": {...}}`) go to every client. `hvmpt ctl` is its client.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvmptError, IoError, UsageError } from '../errors.js';

export const CONTROL_VERBS = ['status', 'devices', 'attach', 'detach', 'stop'] as const;
export type ControlVerb = (typeof CONTROL_VERBS)[number];

/** A request the socket could not take as sent (not JSON, no such verb, a missing argument). */
export class ControlRequestError extends HvmptError {}

/** What the server does with each verb; a thrown HvmptError is the error reply, with its class. */
export type ControlHandlers = (verb: ControlVerb, args: Record<string, unknown>) => Promise<unknown>;

/** The longest line a client may send: an attach entry is a few hundred bytes. */
const MAX_LINE = 1 << 20;

/** `unix:PATH` or a plain path; `none` for no socket. */
export function controlPath(spec: string | undefined, pid = process.pid): string | undefined {
  if (spec === 'none') return undefined;
  if (spec === undefined) return join(process.env['XDG_RUNTIME_DIR'] ?? tmpdir(), `hvmpt-${pid}.sock`);
  const m = /^unix:(.+)$/.exec(spec);
  if (m === null) throw new UsageError(`'${spec}' is not unix:PATH (or none)`, { input: '--control' });
  return m[1]!;
}

/** Whether something answers on the socket at `path` now. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ControlServer {
  readonly path: string;
  /** Sends an event to every client. */
  event(name: string, data: unknown): void;
  close(): Promise<void>;
}

export async function openControlSocket(path: string, greeting: Record<string, unknown>, handle: ControlHandlers): Promise<ControlServer> {
  if (existsSync(path)) {
    // A socket left by a run that died is reused; one that answers, or any other file, is not.
    if (!lstatSync(path).isSocket() || (await listening(path))) throw new IoError('in use (another run listens there, or it is not a socket)', { input: path });
    unlinkSync(path);
  }
  const clients = new Set<Socket>();
  const server: Server = createServer((socket) => {
    clients.add(socket);
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('close', () => clients.delete(socket));
    const send = (o: unknown): void => {
      if (!socket.destroyed) socket.write(JSON.stringify(o) + '\n');
    };
    send({ hvmpt: greeting });
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_LINE && !buffer.includes('\n')) {
        send({ error: { class: 'BadRequest', desc: `a request line longer than ${MAX_LINE} bytes` } });
        socket.destroy();
        return;
      }
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line !== '') void serve(line).then(send);
      }
    });
  });
  const serve = async (line: string): Promise<unknown> => {
    let id: unknown;
    try {
      let req: unknown;
      try {
        req = JSON.parse(line);
      } catch (err) {
        throw new ControlRequestError(`not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new ControlRequestError('a request is a JSON object: {"execute": VERB, "arguments": {...}}');
      const r = req as Record<string, unknown>;
      id = r['id'];
      const verb = r['execute'];
      if (typeof verb !== 'string' || !(CONTROL_VERBS as readonly string[]).includes(verb)) {
        throw new ControlRequestError(`execute: ${JSON.stringify(verb ?? null)} is not a verb (${CONTROL_VERBS.join(', ')})`);
      }
      const args = r['arguments'] ?? {};
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new ControlRequestError('arguments: an object');
      const value = await handle(verb as ControlVerb, args as Record<string, unknown>);
      return { return: value ?? {}, ...(id === undefined ? {} : { id }) };
    } catch (err) {
      const cls = err instanceof ControlRequestError ? 'BadRequest' : err instanceof HvmptError ? err.constructor.name : 'InternalError';
      const desc = err instanceof HvmptError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
      return { error: { class: cls, desc }, ...(id === undefined ? {} : { id }) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new IoError(`cannot listen: ${err.code ?? err.message}`, { input: path })));
    server.listen(path, () => resolve());
  });
  server.unref();
  return {
    path,
    event(name, data) {
      const line = JSON.stringify({ event: name, data, timestamp: Date.now() / 1000 }) + '\n';
      for (const c of clients) if (!c.destroyed) c.write(line);
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of clients) c.destroy();
        server.close(() => {
          try {
            unlinkSync(path);
          } catch {
            // Already gone.
          }
          resolve();
        });
      }),
  };
}
