/**
 * Creates a directory and its missing parents one level at a time. Node's `mkdir(…, { recursive: true })`
 * loops forever, at full CPU, when the kernel answers ENOENT for a parent that exists (any path under
 * /proc): issue 9's `generate --out /proc/x` hang. Here such an error surfaces instead.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Returns the topmost directory it created (to remove on an early exit), or undefined if all existed. */
export async function makeDirs(path: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let current = resolve(path); ; current = dirname(current)) {
    try {
      if (!(await stat(current)).isDirectory())
        throw Object.assign(new Error(`${current} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      missing.unshift(current);
      if (dirname(current) === current) break;
    }
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return missing[0];
}
