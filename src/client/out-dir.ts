/**
 * The output directory, checked before anything is written: a failed start-up check must leave no
 * directory and no `run.json` behind, so the corrected command starts cleanly.
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../shared/errors';

/** Kernel file systems that look like directories but hold no files (statfs f_type magic numbers). */
const PSEUDO_FILE_SYSTEMS: Readonly<Record<number, string>> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x63677270: 'cgroup2',
  0x27e0eb: 'cgroup',
  0x1cd1: 'devpts',
  0x64626720: 'debugfs',
  0x73636673: 'securityfs',
};

/**
 * Checks, without creating anything, that `outDir` is or can become a writable directory. Returns its
 * absolute path.
 */
export async function checkOutDir(outDir: string): Promise<string> {
  // Names with control characters break every log line and shell command that quotes them.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(outDir))
    throw new ConfigError('--out', `contains a control character: ${JSON.stringify(outDir)}`);
  const dir = resolve(outDir);
  let existing = dir;
  for (;;) {
    try {
      const info = await stat(existing);
      if (!info.isDirectory()) throw new ConfigError('--out', `${existing} is not a directory`);
      // Root may write anywhere; a directory with no write bit is still meant to be left alone.
      if ((info.mode & 0o222) === 0) throw new ConfigError('--out', `${existing} is read-only`);
      break;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new ConfigError('--out', `a parent of ${dir} is not a directory`);
      if (code !== 'ENOENT') throw new ConfigError('--out', `cannot use ${dir}: ${code ?? String(error)}`);
      if (dirname(existing) === existing) break;
      existing = dirname(existing);
    }
  }
  try {
    await access(existing, fsConstants.W_OK);
  } catch (error) {
    throw new ConfigError(
      '--out',
      `cannot write to ${existing}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const kind = PSEUDO_FILE_SYSTEMS[Number((await statfs(existing)).type)];
  if (kind) throw new ConfigError('--out', `${existing} is on the ${kind} file system, which holds no files`);
  return dir;
}
