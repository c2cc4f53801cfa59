/**
 * The books of a retry (`generate --retry-failed`): which dialogues a failure id names, and the run's
 * summary once the retry's own numbers are added. Pure (no Temporal API), so it is unit-tested alone.
 */
import type { IntentId } from '../method/intents';
import { costOf, paidTokens, priceFor, type Prices } from '../shared/pricing';
import type { FailedAttempts, IntentProgress, RunSummary } from '../run/schemas';

/** The intent and plan index a dialogue id of run `runId` names (`<runId>.<intent>.<index>`). */
export function parseDialogueId(
  runId: string,
  intents: readonly string[],
  id: string,
): { intent: IntentId; index: number } | undefined {
  if (!id.startsWith(`${runId}.`)) return undefined;
  const [intent, index, ...rest] = id.slice(runId.length + 1).split('.');
  if (rest.length > 0 || !intent || !intents.includes(intent) || !/^\d+$/.test(index ?? '')) return undefined;
  return { intent, index: Number(index) };
}

const addStages = (a: FailedAttempts | undefined, b: FailedAttempts | undefined): FailedAttempts => {
  const stage = (s: keyof FailedAttempts) => ({
    calls: (a?.[s]?.calls ?? 0) + (b?.[s]?.calls ?? 0),
    prompt: (a?.[s]?.prompt ?? 0) + (b?.[s]?.prompt ?? 0),
    completion: (a?.[s]?.completion ?? 0) + (b?.[s]?.completion ?? 0),
  });
  return { skeleton: stage('skeleton'), responses: stage('responses') };
};

/**
 * One intent's numbers after a retry of `retried` of its failed dialogues: what the retry wrote joins
 * the written, what failed again replaces the failures it retried, and its calls and tokens are added.
 */
export function addRetry(base: IntentProgress, retry: IntentProgress, retried: number): IntentProgress {
  const tokens = (s: 'skeleton' | 'responses') => ({
    prompt: (base.stageTokens?.[s].prompt ?? 0) + (retry.stageTokens?.[s].prompt ?? 0),
    completion: (base.stageTokens?.[s].completion ?? 0) + (retry.stageTokens?.[s].completion ?? 0),
  });
  return {
    ...base,
    written: base.written + retry.written,
    failed: base.failed - retried + retry.failed,
    duplicates: (base.duplicates ?? 0) + (retry.duplicates ?? 0),
    llmCalls: base.llmCalls + retry.llmCalls,
    tokens: {
      prompt: base.tokens.prompt + retry.tokens.prompt,
      completion: base.tokens.completion + retry.tokens.completion,
    },
    failedAttempts: addStages(base.failedAttempts, retry.failedAttempts),
    stageTokens: { skeleton: tokens('skeleton'), responses: tokens('responses') },
  };
}

/** The run's summary from its intents' numbers, as the run workflow sums them. */
export function summaryOf(base: RunSummary, intents: IntentProgress[], prices?: Prices): RunSummary {
  const sum = (pick: (p: IntentProgress) => number) => intents.reduce((total, p) => total + pick(p), 0);
  const stageTokens = (s: 'skeleton' | 'responses') => ({
    prompt: sum((p) => p.stageTokens?.[s].prompt ?? 0),
    completion: sum((p) => p.stageTokens?.[s].completion ?? 0),
  });
  return {
    ...base,
    written: sum((p) => p.written),
    failed: sum((p) => p.failed),
    tokens: { prompt: sum((p) => p.tokens.prompt), completion: sum((p) => p.tokens.completion) },
    llmCalls: sum((p) => p.llmCalls),
    duplicates: sum((p) => p.duplicates ?? 0),
    failedAttempts: intents.reduce<FailedAttempts>(
      (t, p) => addStages(t, p.failedAttempts),
      addStages(undefined, undefined),
    ),
    stageTokens: { skeleton: stageTokens('skeleton'), responses: stageTokens('responses') },
    estimatedCostUsd: costOf(priceFor(base.model, prices), paidTokens(intents)),
    intents,
  };
}
