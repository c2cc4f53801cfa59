/**
 * The reply-check counts of a run, kept beside its records. The counts live in the worker's memory,
 * so a resumed run would otherwise report only the replies its last process checked ("0 of 16" beside
 * "24 LLM calls"); each process that owns the run starts from what the earlier ones saved.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ReplyCheckCounts } from '../activities';

/** Written by `generate` in the run's directory; hidden, like the store's indexes. */
export const REPLY_CHECKS_FILE = '.reply-checks.json';

const fileSchema = z.object({
  runId: z.string(),
  checked: z.number().int().nonnegative(),
  rejected: z.record(z.string(), z.number().int().nonnegative()),
});

/** What earlier processes of `runId` counted; zero for a new run or an unreadable file. */
export async function loadReplyChecks(dir: string, runId: string): Promise<ReplyCheckCounts> {
  try {
    const parsed = fileSchema.safeParse(JSON.parse(await readFile(join(dir, REPLY_CHECKS_FILE), 'utf8')));
    // Another run's counts (a directory reused with --run-id) say nothing about this one.
    if (parsed.success && parsed.data.runId === runId)
      return { checked: parsed.data.checked, rejected: { ...parsed.data.rejected } };
  } catch {
    // Missing or torn: the counts are a report, not a record; start from zero.
  }
  return { checked: 0, rejected: {} };
}

/** Saves the counts atomically (a killed process leaves the previous file whole). */
export async function saveReplyChecks(dir: string, runId: string, counts: ReplyCheckCounts): Promise<void> {
  const path = join(dir, REPLY_CHECKS_FILE);
  const partial = `${path}.${randomBytes(4).toString('hex')}.partial`;
  await writeFile(partial, JSON.stringify({ runId, ...counts }));
  await rename(partial, path);
}
