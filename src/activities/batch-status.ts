/** Looks at a provider batch once: its state and request counts (the workflow's timers do the waiting). */
import type OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import type { BatchStatus } from '../run/batch';
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

export function createBatchStatus(deps: BatchDeps) {
  return async function batchStatus(input: { batchId: string }): Promise<BatchStatus> {
    try {
      const batch = await deps.openai.batches.retrieve(input.batchId);
      const error = batch.status === 'failed' ? await failureOf(deps.openai, batch) : undefined;
      return {
        id: batch.id,
        status: batch.status,
        counts: batch.request_counts ?? { total: 0, completed: 0, failed: 0 },
        ...(error && { error }),
      };
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}

/**
 * A failed batch's first error: its line, the dialogue that line asked for (its `custom_id`, read
 * from the input file) and the field, so the one error a user sees says what to look at.
 */
async function failureOf(openai: OpenAI, batch: Batch): Promise<string | undefined> {
  const first = batch.errors?.data?.[0];
  if (!first) return undefined;
  const dialogue = first.line ? await customIdAt(openai, batch.input_file_id, first.line) : undefined;
  const line = `line ${first.line ?? '?'}${dialogue ? ` (dialogue ${dialogue})` : ''}`;
  return `${line}${first.param ? `, field ${first.param}` : ''}: ${first.code ?? 'invalid'}: ${first.message ?? ''}`;
}

/** The `custom_id` of an input file's line (1-based), if the file still reads and the line parses. */
async function customIdAt(openai: OpenAI, fileId: string, line: number): Promise<string | undefined> {
  try {
    const text = await (await openai.files.content(fileId)).text();
    const row = text.split('\n').filter((l) => l.trim() !== '')[line - 1];
    const id = row === undefined ? undefined : (JSON.parse(row) as { custom_id?: unknown }).custom_id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    // Naming the dialogue is a courtesy: the line number alone still says where to look.
    return undefined;
  }
}
