/** Signals and queries of the run and intent workflows, shared by the workflows and the client. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { IntentProgress, RunProgress } from './schemas';

/** Stops new LLM calls; calls in flight finish. */
export const pauseSignal = defineSignal('pause');
/** Starts new LLM calls again. */
export const resumeSignal = defineSignal('resume');
/** Changes the run's bound on LLM calls in flight. */
export const setConcurrencySignal = defineSignal<[number]>('setConcurrency');

export const runProgressQuery = defineQuery<RunProgress>('progress');
export const intentProgressQuery = defineQuery<IntentProgress>('intentProgress');
