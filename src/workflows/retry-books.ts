/**
 * The books of a retry (`generate --retry-failed`): which dialogues a failure id names, and the run's
 * summary once the retry's own numbers are added. Pure (no Temporal API), so it is unit-tested alone.
 */
import type { IntentId } from '../method/intents';
import { mergeJudgeTallies } from '../method/judge';
import { runCostUsd, type Prices } from '../shared/pricing';
import type { FailedAttempts, IntentProgress, JudgeTally, RunSummary, StageTokens } from '../run/schemas';

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

type Stage = keyof FailedAttempts;
type Attempts = FailedAttempts['skeleton'];
type Tokens = StageTokens['skeleton'];
const STAGES = ['skeleton', 'responses', 'judge'] as const satisfies readonly Stage[];

/** Each stage's entries summed with `sign` (+1 adds, -1 takes away); `judge` only where either has it. */
function combine<T extends Attempts | Tokens>(
  a: Partial<Record<Stage, T>> | undefined,
  b: Partial<Record<Stage, T>> | undefined,
  sign = 1,
): Record<'skeleton' | 'responses', T> & { judge?: T } {
  const out: Partial<Record<Stage, T>> = {};
  for (const stage of STAGES) {
    const [x, y] = [a?.[stage], b?.[stage]];
    if (stage === 'judge' && !x && !y) continue;
    const entry = {} as Record<string, number>;
    for (const key of new Set([...Object.keys(x ?? {}), ...Object.keys(y ?? {})]))
      entry[key] =
        ((x as Record<string, number> | undefined)?.[key] ?? 0) +
        sign * ((y as Record<string, number> | undefined)?.[key] ?? 0);
    out[stage] = entry as T;
  }
  return out as Record<'skeleton' | 'responses', T> & { judge?: T };
}

const attemptsOf = (a?: FailedAttempts, b?: FailedAttempts, sign = 1) =>
  combine<Attempts>(
    { skeleton: ZERO_ATTEMPTS, responses: ZERO_ATTEMPTS, ...a },
    { skeleton: ZERO_ATTEMPTS, responses: ZERO_ATTEMPTS, ...b },
    sign,
  );
const tokensOf = (a?: StageTokens, b?: StageTokens, sign = 1) =>
  combine<Tokens>(
    { skeleton: ZERO_TOKENS, responses: ZERO_TOKENS, ...a },
    { skeleton: ZERO_TOKENS, responses: ZERO_TOKENS, ...b },
    sign,
  );
const ZERO_ATTEMPTS: Attempts = { calls: 0, prompt: 0, completion: 0 };
const ZERO_TOKENS: Tokens = { prompt: 0, completion: 0 };

/** The judge's counts of both, when either has any (runs with a judge). */
const judgeOf = (tallies: (JudgeTally | undefined)[]) =>
  tallies.some(Boolean) ? { judge: mergeJudgeTallies(tallies) } : {};

/**
 * One intent's numbers after a retry of `retried` of its failed dialogues: what the retry wrote joins
 * the written, what failed again replaces the failures it retried, and its calls, tokens and the
 * judge's counts (runs with a judge) are added.
 */
export function addRetry(base: IntentProgress, retry: IntentProgress, retried: number): IntentProgress {
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
    failedAttempts: attemptsOf(base.failedAttempts, retry.failedAttempts),
    stageTokens: tokensOf(base.stageTokens, retry.stageTokens),
    ...judgeOf([base.judge, retry.judge]),
  };
}

/** Each stage's entries summed over intents. */
const sumStages = <T>(
  ps: IntentProgress[],
  pick: (p: IntentProgress) => T | undefined,
  add: (a?: T, b?: T, sign?: number) => T,
): T => ps.reduce<T>((t, p) => add(t, pick(p)), add());

/**
 * The run's summary after a retry: the base's with each intent's numbers replaced, so what only the
 * run counted (topic expansion, the judge's calibration) stays in its totals and cost.
 */
export function summaryOf(base: RunSummary, intents: IntentProgress[], prices?: Prices): RunSummary {
  const sum = (ps: IntentProgress[], pick: (p: IntentProgress) => number) =>
    ps.reduce((total, p) => total + pick(p), 0);
  const delta = (pick: (p: IntentProgress) => number) => sum(intents, pick) - sum(base.intents, pick);
  const attempts = (ps: IntentProgress[]) => sumStages(ps, (p) => p.failedAttempts, attemptsOf);
  const stageTokens = (ps: IntentProgress[]) => sumStages(ps, (p) => p.stageTokens, tokensOf);
  const cost = (ps: IntentProgress[]) =>
    runCostUsd(ps, { model: base.model, judgeModel: base.judgeModel }, prices);
  const costBefore = cost(base.intents);
  return {
    ...base,
    written: sum(intents, (p) => p.written),
    failed: sum(intents, (p) => p.failed),
    tokens: {
      prompt: base.tokens.prompt + delta((p) => p.tokens.prompt),
      completion: base.tokens.completion + delta((p) => p.tokens.completion),
    },
    llmCalls: base.llmCalls + delta((p) => p.llmCalls),
    duplicates: sum(intents, (p) => p.duplicates ?? 0),
    failedAttempts: {
      ...base.failedAttempts,
      ...attemptsOf(base.failedAttempts, attemptsOf(attempts(intents), attempts(base.intents), -1)),
    },
    stageTokens: {
      ...base.stageTokens,
      ...tokensOf(base.stageTokens, tokensOf(stageTokens(intents), stageTokens(base.intents), -1)),
    },
    estimatedCostUsd:
      base.estimatedCostUsd === undefined || costBefore === undefined
        ? cost(intents)
        : base.estimatedCostUsd - costBefore + (cost(intents) ?? 0),
    ...judgeOf(intents.map((p) => p.judge)),
    intents,
  };
}
