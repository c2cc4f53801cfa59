/**
 * Submits a chunk's requests as provider batches, exactly once across crashes and retries: each batch
 * carries `{run, intent, chunk}` in its metadata, and before creating one the activity lists the
 * provider's batches and takes the one an earlier attempt created. A chunk over the file limits goes
 * in several files (`chunk` `.0`, `.1`, …), each found or created the same way.
 */
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { fromRanges, type SubmitBatchInput, type SubmitBatchResult, type SubmittedBatch } from '../run/batch';
import type { Skeleton } from '../run/schemas';
import { BATCH_ENDPOINT, requestLine } from './batch-lines';
import { withStaging } from './batch-staging';
import { toBatchFailure } from './errors';

export interface BatchDeps {
  openai: OpenAI;
  /** The worker's output root: batch files are staged below it. */
  root?: string;
}

/** The metadata that names a batch's run, intent and chunk (OpenAI: 16 keys, values to 512 chars). */
export const batchMetadata = (input: Pick<SubmitBatchInput, 'runId' | 'intent'>, chunk: string) => ({
  consistent_chat_run: input.runId.slice(0, 512),
  consistent_chat_intent: input.intent,
  consistent_chat_chunk: chunk,
});

/** Splits the lines into files within the request and byte limits. */
export function splitLines(lines: string[], limits: SubmitBatchInput['limits']): string[][] {
  const files: string[][] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line) + 1;
    const last = files.at(-1);
    if (!last || last.length >= limits.requestsPerFile || bytes + size > limits.bytesPerFile) {
      files.push([line]);
      bytes = size;
    } else {
      last.push(line);
      bytes += size;
    }
  }
  return files;
}

/** The batches already created for this run and intent, by chunk name (newest first wins). */
async function existingBatches(openai: OpenAI, input: SubmitBatchInput): Promise<Map<string, Batch>> {
  const found = new Map<string, Batch>();
  const want = batchMetadata(input, '');
  for await (const batch of openai.batches.list({ limit: 100 })) {
    // Newest first: past the intent's start, no batch of its can follow.
    if (input.notBefore !== undefined && batch.created_at < input.notBefore) break;
    const m = batch.metadata ?? {};
    if (
      m.consistent_chat_run !== want.consistent_chat_run ||
      m.consistent_chat_intent !== want.consistent_chat_intent
    )
      continue;
    const chunk = m.consistent_chat_chunk;
    if (chunk && !found.has(chunk)) found.set(chunk, batch);
    Context.current().heartbeat();
  }
  return found;
}

export function createSubmitBatch(deps: BatchDeps) {
  return async function submitBatch(input: SubmitBatchInput): Promise<SubmitBatchResult> {
    try {
      return await withStaging(deps.root, input.outDir, input.intent, async (staging) => {
        const skeletons =
          input.stage === 'responses'
            ? await staging.replies<Skeleton>('skeleton')
            : new Map<number, Skeleton>();
        const lines = fromRanges(input.indexes).map((i) => requestLine(input, i, skeletons.get(i)));
        const files = splitLines(lines, input.limits);
        const existing = await existingBatches(deps.openai, input);
        const batches: SubmittedBatch[] = [];
        for (const [k, fileLines] of files.entries()) {
          const chunk = `${input.chunk}.${k}`;
          const found = existing.get(chunk);
          if (found) {
            batches.push({ id: found.id, requests: fileLines.length, reused: true });
            continue;
          }
          const name = `in-${input.stage}-${chunk}.jsonl`;
          const text = fileLines.map((l) => `${l}\n`).join('');
          await staging.write(name, text);
          const file = await deps.openai.files.create({
            file: await toFile(Buffer.from(text), name),
            purpose: 'batch',
          });
          const batch = await deps.openai.batches.create({
            input_file_id: file.id,
            endpoint: BATCH_ENDPOINT,
            completion_window: '24h',
            metadata: batchMetadata(input, chunk),
          });
          // Uploaded and submitted: a retry rebuilds the file from the staged replies if it needs it.
          await staging.remove(name);
          batches.push({ id: batch.id, requests: fileLines.length, reused: false });
        }
        return { batches };
      });
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
