/**
 * `consistent-chat judge DIR`: scores a finished run's stored dialogues that have no verdict (or a
 * failed one), exactly once each. Pages of dialogs.jsonl are read by an activity (never the whole file
 * through history); each page's records are judged by the judge stage's own activity, with the run's
 * concurrency, rate limits and worker gate; their verdicts go to judgments.jsonl in one storage call
 * per page; the workflow continues as new between pages before its history grows large, carrying
 * only the page cursor and the books. At the end the verdicts are merged into dialogs.jsonl.
 *
 * Exactly once: a record with a verdict in dialogs.jsonl or judgments.jsonl is never read as a
 * candidate again, a judged page's activities replay from history, and judgments.jsonl skips ids it holds.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReadJudgePageResult } from '../activities/storage';
import { emptyJudgeTally, tallyVerdict, type JudgeContext } from '../method/judge';
import { BUILTIN_TAXONOMY } from '../method/taxonomy';
import { runInputSchema, type JudgeSettings, type JudgeVerdict, type RunConfig } from '../run/schemas';
import type { JudgeRecordsBooks, JudgeRecordsInput, JudgeRecordsSummary } from '../run/judge-records';
import { RUN_FAILURE_TYPES } from './run';
import { judgeRecordsProgressQuery } from '../run/messages';
import { costOf, priceFor } from '../shared/pricing';
import { storageTaskQueueFor } from '../shared/storage-queue';
import { SYSTEMIC_FAILURE_LIMIT, SYSTEMIC_FAILURES } from './intent/books';
import { failureOf, paidByFailure } from './intent/failures';
import { judgeCallSettings, llmActivityOptions, storageActivityOptions } from './intent/options';

/** Lines of dialogs.jsonl read per page. */
export const JUDGE_PAGE_LINES = 200;
/** Continue as new past either, checked between pages (a page adds at most ~3 events and ~5 kB per line). */
const HISTORY_EVENTS_LIMIT = 4_000;
const HISTORY_BYTES_LIMIT = 4 * 1024 * 1024;

/** The client always sets the judge; a bare input judges everything with the run's model, as `--judge`. */
const DEFAULT_JUDGE: JudgeSettings = { sample: 1, temperature: 0 };

export { judgeRecordsProgressQuery };
export type { JudgeRecordsBooks, JudgeRecordsInput, JudgeRecordsSummary };

const emptyBooks = (): JudgeRecordsBooks => ({
  scanned: 0,
  judged: 0,
  failed: 0,
  llmCalls: 0,
  tokens: { prompt: 0, completion: 0 },
  failedAttempts: { calls: 0, prompt: 0, completion: 0 },
  tally: emptyJudgeTally(),
  systemicInARow: 0,
});

export async function consistentChatJudgeRecords(input: JudgeRecordsInput): Promise<JudgeRecordsSummary> {
  const config = checkedConfig(input.config);
  const judge = config.judge ?? DEFAULT_JUDGE;
  const books = input.books ?? emptyBooks();
  setHandler(judgeRecordsProgressQuery, () => books);
  const storage = proxyActivities<Activities>(
    storageActivityOptions(storageTaskQueueFor(config, workflowInfo().taskQueue)),
  );
  const target = { outDir: config.outDir, runId: config.runId };
  let from = input.from ?? { line: 0, byte: 0 };
  while (!books.stopped) {
    const page = await storage.readJudgePage({
      ...target,
      from,
      maxLines: JUDGE_PAGE_LINES,
      sample: judge.sample,
    });
    books.scanned += page.scanned;
    const judgments = await judgePage(config, books, page.dialogues);
    if (judgments.length > 0) await storage.storeJudgments({ ...target, judgments });
    from = page.next;
    if (page.done) break;
    const info = workflowInfo();
    if (
      info.continueAsNewSuggested ||
      info.historyLength > HISTORY_EVENTS_LIMIT ||
      info.historySize > HISTORY_BYTES_LIMIT
    )
      await continueAsNew<typeof consistentChatJudgeRecords>({ config, from, books });
  }
  const { merged } = await storage.applyJudgments(target);
  const judgeModel = judge.model ?? config.model;
  const paid = {
    prompt: books.tokens.prompt + books.failedAttempts.prompt,
    completion: books.tokens.completion + books.failedAttempts.completion,
  };
  const estimatedCostUsd = costOf(priceFor(judgeModel, config.prices), paid);
  return {
    ...books,
    runId: config.runId,
    judgeModel,
    merged,
    ...(estimatedCostUsd !== undefined && { estimatedCostUsd }),
  };
}

/** Judges a page's records, `config.concurrency` at once; returns their verdicts in page order. */
async function judgePage(
  config: RunConfig,
  books: JudgeRecordsBooks,
  dialogues: ReadJudgePageResult['dialogues'],
): Promise<{ id: string; line: number; judge: JudgeVerdict }[]> {
  const llm = proxyActivities<Activities>(llmActivityOptions(config));
  const settings = judgeCallSettings(config, config.judge ?? DEFAULT_JUDGE, config.concurrency, true);
  const verdicts: (JudgeVerdict | undefined)[] = [];
  let free = config.concurrency;
  await Promise.all(
    dialogues.map(async (d, i) => {
      await condition(() => free > 0 || books.stopped !== undefined);
      if (books.stopped) return;
      free--;
      try {
        const result = await llm.judgeDialogue.executeWithOptions(
          { ...llmActivityOptions(config), summary: `judge line ${d.line + 1}: ${d.id}` },
          [
            {
              skeleton: { category: '', queries: d.queries },
              responses: d.responses,
              context: contextOf(config, d.intent, d.infoFlow),
              llm: settings,
            },
          ],
        );
        books.llmCalls++;
        books.tokens.prompt += result.usage.promptTokens;
        books.tokens.completion += result.usage.completionTokens;
        countFailed(books, result.failedAttempts);
        books.judged++;
        books.systemicInARow = 0;
        tallyVerdict(books.tally, result.verdict);
        verdicts[i] = result.verdict;
      } catch (error) {
        if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
        const { type, reason } = failureOf(error);
        countFailed(books, paidByFailure(error));
        books.failed++;
        if (SYSTEMIC_FAILURES.has(type) && ++books.systemicInARow >= SYSTEMIC_FAILURE_LIMIT)
          books.stopped ??= `the judge failed ${SYSTEMIC_FAILURE_LIMIT} calls in a row with ${type}: ${reason}`;
      } finally {
        free++;
      }
    }),
  );
  return dialogues.flatMap((d, i) => (verdicts[i] ? [{ id: d.id, line: d.line, judge: verdicts[i] }] : []));
}

function countFailed(
  books: JudgeRecordsBooks,
  paid: { calls: number; promptTokens: number; completionTokens: number } | undefined,
): void {
  if (!paid) return;
  books.failedAttempts.calls += paid.calls;
  books.failedAttempts.prompt += paid.promptTokens;
  books.failedAttempts.completion += paid.completionTokens;
}

/** The rubric's context from the record's names: its flow looked up by name in the run's taxonomy. */
function contextOf(config: RunConfig, intent: string, infoFlow: string): JudgeContext {
  const taxonomy = config.taxonomy ?? BUILTIN_TAXONOMY;
  const flow = Object.values(taxonomy.infoFlows).find((f) => f.name === infoFlow);
  const template = config.prompts?.judge;
  return { intent, infoFlow: flow ?? { name: infoFlow, steps: [] }, ...(template && { template }) };
}

/** The run's input, checked as the run checks it: a bad field fails the workflow at once, named. */
function checkedConfig(config: unknown): RunConfig {
  const parsed = runInputSchema.safeParse(config);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw ApplicationFailure.nonRetryable(
    `invalid judge input: config.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    RUN_FAILURE_TYPES.invalidInput,
  );
}
