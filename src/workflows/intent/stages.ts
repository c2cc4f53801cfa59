/**
 * One dialogue as an ordered list of stages: skeleton → responses → store. The intent's loop drives
 * the list (dialogue.ts); adding a stage, or another executor for one, is an entry here.
 *
 * A stage is two halves so the driver awaits exactly the promise `start` returns (the activity's own):
 * wrapping it in an async function would add a turn of the event loop per stage, which can reorder the
 * commands of dialogues that progress in the same workflow task, and the replay tests would fail.
 */
import type { ActivityInterfaceFor, ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { toDialogueRecord } from '../../method/dialogue';
import type {
  AttemptUsage,
  DialoguePlan,
  DialogueRecord,
  RunConfig,
  Skeleton,
  Usage,
} from '../../run/schemas';
import { type Books, countCall, countFailedAttempts, type LlmStage } from './books';
import { llmActivityOptions, llmCallSettings, llmSummary, promptOf } from './options';
import type { StoreOutcome } from './storage';

/** What a dialogue has so far: its plan, then each stage's output. */
export interface Dialogue {
  plan: DialoguePlan;
  skeleton?: Skeleton;
  responses?: string[];
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
  return [skeletonStage(deps), responsesStage(deps), storeStage(deps)];
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

/** Writes the finished dialogue; a record the store refuses fails the dialogue. */
function storeStage({ config, books, store }: StageDeps): Stage<StoreOutcome> {
  return {
    start: ({ plan, skeleton, responses }) =>
      store(
        toDialogueRecord({
          plan,
          skeleton: needs(skeleton, 'skeleton'),
          responses: needs(responses, 'responses'),
          model: config.model,
          taxonomy: config.taxonomy,
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
