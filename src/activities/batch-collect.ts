/**
 * Downloads an ended batch's output and error files, matches each line to its dialogue by `custom_id`
 * (output order is not input order), checks each reply as a real-time call would, and stages the usable
 * ones for the next stage. The workflow gets indexes and counts only.
 */
import type { Batch } from 'openai/resources/batches';
import { toRanges, type CollectBatchInput, type CollectBatchResult } from '../run/batch';
import type { Skeleton } from '../run/schemas';
import { flowSteps, indexOf, type OutputLine, readLine } from './batch-lines';
import { withStaging } from './batch-staging';
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

async function fileLines(deps: BatchDeps, fileId: string | null | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await deps.openai.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as OutputLine);
}

/**
 * The flow's steps a skeleton reply is checked against, rebuilt from the plan input; none for another
 * stage, a line with no usable answer, or an input scheduled before the plan was passed.
 */
function stepsToCheck(input: CollectBatchInput, line: OutputLine, index: number): readonly string[] {
  if (!input.plan || input.stage !== 'skeleton' || line.response?.status_code !== 200) return [];
  // Only this package's ids reach here; one that is not still fails its own line, not the collect.
  if (!Number.isSafeInteger(index) || index < 0) return [];
  return flowSteps({ ...input, plan: input.plan }, index);
}

export function createCollectBatch(deps: BatchDeps) {
  return async function collectBatch(input: CollectBatchInput): Promise<CollectBatchResult> {
    try {
      const batch: Batch = await deps.openai.batches.retrieve(input.batchId);
      const lines = [
        ...(await fileLines(deps, batch.output_file_id)),
        ...(await fileLines(deps, batch.error_file_id)),
      ];
      return await withStaging(deps.root, input.outDir, input.intent, async (staging) => {
        const skeletons =
          input.stage === 'responses'
            ? await staging.replies<Skeleton>('skeleton')
            : new Map<number, Skeleton>();
        const result: CollectBatchResult = {
          succeeded: [],
          failed: [],
          usage: { calls: 0, promptTokens: 0, completionTokens: 0 },
        };
        const kept: { index: number; value: unknown }[] = [];
        for (const line of lines) {
          const index = indexOf(line.custom_id);
          const checked = readLine(
            input.stage,
            input.numTurns,
            line,
            skeletons.get(index),
            stepsToCheck(input, line, index),
          );
          if (checked.usage) {
            result.usage.calls++;
            result.usage.promptTokens += checked.usage.promptTokens;
            result.usage.completionTokens += checked.usage.completionTokens;
          }
          if (checked.ok) kept.push({ index: checked.index, value: checked.value });
          else
            result.failed.push({
              index: checked.index,
              type: checked.type,
              reason: checked.reason,
              final: checked.final,
            });
        }
        await staging.keep(input.stage, input.batchId, kept);
        result.succeeded = toRanges(kept.map((k) => k.index));
        return result;
      });
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
