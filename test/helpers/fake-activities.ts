/**
 * Activities replaced for workflow tests: deterministic skeletons and responses, an in-memory store
 * that counts what it is asked, and hooks to inject failures per call.
 */
import type { Activities } from '../../src/activities';
import type {
  DialogueRecord,
  FailureRecord,
  JudgeInput,
  ResponsesInput,
  SkeletonInput,
  WriteRunFilesInput,
} from '../../src/run/schemas';
import type { TopicLeaf } from '../../src/method/expansion';

export interface FakeActivityLog {
  skeletonCalls: SkeletonInput[];
  responsesCalls: ResponsesInput[];
  judgeCalls: JudgeInput[];
  dialogues: Map<string, DialogueRecord>;
  storeCalls: number;
  failures: FailureRecord[];
  /** What `storeTopics` was given, by intent. */
  topics: Map<string, TopicLeaf[]>;
  /** The summaries the run's last step was given, one per finished run. */
  runFiles: WriteRunFilesInput[];
}

const notFaked = (): Promise<never> => Promise.reject(new Error('batch activities are not faked'));

export function fakeActivities(
  hooks: {
    beforeSkeleton?: (input: SkeletonInput, call: number) => void | Promise<void>;
    beforeResponses?: (input: ResponsesInput, call: number) => void | Promise<void>;
    beforeJudge?: (input: JudgeInput, call: number) => void | Promise<void>;
  } = {},
): { activities: Activities; log: FakeActivityLog } {
  const log: FakeActivityLog = {
    skeletonCalls: [],
    responsesCalls: [],
    judgeCalls: [],
    dialogues: new Map(),
    storeCalls: 0,
    failures: [],
    topics: new Map(),
    runFiles: [],
  };
  const usage = { promptTokens: 100, completionTokens: 50 };
  const activities: Activities = {
    async generateSkeleton(input) {
      log.skeletonCalls.push(input);
      await hooks.beforeSkeleton?.(input, log.skeletonCalls.length);
      return {
        skeleton: {
          category: `Topic ${input.plan.index}`,
          queries: Array.from(
            { length: input.numTurns },
            (_, i) => `query ${i + 1} about ${input.plan.topic}`,
          ),
        },
        usage,
      };
    },
    async generateResponses(input) {
      log.responsesCalls.push(input);
      await hooks.beforeResponses?.(input, log.responsesCalls.length);
      return { responses: input.skeleton.queries.map((q) => `answer to ${q}`), usage };
    },
    async judgeDialogue(input) {
      log.judgeCalls.push(input);
      await hooks.beforeJudge?.(input, log.judgeCalls.length);
      const turnScores = input.responses.map((_, i) => 10 - (i % 3));
      return {
        verdict: {
          model: input.llm.model,
          score: Math.min(...turnScores),
          turn_scores: turnScores,
          flags: [],
          reason: 'consistent throughout',
        },
        usage,
      };
    },
    settleRetry(input) {
      const retried = new Set(input.retried);
      log.failures = [...log.failures.filter((f) => !retried.has(f.id)), ...input.failedAgain];
      return Promise.resolve({ failures: log.failures.length });
    },
    checkOutputDirectory() {
      return Promise.resolve({ root: '/' });
    },
    writeRunFiles(input) {
      log.runFiles.push(input);
      return Promise.resolve({ written: ['summary.json'] });
    },
    // `judge DIR` over the stored dialogues, in the order they were stored: a line is an index.
    readJudgePage(input) {
      const lines = [...log.dialogues.values()];
      const end = Math.min(lines.length, input.from.line + input.maxLines);
      const dialogues = lines
        .map((record, line) => ({ record, line }))
        .slice(input.from.line, end)
        .filter(({ record }) => !record.judge || record.judge.error !== undefined)
        .map(({ record, line }) => ({
          line,
          id: record.id,
          intent: record.intent,
          infoFlow: record.info_flow,
          queries: record.conversation.filter((t) => t.role === 'user').map((t) => t.value),
          responses: record.conversation.filter((t) => t.role === 'assistant').map((t) => t.value),
        }));
      const next = { line: end, byte: end };
      return Promise.resolve({ dialogues, scanned: end - input.from.line, next, done: end >= lines.length });
    },
    storeJudgments(input) {
      for (const { id, judge } of input.judgments)
        log.dialogues.set(id, { ...log.dialogues.get(id)!, judge });
      return Promise.resolve({ written: input.judgments.length });
    },
    applyJudgments() {
      return Promise.resolve({ merged: 0 });
    },
    storeDialogues(input) {
      log.storeCalls++;
      let written = 0;
      const duplicateIds: string[] = [];
      for (const record of input.records) {
        if (log.dialogues.has(record.id)) {
          duplicateIds.push(record.id);
          continue;
        }
        log.dialogues.set(record.id, record);
        written++;
      }
      return Promise.resolve({
        written,
        duplicates: input.records.length - written,
        invalid: [],
        duplicateIds,
      });
    },
    expandTopic(input) {
      const parent = input.path.join(' / ');
      const subtopics = Array.from({ length: input.count }, (_, i) => `case ${i} of ${parent}`);
      return Promise.resolve({
        subtopics,
        dropped: 0,
        usage,
        failedAttempts: { calls: 0, promptTokens: 0, completionTokens: 0 },
      });
    },
    storeTopics(input) {
      const leaves = log.topics.get(input.intent) ?? [];
      leaves.splice(input.from, input.leaves.length, ...input.leaves);
      log.topics.set(input.intent, leaves);
      return Promise.resolve({ written: input.leaves.length });
    },
    storeFailures(input) {
      log.failures.push(...input.failures);
      return Promise.resolve({ written: input.failures.length, duplicates: 0 });
    },
    // Batch mode is tested against the test server's Batch API (test/integration/batch.test.ts).
    submitBatch: notFaked,
    batchStatus: notFaked,
    collectBatch: notFaked,
    cancelBatch: notFaked,
    stagedSkeleton: notFaked,
    clearStaging: notFaked,
    storeBatchDialogues: notFaked,
  };
  return { activities, log };
}

type ResultOf<K extends keyof Activities> = Awaited<ReturnType<Activities[K]>>;

/** Per activity, what to do with a result before the workflow gets it: change it, or hold it. */
export type ResultHooks = {
  [K in keyof Activities]?: (
    result: ResultOf<K>,
    input: Parameters<Activities[K]>[0],
  ) => ResultOf<K> | Promise<ResultOf<K>>;
};

/** `base` with each hooked activity's result passed through its hook: the fake's work, then the test's. */
export function withResultHooks(base: Activities, hooks: ResultHooks): Activities {
  const wrapped: Record<string, unknown> = { ...base };
  for (const [name, hook] of Object.entries(hooks)) {
    const original = wrapped[name] as (input: unknown) => Promise<unknown>;
    const after = hook as (result: unknown, input: unknown) => unknown;
    wrapped[name] = async (input: unknown) => after(await original(input), input);
  }
  return wrapped as Activities;
}
