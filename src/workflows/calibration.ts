/**
 * A run with a judge first scores the calibration set (src/method/calibration.ts) with its judge model,
 * through the judge stage's own activity (its retries, reply checks, rate limits and worker gate), and
 * reports how well the judge separates consistent dialogues from their planted twins. Once per run:
 * the verdicts are in the run's history, so a resumed run replays them and calls nothing again.
 */
import { ActivityFailure, condition, isCancellation, log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CALIBRATION_SET,
  CALIBRATION_WARN_AUC,
  summariseCalibration,
  type CalibrationDialogue,
  type CalibrationResult,
} from '../method/calibration';
import { defaultJudgeMaxTokens, judgeContext } from '../method/judge';
import { BUILTIN_TAXONOMY } from '../method/taxonomy';
import type { AttemptUsage, JudgeCalibration, JudgeSettings, JudgeVerdict, RunConfig } from '../run/schemas';
import { SYSTEMIC_FAILURE_LIMIT, SYSTEMIC_FAILURES } from './intent/books';
import { failureOf, paidByFailure } from './intent/failures';
import { judgeCallSettings, llmActivityOptions } from './intent/options';

/** What the calibration needs of the run: its bound on calls in flight and whether it is paused. */
export interface CalibrationRun {
  readonly config: RunConfig;
  readonly concurrency: number;
  readonly paused: boolean;
  readonly gated: boolean;
}

type Books = Pick<JudgeCalibration, 'llmCalls' | 'tokens' | 'failedAttempts'>;

/** Scores every calibration dialogue, `run.concurrency` at once and none while the run is paused. */
export async function calibrateRunJudge(
  run: CalibrationRun,
  judge: JudgeSettings,
): Promise<JudgeCalibration> {
  const books: Books = {
    llmCalls: 0,
    tokens: { prompt: 0, completion: 0 },
    failedAttempts: { calls: 0, prompt: 0, completion: 0 },
  };
  const scores: CalibrationResult['scores'] = [];
  let next = 0;
  // A judge that refuses its key or model fails every call alike: the rest is left unscored.
  let systemicInARow = 0;
  const worker = async () => {
    while (next < CALIBRATION_SET.length && systemicInARow < SYSTEMIC_FAILURE_LIMIT) {
      const index = next++;
      await condition(() => !run.paused);
      const scored = await scoreDialogue(run, judge, CALIBRATION_SET[index]!, books);
      systemicInARow = scored.systemic ? systemicInARow + 1 : 0;
      scores[index] = scoreOf(index, scored.verdict);
    }
  };
  await Promise.all(Array.from({ length: Math.min(run.concurrency, CALIBRATION_SET.length) }, worker));
  for (let i = 0; i < CALIBRATION_SET.length; i++) scores[i] ??= scoreOf(i, undefined);
  const calibration = calibrationOf(judge.model ?? run.config.model, scores, books);
  if (calibration.nearChance)
    log.warn('the judge barely tells consistent dialogues from planted failures', { auc: calibration.auc });
  return calibration;
}

/** One calibration dialogue through the judge stage's activity; its usage booked, failures kept unscored. */
async function scoreDialogue(
  run: CalibrationRun,
  judge: JudgeSettings,
  d: CalibrationDialogue,
  books: Books,
): Promise<{ verdict?: JudgeVerdict; systemic: boolean }> {
  const { config } = run;
  const options = llmActivityOptions(config);
  const settings = judgeCallSettings(config, judge, run.concurrency, run.gated);
  try {
    const result = await proxyActivities<Activities>(options).judgeDialogue.executeWithOptions(
      { ...options, summary: `calibrate the judge: ${d.id}` },
      [
        {
          skeleton: { category: '', queries: d.queries },
          responses: d.responses,
          // The set is written for the built-in intents and flows, whatever the run's taxonomy.
          context: judgeContext(d, BUILTIN_TAXONOMY, config.prompts?.judge),
          llm: { ...settings, maxTokens: judge.maxTokens ?? defaultJudgeMaxTokens(d.responses.length) },
        },
      ],
    );
    books.llmCalls++;
    books.tokens.prompt += result.usage.promptTokens;
    books.tokens.completion += result.usage.completionTokens;
    countFailed(books.failedAttempts, result.failedAttempts);
    return { verdict: result.verdict, systemic: false };
  } catch (error) {
    if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
    // An unscored dialogue counts as neither kind: the AUC is over what the judge scored.
    countFailed(books.failedAttempts, paidByFailure(error));
    return { systemic: SYSTEMIC_FAILURES.has(failureOf(error).type) };
  }
}

function calibrationOf(model: string, scores: CalibrationResult['scores'], books: Books): JudgeCalibration {
  const result = summariseCalibration(scores);
  return {
    model,
    ...(result.auc !== undefined && { auc: result.auc }),
    ...(result.gap !== undefined && { gap: result.gap }),
    nearChance: result.auc === undefined || result.auc < CALIBRATION_WARN_AUC,
    dialogues: scores.length,
    unscored: scores.filter((s) => s.score === null).length,
    planted: scores.filter((s) => s.planted).length,
    flagged: result.flagged,
    ...books,
  };
}

function scoreOf(index: number, verdict: JudgeVerdict | undefined): CalibrationResult['scores'][number] {
  const d = CALIBRATION_SET[index]!;
  return {
    id: d.id,
    ...(d.planted && { planted: d.planted.flag }),
    score: verdict?.score ?? null,
    flags: verdict?.flags ?? [],
  };
}

function countFailed(
  into: { calls: number; prompt: number; completion: number },
  paid: AttemptUsage | undefined,
): void {
  if (!paid) return;
  into.calls += paid.calls;
  into.prompt += paid.promptTokens;
  into.completion += paid.completionTokens;
}
