/**
 * Whether a lock's owner still runs: the PID names a live process (EPERM: alive, someone
 * else's). Lock files of guest slots and identity ranges hold their owner's PID.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
