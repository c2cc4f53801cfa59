import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { inJudgeSample } from '../method/judge';
import { InvalidRecordError } from '../storage/judgments';
import {
  dialogueRecordSchema,
  type CheckOutputDirectoryInput,
  type CheckOutputDirectoryResult,
  type SettleRetryInput,
  type StoreDialoguesInput,
  type StoreDialoguesResult,
  type StoreFailuresInput,
  type StoreFailuresResult,
  type StoreResult,
  type WriteRunFilesInput,
  type JudgeVerdict,
} from '../run/schemas';
import type { TopicLeaf } from '../method/expansion';
import { dialogueMetrics } from '../method/metrics';
import { describeIssues } from '../method/replies';
import type { StoredDialogueRecord } from '../export/records';
import type { StoreRegistry } from '../storage/jsonl-store';
import type { StoreBatchDialoguesInput } from '../run/batch';
import { toDialogueRecord } from '../method/dialogue';
import type { DialogueRecord, Skeleton } from '../method/types';
import { planOf } from './batch-lines';
import { withStaging } from './batch-staging';
import { STORAGE_FAILURE_TYPES, toStorageFailure } from './errors';
import type { PackageMetrics } from './metrics';
import { runFiles } from './run-files';

export { STORAGE_FAILURE_TYPES };

export interface ReadJudgePageInput {
  outDir: string;
  runId: string;
  /** A line start of dialogs.jsonl: 0/0, or the previous page's `next`. */
  from: { line: number; byte: number };
  maxLines: number;
  /** The fraction judged, a seeded sample (`inJudgeSample`). */
  sample: number;
}

export interface ReadJudgePageResult {
  dialogues: {
    line: number;
    id: string;
    /** The record's intent and info-flow names, as written. */
    intent: string;
    infoFlow: string;
    queries: string[];
    responses: string[];
  }[];
  /** Lines read, judged or not. */
  scanned: number;
  next: { line: number; byte: number };
  done: boolean;
}

export interface StoreJudgmentsInput {
  outDir: string;
  runId: string;
  judgments: { id: string; line: number; judge: JudgeVerdict }[];
}

/** What `judge DIR` reads of a record; the rest of the line is left as it is. */
const judgeableSchema = z.object({
  id: z.string().min(1),
  intent: z.string(),
  info_flow: z.string(),
  conversation: z.array(z.object({ role: z.string(), value: z.string() })),
  judge: z.object({ error: z.string().optional() }).passthrough().optional(),
});

function judgeableRecord(text: string, line: number): z.infer<typeof judgeableSchema> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRecordError(`dialogs.jsonl line ${line + 1}: not JSON`);
  }
  const parsed = judgeableSchema.safeParse(value);
  if (!parsed.success)
    throw new InvalidRecordError(`dialogs.jsonl line ${line + 1}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export interface StoreTopicsInput {
  outDir: string;
  runId: string;
  intent: string;
  /** Index of the first leaf: a long list goes in several batches. */
  from: number;
  leaves: TopicLeaf[];
}

/** The run of a batch, from its ids (`<runId>.<intent>.<index>`), so a directory holds one run only. */
function runOf(ids: string[]): string | undefined {
  const first = ids[0];
  if (first === undefined) return undefined;
  const parts = first.split('.');
  if (parts.length < 3) return undefined;
  const runId = parts.slice(0, -2).join('.');
  return ids.every((id) => id.startsWith(`${runId}.`)) ? runId : undefined;
}

/**
 * Persists finished dialogues and failure records exactly once: the store skips ids it already holds,
 * so a retried or repeated activity never duplicates a line. Every directory lies below the registry's
 * output root; one that does not, or is not ours, fails non-retryably as `Storage.ForbiddenDirectory`.
 */
export function createStorageActivities(storage: StoreRegistry, metrics?: PackageMetrics) {
  const open = async (outDir: string, ids: string[]) => {
    try {
      return await storage.get(outDir, runOf(ids));
    } catch (error) {
      throw toStorageFailure(error);
    }
  };
  const storeDialogues = dialogueStorer(open, metrics);
  return {
    /**
     * Opens (creating) the run's directory as a store would, before the run pays for any LLM call: a
     * directory this worker refuses fails at once as `Storage.ForbiddenDirectory`, naming it and the root.
     */
    async checkOutputDirectory(input: CheckOutputDirectoryInput): Promise<CheckOutputDirectoryResult> {
      try {
        await storage.get(input.outDir, input.runId);
      } catch (error) {
        throw toStorageFailure(error, storage.root);
      }
      return { root: storage.root };
    },
    writeRunFiles: runFilesWriter(storage),
    /** Rewrites failures.jsonl after a retry: see `JsonlStore.replaceFailures`. */
    async settleRetry(input: SettleRetryInput): Promise<{ failures: number }> {
      const store = await open(input.outDir, input.retried);
      try {
        return { failures: await store.replaceFailures(new Set(input.retried), input.failedAgain) };
      } catch (error) {
        throw toStorageFailure(error);
      }
    },
    storeDialogues: (input: StoreDialoguesInput) => storeDialogues(input),
    /**
     * Stores the dialogues whose responses one batch brought: their records are built here from the
     * staged skeletons and responses (src/activities/batch-staging.ts), so no payload passes through
     * the workflow; the store skips ids it holds, so a retry or a resumed run writes each line once.
     */
    async storeBatchDialogues(input: StoreBatchDialoguesInput): Promise<StoreDialoguesResult> {
      const records = await batchRecords(storage.root, input).catch((error: unknown) => {
        throw toStorageFailure(error);
      });
      return storeDialogues({ outDir: input.outDir, records });
    },
    /** Writes an intent's topic leaves to `topics.jsonl`; ids already there are skipped (retries, resumes). */
    async storeTopics(input: StoreTopicsInput): Promise<{ written: number }> {
      const ids = input.leaves.map((_, i) => `${input.runId}.${input.intent}.t${input.from + i}`);
      const store = await open(input.outDir, ids);
      const results = await Promise.all(
        input.leaves.map((leaf, i) => store.appendTopic(ids[i]!, { intent: input.intent, ...leaf })),
      ).catch((error: unknown) => {
        throw toStorageFailure(error);
      });
      return { written: results.filter((r) => r.status === 'written').length };
    },
    /**
     * A page of dialogs.jsonl for `judge DIR`: the records still to judge (no verdict, or a failed one;
     * in the sample; none already in judgments.jsonl), with what the judge needs and their line.
     */
    async readJudgePage(input: ReadJudgePageInput): Promise<ReadJudgePageResult> {
      const store = await open(input.outDir, [`${input.runId}.page.0`]);
      try {
        const page = await store.readDialoguesPage(input.from, input.maxLines);
        const dialogues: ReadJudgePageResult['dialogues'] = [];
        for (const { line, text } of page.lines) {
          const record = judgeableRecord(text, line);
          if (record.judge && record.judge.error === undefined) continue;
          if (!inJudgeSample(record.id, input.sample) || (await store.hasJudgment(record.id))) continue;
          const said = (role: string) =>
            record.conversation.filter((t) => t.role === role).map((t) => t.value);
          const queries = said('user');
          dialogues.push({
            line,
            id: record.id,
            intent: record.intent,
            infoFlow: record.info_flow,
            queries,
            responses: said('assistant').slice(0, queries.length),
          });
        }
        return { dialogues, scanned: page.lines.length, next: page.next, done: page.done };
      } catch (error) {
        throw toStorageFailure(error);
      }
    },
    /** Appends verdicts to judgments.jsonl, in the order given; an id already there is skipped. */
    async storeJudgments(input: StoreJudgmentsInput): Promise<{ written: number }> {
      const store = await open(input.outDir, [`${input.runId}.judge.0`]);
      const results = await Promise.all(
        input.judgments.map((j) => store.appendJudgment(j.id, j.line, j.judge)),
      ).catch((error: unknown) => {
        throw toStorageFailure(error);
      });
      return { written: results.filter((r) => r.status === 'written').length };
    },
    /** Merges judgments.jsonl into dialogs.jsonl (an atomic replace); see `JsonlStore.applyJudgments`. */
    async applyJudgments(input: { outDir: string; runId: string }): Promise<{ merged: number }> {
      const store = await open(input.outDir, [`${input.runId}.judge.0`]);
      try {
        return { merged: await store.applyJudgments() };
      } catch (error) {
        throw toStorageFailure(error);
      }
    },
    async storeFailures(input: StoreFailuresInput): Promise<StoreFailuresResult> {
      const store = await open(
        input.outDir,
        input.failures.map((f) => f.id),
      );
      // The store commits concurrent appends in one write, so a batch costs one fsync.
      const results = await Promise.all(input.failures.map((failure) => store.appendFailure(failure))).catch(
        (error: unknown) => {
          throw toStorageFailure(error);
        },
      );
      metrics?.stored(
        'failures',
        runOf(input.failures.map((f) => f.id)) ?? '',
        writtenByIntent(input.failures, results),
        bytesOf(results),
      );
      const duplicateIds = input.failures
        .filter((_, i) => results[i]!.status === 'duplicate')
        .map((f) => f.id);
      return { written: results.length - duplicateIds.length, duplicates: duplicateIds.length, duplicateIds };
    },
  };
}

/** The run's last step: summary.json, and run.json and the method copies if no client wrote them. */
function runFilesWriter(storage: StoreRegistry) {
  return async function writeRunFiles(input: WriteRunFilesInput): Promise<{ written: string[] }> {
    let store;
    try {
      store = await storage.get(input.config.outDir, input.config.runId);
    } catch (error) {
      throw toStorageFailure(error, storage.root);
    }
    try {
      return { written: await store.writeSideFiles(runFiles(input)) };
    } catch (error) {
      throw toStorageFailure(error);
    }
  };
}

/** Records newly written, by intent id (from `<runId>.<intent>.<index>`: a bounded label, unlike the id). */
function writtenByIntent(
  records: readonly { id: string }[],
  results: readonly StoreResult[],
): Map<string, number> {
  const counts = new Map<string, number>();
  records.forEach((r, i) => {
    const intent = r.id.split('.').at(-2) ?? '';
    if (results[i]?.status === 'written') counts.set(intent, (counts.get(intent) ?? 0) + 1);
  });
  return counts;
}

const bytesOf = (results: readonly StoreResult[]) => results.reduce((sum, r) => sum + (r.bytes ?? 0), 0);

/** The records of the dialogues whose responses one batch brought, from the staged files. */
function batchRecords(root: string, input: StoreBatchDialoguesInput): Promise<DialogueRecord[]> {
  return withStaging(root, input.outDir, input.intent, async (staging) => {
    const skeletons = await staging.replies<Skeleton>('skeleton');
    const replies = await staging.repliesOf<{ responses: string[] }>('responses', input.batchId);
    return replies.flatMap(({ index, value }) => {
      const skeleton = skeletons.get(index);
      if (!skeleton) return [];
      const plan = planOf(input, index);
      const {
        model,
        plan: { taxonomy },
      } = input;
      return [toDialogueRecord({ plan, skeleton, responses: value.responses, model, taxonomy })];
    });
  });
}

type OpenStore = (outDir: string, ids: string[]) => ReturnType<StoreRegistry['get']>;

/**
 * Appends a batch of finished dialogues, each with its `metrics` computed here (pure and cheap, so
 * a retry writes the same line, and the workflow's payloads and history do not grow); a malformed
 * record is reported back, never written.
 */
function dialogueStorer(open: OpenStore, metrics: PackageMetrics | undefined) {
  return async function storeDialogues(input: StoreDialoguesInput): Promise<StoreDialoguesResult> {
    const store = await open(
      input.outDir,
      input.records.map((r) => r.id),
    );
    const invalid: StoreDialoguesResult['invalid'] = [];
    const valid: StoredDialogueRecord[] = [];
    for (const record of input.records) {
      const parsed = dialogueRecordSchema.safeParse(record);
      if (parsed.success) valid.push({ ...parsed.data, metrics: dialogueMetrics(parsed.data.conversation) });
      else invalid.push({ id: record.id, reason: describeIssues(parsed.error) });
    }
    // Concurrent appends share one write and one fsync in the store.
    const results = await Promise.all(valid.map((record) => store.appendDialogue(record))).catch(
      (error: unknown) => {
        throw toStorageFailure(error);
      },
    );
    metrics?.stored(
      'dialogues',
      runOf(valid.map((r) => r.id)) ?? '',
      writtenByIntent(valid, results),
      bytesOf(results),
    );
    const written = results.filter((r) => r.status === 'written').length;
    const duplicates = results.length - written;
    // On a retry, a record found present was most likely written by the earlier attempt: only what
    // the first attempt finds was stored before this activity, and counts as a duplicate.
    const firstAttempt = !Context.current().info.attempt || Context.current().info.attempt === 1;
    const duplicateIds = firstAttempt
      ? valid.filter((_, i) => results[i]!.status === 'duplicate').map((r) => r.id)
      : [];
    return { written, duplicates, invalid, duplicateIds };
  };
}
