/**
 * The file names `acpixtract -a` gives the tables of a dump: the signature in lower case plus
 * ".dat"; when a signature occurs more than once, every occurrence is numbered from 1 in file
 * order (ssdt1.dat, ssdt2.dat, …). Characters that cannot be in a file name here (anything but
 * letters, digits, "_" and "!") become "_", so a hostile signature cannot name a path.
 */
export function acpixtractNames(signatures: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const s of signatures) counts.set(s, (counts.get(s) ?? 0) + 1);
  const next = new Map<string, number>();
  return signatures.map((s) => {
    const stem = safeStem(s);
    if ((counts.get(s) ?? 0) < 2) return stem;
    const k = (next.get(s) ?? 0) + 1;
    next.set(s, k);
    return `${stem}${k}`;
  });
}

function safeStem(signature: string): string {
  let out = '';
  for (const ch of signature.toLowerCase()) out += /[a-z0-9_!]/.test(ch) ? ch : '_';
  return out;
}
