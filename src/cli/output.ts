import { IoError } from '../errors.js';

/**
 * Writes to stdout and resolves when flushed, so piping into `head` or a file is safe. A reader
 * that went away (EPIPE: `| head`) ends the output quietly; any other failure (a full disk) is
 * an IoError naming standard output.
 */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => {
      const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
      if (err === null || err === undefined || code === 'EPIPE') resolve();
      else reject(new IoError(`cannot write: ${code ?? err.message}`, { input: '<stdout>' }));
    });
  });
}

/**
 * Standard output's stream also emits its write errors as events, which would end the process
 * with a stack; the writes' own callbacks (writeOut) report them instead.
 */
export function quietStdoutErrors(): void {
  process.stdout.on('error', () => {});
}

/**
 * Writes a value as JSON. `models` also writes the collections typed models hold: a Map as an
 * object (its keys as strings), a Set as an array, bytes as a hex string.
 */
export function writeJson(value: unknown, models = false): Promise<void> {
  return writeOut(JSON.stringify(value, models ? modelReplacer : jsonReplacer, 2) + '\n');
}

/** bigint has no JSON form; hvmpt's JSON writes addresses as "0x…" strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? '0x' + value.toString(16) : value;
}

function modelReplacer(key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...value];
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  return jsonReplacer(key, value);
}

let exitStatus = 0;

/** A command whose own status is hvmpt's (`hvmpt lab` passes its command's) sets it here. */
export function setExitStatus(code: number): void {
  exitStatus = code;
}

/** The status a command set, once; 0 when none did. */
export function takeExitStatus(): number {
  const code = exitStatus;
  exitStatus = 0;
  return code;
}
