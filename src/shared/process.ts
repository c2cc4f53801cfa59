/** Process checks shared by the package; depends on Node only. */

/**
 * Whether a process with this pid exists. EPERM means it does, under another user. A pid can be reused
 * by an unrelated process: where that matters, check what the process is too (see `isRecordedServer`).
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
