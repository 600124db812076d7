/** Writes to stdout and resolves when flushed, so piping into `head` or a file is safe. */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

export function writeJson(value: unknown): Promise<void> {
  return writeOut(JSON.stringify(value, jsonReplacer, 2) + '\n');
}

/** bigint has no JSON form; hvmpt's JSON writes addresses as "0x…" strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? '0x' + value.toString(16) : value;
}
