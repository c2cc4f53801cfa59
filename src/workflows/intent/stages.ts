/**
 * One dialogue as an ordered list of stages: skeleton → responses → store. The intent's loop drives
 * the list (dialogue.ts); adding a stage, or another executor for one, is an entry here.
 *
 * A stage is two halves so the driver awaits exactly the promise `start` returns (the activity's own):
 * wrapping it in an async function would add a turn of the event loop per stage, which can reorder the
 * commands of dialogues that progress in the same workflow task, and the replay tests would fail.
 */
import {
  ActivityFailure,
  isCancellation,
  log,
  type ActivityInterfaceFor,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { toDialogueRecord } from '../../method/dialogue';
import { inJudgeSample, judgeContext } from '../../method/judge';
import type {
  AttemptUsage,
  DialoguePlan,
  DialogueRecord,
  JudgeResult,
  JudgeSettings,
  JudgeVerdict,
  RunConfig,
  Skeleton,
  Usage,
} from '../../run/schemas';
import {
  type Books,
  countCall,
  countFailedAttempts,
  countVerdict,
  type LlmStage,
  SYSTEMIC_FAILURES,
} from './books';
import { failureOf, paidByFailure } from './failures';
import { judgeCallSettings, llmActivityOptions, llmCallSettings, llmSummary, promptOf } from './options';
import type { StoreOutcome } from './storage';

/** What a dialogue has so far: its plan, then each stage's output. */
export interface Dialogue {
  plan: DialoguePlan;
  skeleton?: Skeleton;
  responses?: string[];
  judge?: JudgeVerdict;
}

/** A stage's verdict that the dialogue fails here, recorded as a failure of the last LLM stage. */
export interface Refusal {
  type: string;
  reason: string;
}

export interface Stage<R = unknown> {
  /**
   * Set for a stage that calls the LLM, as the books know it: it waits out a pause, holds one of the
   * intent's slots, and its failure is recorded under this name. LLM stages come first; the slot is
   * released when the dialogue leaves them.
   */
  readonly llm?: LlmStage;
  /** Whether the stage runs for this dialogue. @default every dialogue */
  applies?(dialogue: Dialogue): boolean;
  /** Schedules the stage's work; returns its activity's promise itself (see above). */
  start(dialogue: Dialogue): Promise<R>;
  /** Takes the result into the dialogue and the books, synchronously. */
  finish(dialogue: Dialogue, result: R): Refusal | undefined;
}

export interface StageDeps {
  config: RunConfig;
  books: Books;
  /** Runs with the worker gate tell each LLM activity the run's bound. */
  gated: boolean;
  llm: ActivityInterfaceFor<Activities>;
  store: (record: DialogueRecord) => Promise<StoreOutcome>;
  /** After each successful call: the UI's details are kept current. */
  counted: () => void;
}

/** The stages of every dialogue of a run, in order. */
export function dialogueStages(deps: StageDeps): readonly Stage[] {
  const judge = deps.config.judge;
  return [
    skeletonStage(deps),
    responsesStage(deps),
    ...(judge ? [judgeStage(deps, judge)] : []),
    storeStage(deps),
  ];
}

interface LlmResult {
  usage: Usage;
  failedAttempts?: AttemptUsage;
}

/** A stage that is one LLM activity: per-stage options and summary, its calls counted in the books. */
function llmStage<R extends LlmResult>(
  name: LlmStage,
  deps: StageDeps,
  call: (dialogue: Dialogue, options: ActivityOptions) => Promise<R>,
  keep: (dialogue: Dialogue, result: R) => void,
): Stage<R> {
  const options = llmActivityOptions(deps.config);
  return {
    llm: name,
    start: (dialogue) => call(dialogue, llmSummary(options, name, dialogue.plan)),
    finish(dialogue, result) {
      countCall(deps.books, name, result.usage);
      deps.counted();
      countFailedAttempts(deps.books, name, result.failedAttempts);
      keep(dialogue, result);
      return undefined;
    },
  };
}

function skeletonStage(deps: StageDeps): Stage {
  const { config, books, gated, llm } = deps;
  return llmStage(
    'skeleton',
    deps,
    ({ plan }, options) =>
      llm.generateSkeleton.executeWithOptions(options, [
        {
          plan,
          numTurns: config.numTurnsPerDialog,
          llm: llmCallSettings(config, 'skeleton', books.runConcurrency, gated),
          ...promptOf(config, 'skeleton', plan),
        },
      ]),
    (dialogue, { skeleton }) => void (dialogue.skeleton = skeleton),
  );
}

function responsesStage(deps: StageDeps): Stage {
  const { config, books, gated, llm } = deps;
  return llmStage(
    'responses',
    deps,
    (dialogue, options) =>
      llm.generateResponses.executeWithOptions(options, [
        {
          plan: dialogue.plan,
          skeleton: needs(dialogue.skeleton, 'skeleton'),
          llm: llmCallSettings(config, 'responses', books.runConcurrency, gated),
          ...promptOf(config, 'responses', dialogue.plan),
        },
      ]),
    (dialogue, { responses }) => void (dialogue.responses = responses),
  );
}

/** A judge call that failed within its attempts: the dialogue is kept unjudged (it was paid for). */
interface JudgeFailed {
  failed: { type: string; reason: string; paid?: AttemptUsage };
}

/** Judge failures in a row after which the run's judge is taken for broken (a bad key, a wrong model). */
const JUDGE_SYSTEMIC_LIMIT = 3;

/**
 * Scores the dialogue (a seeded sample of them with `judge.sample`). A judge that fails leaves the
 * dialogue unjudged rather than failed; after three systemic failures in a row this intent stops
 * asking it, so a bad judge key costs three calls, not one per dialogue.
 */
function judgeStage(deps: StageDeps, judge: JudgeSettings): Stage<JudgeResult | JudgeFailed> {
  const { config, books, gated, llm } = deps;
  const options = llmActivityOptions(config);
  const model = judge.model ?? config.model;
  let systemicInARow = 0;
  let stopped: string | undefined;
  const keep = (dialogue: Dialogue, verdict: JudgeVerdict) => {
    dialogue.judge = verdict;
    countVerdict(books, verdict);
  };
  return {
    llm: 'judge',
    applies: ({ plan }) => inJudgeSample(plan.id, judge.sample),
    start: (dialogue) => {
      if (stopped) return Promise.resolve({ failed: { type: 'Judge.Stopped', reason: stopped } });
      return llm.judgeDialogue
        .executeWithOptions(llmSummary(options, 'judge', dialogue.plan), [
          {
            skeleton: needs(dialogue.skeleton, 'skeleton'),
            responses: needs(dialogue.responses, 'responses'),
            context: judgeContext(dialogue.plan, config.taxonomy, config.prompts?.judge),
            llm: judgeCallSettings(config, judge, books.runConcurrency, gated),
          },
        ])
        .catch((error: unknown): JudgeFailed => {
          if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
          return { failed: { ...failureOf(error), paid: paidByFailure(error) } };
        });
    },
    finish(dialogue, outcome) {
      if ('failed' in outcome) {
        const { type, reason, paid } = outcome.failed;
        countFailedAttempts(books, 'judge', paid);
        if (!stopped) {
          log.warn('judge failed; the dialogue is kept unjudged', { id: dialogue.plan.id, type, reason });
          if (SYSTEMIC_FAILURES.has(type) && ++systemicInARow >= JUDGE_SYSTEMIC_LIMIT)
            stopped = `the judge failed ${JUDGE_SYSTEMIC_LIMIT} calls in a row with ${type}: ${reason}`;
        }
        keep(dialogue, { model, error: `${type}: ${reason}`.slice(0, 2_000) });
        return undefined;
      }
      systemicInARow = 0;
      countCall(books, 'judge', outcome.usage);
      deps.counted();
      countFailedAttempts(books, 'judge', outcome.failedAttempts);
      keep(dialogue, outcome.verdict);
      return undefined;
    },
  };
}

/** Writes the finished dialogue; a record the store refuses fails the dialogue. */
function storeStage({ config, books, store }: StageDeps): Stage<StoreOutcome> {
  return {
    start: ({ plan, skeleton, responses, judge }) =>
      store(
        toDialogueRecord({
          plan,
          skeleton: needs(skeleton, 'skeleton'),
          responses: needs(responses, 'responses'),
          model: config.model,
          taxonomy: config.taxonomy,
          judge,
        }),
      ),
    finish(_dialogue, { problem, duplicate }) {
      if (problem) return { type: 'Storage.InvalidRecord', reason: problem };
      if (duplicate) books.duplicates++;
      else books.written++;
      return undefined;
    },
  };
}

/** A stage's input that an earlier stage produces: missing means the list is out of order (a bug). */
function needs<T>(value: T | undefined, what: string): T {
  if (value === undefined)
    throw new Error(`dialogue stage needs the ${what}, which no earlier stage produced`);
  return value;
}
