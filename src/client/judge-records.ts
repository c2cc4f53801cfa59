/**
 * `consistent-chat judge DIR`: scores the stored dialogues of a finished run that have no verdict (or
 * a failed one) as a workflow of its own (src/workflows/judge-records.ts), on the run's embedded
 * server and with the run's worker machinery: `generate` acquires everything as for a resume and hands
 * over here. The verdicts end up in dialogs.jsonl itself; the command's books in `judge-summary.json`.
 */
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ConfigError } from '../shared/errors';
import { WORKFLOW_TYPES } from '../shared/constants';
import { formatCost } from '../shared/pricing';
import { meanJudgeScore } from '../method/judge';
import type { JudgeRecordsInput, JudgeRecordsSummary } from '../run/judge-records';
import type { RunSummary } from '../run/schemas';
import { judgeRecordsProgressQuery } from '../run/messages';
import type { Acquired, GenerateOptions, GenerateResult, Prepared, StartState } from './generate';
import { pollUntilStopped, type Poller } from './poll';
import { runResult } from './run-result';

/** The command's books beside the run's own summary.json (whose numbers are the run's). */
export const JUDGE_SUMMARY_FILE = 'judge-summary.json';

/** The judge workflow of a run: one id per run, a new execution once the previous one closed. */
export const judgeWorkflowId = (runId: string) => `${runId}.judge`;

export async function judgeStoredRecords(
  client: Client,
  prep: Prepared,
  acquired: Acquired,
  options: GenerateOptions,
  state: StartState,
): Promise<GenerateResult> {
  const { runId } = prep.input;
  const run = client.workflow.getHandle(runId);
  await checkRunCompleted(client, runId);
  const input: JudgeRecordsInput = { config: prep.input };
  const workflowId = judgeWorkflowId(runId);
  const handle = await client.workflow
    .start(WORKFLOW_TYPES.judgeRecords, {
      workflowId,
      taskQueue: prep.taskQueue,
      args: [input],
      // A crashed command's workflow is resumed, not doubled; a finished one is followed by a new one,
      // which finds only what is still unjudged.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      staticSummary: `judge the stored dialogues of ${runId}`,
    })
    .catch((error: unknown) => {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      return client.workflow.getHandle(workflowId);
    });
  state.begun = true;
  options.onStarted?.({ runId: workflowId, resumed: true, attached: false, address: acquired.serverAddress });
  const poll = pollJudgeProgress(client, workflowId, options);
  let judged: JudgeRecordsSummary;
  try {
    judged = await waitForResult<JudgeRecordsSummary>(client, handle, acquired, options);
  } finally {
    await poll.stop();
  }
  const temp = join(prep.dir, `${JUDGE_SUMMARY_FILE}.tmp`);
  await writeFile(temp, `${JSON.stringify(judged, null, 2)}\n`);
  await rename(temp, join(prep.dir, JUDGE_SUMMARY_FILE));
  const summary = (await run.result()) as RunSummary;
  return { summary, alreadyFinished: false, judged, replyChecks: acquired.replyChecks };
}

/** The run must be on this server and completed: its records are final. */
async function checkRunCompleted(client: Client, runId: string): Promise<void> {
  const { status } = await client.workflow
    .getHandle(runId)
    .describe()
    .catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError)
        throw new ConfigError('DIR', `run ${runId} is not on this Temporal server`);
      throw error;
    });
  if (status.name !== 'COMPLETED')
    throw new ConfigError(
      'DIR',
      `run ${runId} is ${status.name.toLowerCase()}: judge it once it has completed`,
    );
}

/** Reads the judge workflow's books every `progressIntervalMs` for `onJudgeProgress`, until `stop`. */
function pollJudgeProgress(client: Client, workflowId: string, options: GenerateOptions): Poller {
  const report = options.onJudgeProgress;
  if (report === undefined) return { stop: () => Promise.resolve() };
  return pollUntilStopped(options.progressIntervalMs ?? 1_000, async () => {
    // A handle without a run id follows the workflow across continue-as-new. Between two runs, or
    // finishing, a read fails: the next read or the result says.
    report(await client.workflow.getHandle(workflowId).query(judgeRecordsProgressQuery));
  });
}

/** The workflow's result, or an error when the caller stops waiting or a worker stops first. */
async function waitForResult<T>(
  client: Client,
  handle: WorkflowHandle,
  acquired: Acquired,
  options: GenerateOptions,
): Promise<T> {
  // Long polls the SDK retries when the server goes away: cancelled once this returns.
  const stopWaiting = new AbortController();
  const waiting = runResult<T>(client, handle, stopWaiting.signal);
  waiting.catch(() => undefined);
  const stopped = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new Error('stopped waiting; run the same command again to resume'));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (acquired.running.length > 0)
      void Promise.race(acquired.running).then(() =>
        reject(new Error('a worker stopped before the judge finished')),
      );
  });
  stopped.catch(() => undefined);
  try {
    return await Promise.race([waiting, stopped]);
  } finally {
    stopWaiting.abort();
  }
}

/** `judge (judge-model): 12 scored, mean 7.2 of 10 · 1 failed (still to judge) · 300 lines read · est. $0.01`. */
export function formatJudgeRecords(s: JudgeRecordsSummary): string {
  const mean = meanJudgeScore(s.tally);
  return [
    `judge (${s.judgeModel}): ${s.judged} scored${mean === undefined ? '' : `, mean ${mean.toFixed(1)} of 10`}`,
    ...(s.failed ? [`${s.failed} failed (still unjudged: run the command again)`] : []),
    `${s.scanned} records read, ${s.merged} given a verdict in dialogs.jsonl`,
    `${s.llmCalls} calls · ${formatCost(s.estimatedCostUsd)}`,
    ...(s.stopped ? [`stopped: ${s.stopped}`] : []),
  ].join(' · ');
}

/** `judge DIR`'s own flags; the connection flags (cli.ts's) come with them. */
export type JudgeRecordsFlags = {
  judgeModel?: string;
  judgeSample?: string;
  judgeBaseUrl?: string;
} & Record<string, string | boolean | undefined>;

/** The CLI command; the action (cli.ts's) is passed in, as cli.ts owns exit codes and signals. */
export function addJudgeRecordsCommand(
  program: Command,
  run: (dir: string, opts: JudgeRecordsFlags) => Promise<number>,
): Command {
  return program
    .command('judge <dir>')
    .description(
      "score a finished run's stored dialogues that have no verdict (or a failed one), exactly once each; resumable: run it again after a crash",
    )
    .option('--judge-model <name>', "the judge model (default the run's model)")
    .option('--judge-sample <fraction>', 'judge a seeded sample of the dialogues (0 < F <= 1)')
    .option(
      '--judge-base-url <url>',
      "the judge's endpoint, key in CONSISTENT_CHAT_JUDGE_API_KEY (default CONSISTENT_CHAT_JUDGE_BASE_URL, else the run's endpoint)",
    )
    .action(async (dir: string, opts: JudgeRecordsFlags) => {
      process.exitCode = await run(dir, opts);
    });
}
