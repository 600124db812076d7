import { statSync } from 'node:fs';
import { IoError } from '../errors.js';

// Files a user names are read through src/plan/input.ts (bounded, stdin and special files handled).

/** Whether `path` is a directory; an IoError when it is not there or cannot be looked at. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    throw new IoError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path }, { cause: err });
  }
}
