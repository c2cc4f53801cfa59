/**
 * The intent's accounting: what it carries across continue-as-new and how calls, failed attempts and
 * finished dialogues are counted. Pure (no Temporal API), so it is unit-tested on its own.
 */
import { planNames } from '../../method/dialogue';
import type { IntentId } from '../../method/intents';
import { resolveAttributes } from '../../method/attributes';
import { planDialogue } from '../../method/plan';
import { emptyJudgeTally, tallyVerdict } from '../../method/judge';
import type {
  AttemptUsage,
  DialoguePlan,
  FailedAttempts,
  FailureRecord,
  IntentProgress,
  JudgeTally,
  JudgeVerdict,
  RunConfig,
  StageTokens,
  Usage,
} from '../../run/schemas';

/** A stage that calls the LLM: the books count its tokens and failed attempts apart. */
export type LlmStage = keyof StageTokens & keyof FailedAttempts;

/** Failure types after which every further call would fail the same way. */
export const SYSTEMIC_FAILURES = new Set(['Llm.Auth', 'Llm.BadRequest']);
/** Consecutive systemic failures, with no success between, that stop the intent's LLM calls. */
export const SYSTEMIC_FAILURE_LIMIT = 3;

export interface IntentState {
  nextIndex: number;
  written: number;
  failed: number;
  llmCalls: number;
  promptTokens: number;
  completionTokens: number;
  paused: boolean;
  continuedAsNew: number;
  /** Finished dialogues the store already held. Absent in states carried over before it existed. */
  duplicates?: number;
  /** Failed LLM attempts, paid, by stage. Absent in states carried over before it existed. */
  failedAttempts?: FailedAttempts;
  /** Tokens of the calls that succeeded, by stage. Absent in states carried over before it existed. */
  stageTokens?: StageTokens;
  /** Finished dialogues at the last progress report to the run. */
  reportedDone?: number;
  /** The run's bound on LLM calls in flight, as last heard (runs with the worker gate). */
  runConcurrency?: number;
  /** The judge's counts; absent until the first verdict, and in runs without a judge. */
  judge?: JudgeTally;
  /** Set once a systemic failure stopped LLM calls: the rest of the plan is recorded as failed. */
  abortReason?: { type: string; message: string };
}

/** A state whose fields added over time are filled in. */
export type Books = IntentState &
  Required<Pick<IntentState, 'duplicates' | 'failedAttempts' | 'stageTokens'>>;

/** The state carried over from the last run of the chain, or a fresh one, with every field present. */
export function openBooks(carried: IntentState | undefined, paused: boolean): Books {
  const state: IntentState = carried ?? {
    nextIndex: 0,
    written: 0,
    failed: 0,
    llmCalls: 0,
    promptTokens: 0,
    completionTokens: 0,
    paused,
    continuedAsNew: 0,
  };
  state.duplicates ??= 0;
  state.failedAttempts ??= {
    skeleton: { calls: 0, prompt: 0, completion: 0 },
    responses: { calls: 0, prompt: 0, completion: 0 },
  };
  // Counted from here on: a state carried over from before has its earlier tokens in the totals only.
  state.stageTokens ??= {
    skeleton: { prompt: 0, completion: 0 },
    responses: { prompt: 0, completion: 0 },
  };
  return state as Books;
}

/** A call that succeeded. */
export function countCall(books: Books, stage: LlmStage, usage: Usage): void {
  books.llmCalls++;
  books.promptTokens += usage.promptTokens;
  books.completionTokens += usage.completionTokens;
  const tokens = (books.stageTokens[stage] ??= { prompt: 0, completion: 0 });
  tokens.prompt += usage.promptTokens;
  tokens.completion += usage.completionTokens;
}

/** Failed attempts were paid: counted apart from the calls that succeeded. */
export function countFailedAttempts(books: Books, stage: LlmStage, paid: AttemptUsage | undefined): void {
  if (!paid) return;
  // The judge's entry appears with its first call: runs without a judge keep the shape they had.
  const failed = (books.failedAttempts[stage] ??= { calls: 0, prompt: 0, completion: 0 });
  failed.calls += paid.calls;
  failed.prompt += paid.promptTokens;
  failed.completion += paid.completionTokens;
}

/** A judge's verdict, or its failure, on a dialogue. */
export function countVerdict(books: Books, verdict: JudgeVerdict): void {
  tallyVerdict((books.judge ??= emptyJudgeTally()), verdict);
}

/** Dialogues finished either way: written, failed, or already in the store. */
export function finishedDialogues(books: Books): number {
  return books.written + books.failed + books.duplicates;
}

/** The line `failures.jsonl` keeps for a dialogue that did not make it. */
export function failureRecord(
  config: RunConfig,
  plan: DialoguePlan,
  stage: FailureRecord['stage'],
  type: string,
  reason: string,
): FailureRecord {
  return {
    id: plan.id,
    intent: planNames(plan, config.taxonomy).intent,
    info_flow: planNames(plan, config.taxonomy).infoFlow,
    topic: plan.topic,
    stage,
    type,
    reason,
    failed_at: new Date().toISOString(),
  };
}

/** The next dialogue of the plan; advances `nextIndex`. */
export function planNext(books: Books, config: RunConfig, intent: IntentId): DialoguePlan {
  return planDialogue({
    runId: config.runId,
    seed: config.seed ?? config.runId,
    intent,
    index: books.nextIndex++,
    taxonomy: config.taxonomy,
    attributes: resolveAttributes(config.attributes),
  });
}

/** After a systemic failure: up to `limit` of the dialogues left, as failures recorded without a call. */
export function abortedFailures(
  books: Books,
  config: RunConfig,
  intent: IntentId,
  planned: number,
  limit: number,
): FailureRecord[] {
  const abort = books.abortReason;
  const batch: FailureRecord[] = [];
  if (!abort) return batch;
  while (books.nextIndex < planned && batch.length < limit) {
    batch.push(
      failureRecord(
        config,
        planNext(books, config, intent),
        'skeleton',
        abort.type,
        `not attempted: the endpoint failed ${SYSTEMIC_FAILURE_LIMIT} calls in a row with ${abort.type}: ${abort.message}`,
      ),
    );
  }
  return batch;
}

/**
 * Counts systemic failures in a row: the third one with no success between stops the intent's LLM
 * calls. Not carried across continue-as-new (the count restarts, as it always did).
 */
export class SystemicWatch {
  private inARow = 0;
  succeeded(): void {
    this.inARow = 0;
  }
  /** Records a failed dialogue; sets `abortReason` once the limit is reached. */
  failed(books: Books, type: string, message: string): void {
    if (SYSTEMIC_FAILURES.has(type) && ++this.inARow >= SYSTEMIC_FAILURE_LIMIT && !books.abortReason)
      books.abortReason = { type, message };
  }
}

/** What the live numbers an intent reports are, beside its books. */
export interface Live {
  inFlight: number;
  concurrency: number;
}

/** The intent's progress as its query, its reports and its result show it. */
export function progressOf(
  books: Books,
  intent: IntentId,
  planned: number,
  live: Live,
  status: IntentProgress['status'],
): IntentProgress {
  return {
    intent,
    planned,
    written: books.written,
    failed: books.failed,
    inFlight: live.inFlight,
    tokens: { prompt: books.promptTokens, completion: books.completionTokens },
    llmCalls: books.llmCalls,
    duplicates: books.duplicates ?? 0,
    failedAttempts: books.failedAttempts,
    stageTokens: books.stageTokens,
    paused: books.paused,
    concurrency: live.concurrency,
    started: books.nextIndex,
    ...(books.judge && { judge: books.judge }),
    status,
    continuedAsNew: books.continuedAsNew,
  };
}
