/** Signals and queries of the run and intent workflows, shared by the workflows and the client. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { IntentProgress, RunControlState, RunProgress } from './schemas';
import type { JudgeRecordsBooks } from './judge-records';

/** Stops new LLM calls; calls in flight finish. */
export const pauseSignal = defineSignal('pause');
/** Starts new LLM calls again. */
export const resumeSignal = defineSignal('resume');
/** Changes the run's bound on LLM calls in flight. */
export const setConcurrencySignal = defineSignal<[number]>('setConcurrency');

/** Tells an intent the run's whole bound, which workers enforce across the run's intents. */
export const setRunConcurrencySignal = defineSignal<[number]>('setRunConcurrency');

/** An intent's numbers, sent to its run now and then so the run's own `progress` query is live. */
export const intentReportSignal = defineSignal<[IntentProgress]>('intentReport');

export const runProgressQuery = defineQuery<RunProgress>('progress');
export const intentProgressQuery = defineQuery<IntentProgress>('intentProgress');

/**
 * Updates of the run, under the same names as its signals: the caller learns what the run now does,
 * and a bad argument is refused with its reason before it enters the history. The signals stay for
 * older clients and `temporal workflow signal`.
 */
export const pauseUpdate = defineUpdate<RunControlState>('pause');
export const resumeUpdate = defineUpdate<RunControlState>('resume');
export const setConcurrencyUpdate = defineUpdate<RunControlState, [number]>('setConcurrency');

/** `judge DIR`'s workflow (src/workflows/judge-records.ts): what it has done so far, for its progress line. */
export const judgeRecordsProgressQuery = defineQuery<JudgeRecordsBooks>('judgeProgress');
