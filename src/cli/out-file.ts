/**
 * Files a command writes besides its output directories: a report written whole at the end,
 * and logs streamed while a guest runs. Both are opened before the work starts, so a path that
 * cannot be written fails in a second, not after a guest has run for an hour; and a write that
 * fails later is an IoError naming the file, never an unhandled stream error or a stack.
 */
import { closeSync, createWriteStream, openSync, renameSync, rmSync, writeSync, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { IoError } from '../errors.js';

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}

/**
 * A file written whole, all or nothing: its bytes go to a sibling temporary file opened at
 * claim time, which takes the file's place by a rename only when every byte is written. A run
 * that fails leaves the file as it was.
 */
export class OutputFile {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    private readonly what: string,
    private readonly temp: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens the temporary sibling now (a path that cannot be written fails here); `what` names the file in messages ("the run report"). */
  static claim(path: string, what: string): OutputFile {
    const temp = join(dirname(path), `.${basename(path)}.hvmpt-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    try {
      return new OutputFile(path, what, temp, openSync(temp, 'wx', 0o644));
    } catch (err) {
      throw new IoError(`cannot write ${what}: ${code(err)}`, { input: path });
    }
  }

  /** Writes `bytes` and puts the file in place. */
  commit(bytes: Uint8Array): void {
    const fd = this.fd;
    if (fd === undefined) throw new IoError(`${this.what} was already written or given up`, { input: this.path });
    this.fd = undefined;
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      closeSync(fd);
      renameSync(this.temp, this.path);
    } catch (err) {
      rmSync(this.temp, { force: true });
      throw new IoError(`cannot write ${this.what}: ${code(err)} (the file was left as it was)`, { input: this.path });
    }
  }

  /** Removes the temporary file unless the file was committed; safe to call twice. */
  abandon(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    closeSync(fd);
    rmSync(this.temp, { force: true });
  }
}

/** A file streamed while a guest runs (its serial output, the firmware's log). */
export interface LogFile {
  write(bytes: Uint8Array): void;
  /** Flushes and closes; an IoError when any write failed. */
  close(): Promise<void>;
}

/** Opens (creating or truncating) a log file now, so a bad path fails before the guest starts. */
export function openLogFile(path: string, what: string): LogFile {
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o644);
  } catch (err) {
    throw new IoError(`cannot write ${what}: ${code(err)}`, { input: path });
  }
  const stream: WriteStream = createWriteStream(path, { fd });
  let failure: unknown;
  // A full disk or a vanished mount mid-run: the guest goes on, the error is reported at the end.
  stream.on('error', (err) => {
    failure ??= err;
  });
  return {
    write: (b) => {
      if (failure === undefined) stream.write(b);
    },
    close: () =>
      new Promise((resolve, reject) => {
        const done = (): void => (failure === undefined ? resolve() : reject(new IoError(`cannot write ${what}: ${code(failure)}`, { input: path })));
        if (stream.destroyed) done();
        else
          stream.end((err?: Error | null) => {
            if (err) failure ??= err;
            done();
          });
      }),
  };
}
