/**
 * Runs a generation the way `consistent-chat generate` and `ConsistentChatGenerator.run` do: checks the
 * input before any work starts, connects to Temporal (or starts the embedded dev server persisted in the
 * output directory), runs the workers this process owns, starts or re-attaches to the run, reports
 * progress, and returns the summary.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type Client,
  type Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import type OpenAI from 'openai';
import type { Tracing } from '../tracing';
import type { z } from 'zod';
import { intentWorkflowId } from '../workflows/run';
import { MIN_REPORT_INTERVAL_MS } from '../workflows/intent';
import { defaultMaxTokens } from '../method/prompts';
import {
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPORAL_NAMESPACE,
  OUTPUT_FILES,
  WORKFLOW_TYPES,
} from '../shared/constants';
import { intentProgressQuery, runProgressQuery } from '../run/messages';
import {
  runInputSchema,
  type IntentProgress,
  type JudgeCalibration,
  type RunConfig,
  type RunInput,
  type RunProgress,
  type RunSummary,
} from '../run/schemas';
import { calibrationWarning } from './progress';
import { runStorageTaskQueue } from '../shared/storage-queue';
import { EncryptionCodec, ENCRYPTION_KEY_ENV, type EncryptionKeys } from '../shared/encryption/codec';
import { DirectoryInUseError, StoreRegistry } from '../storage/jsonl-store';
import type { ReplyCheckCounts } from '../activities';
import { createJudgeClient, createOpenAiClient } from '../activities/openai-client';
import { ConfigError, RunClosedError } from '../shared/errors';
import { makeDirs } from '../storage/make-dirs';
import { startCodecServer } from './codec-server';
import {
  connectClient,
  connectWorker,
  createClient,
  tracingClientInterceptors,
  embeddedConnection,
  resolveConnection,
  resolveEncryptionKeys,
  type ConnectionFlags,
  type TemporalConnectionConfig,
} from './connection';
import { startDevServer, type DevServer } from './dev-server';
import { checkTracingEnv, tracingRequested } from '../shared/otel-env';
import { asksForShare, runPriority, type FairShare } from './fair-share';
import { installRoutedRuntime, LOG_FILE, routedRuntimeLogger, type MetricsExport } from './logging';
import { checkOutDir } from './out-dir';
import { loadReplyChecks, saveReplyChecks } from './reply-checks';
import {
  checkModelFile,
  contextPerSlot,
  defaultLocalSlots,
  defaultModelPath,
  LOCAL_MODEL_TIMEOUTS,
  localModelName,
  startLocalModel,
} from './local-model';
import { formatStorageIssue, readStorageIssues } from './storage-health';

import { preflightEndpoint } from './preflight';
import { BUILTIN_PROMPTS } from '../method/prompts';
import { BUILTIN_TAXONOMY } from '../method/taxonomy';
import { methodHash, sameContent, writeMethodCopies, METHOD_COPIES } from './method-files';
import { packageVersion } from './version';
import semver from 'semver';
import { OLDEST_RESUMABLE_VERSION } from '../workflows/patches';
import { pollUntilStopped, type Poller } from './poll';
import { runResult } from './run-result';
import { Resources } from './resources';
import { createWorkers } from './workers';
import { SUMMARY_FILE } from '../report/stats';
import { flagOf } from './run-flags';
import { judgeStoredRecords } from './judge-records';
import type { JudgeRecordsBooks, JudgeRecordsSummary } from '../run/judge-records';

/** How often a followed run's storage activities are checked for failures that keep repeating. */
const STORAGE_CHECK_INTERVAL_MS = 5_000;
/** How often the reply-check counts are saved while the run goes: what a SIGKILL can lose. */
const REPLY_CHECKS_SAVE_MS = 5_000;

/**
 * Where Temporal runs and how to reach it. Unset fields come from the environment and the
 * `temporal.toml` profile (see `./connection.ts`).
 */
export interface TemporalOptions extends ConnectionFlags {
  /** `host:port`; when nothing names a server, an embedded dev server is started. */
  address?: string;
  /** @default 'default' */
  namespace?: string;
  /** @default DEFAULT_TASK_QUEUE */
  taskQueue?: string;
  /** File of payload encryption keys. @default CONSISTENT_CHAT_ENCRYPTION_KEY, else no encryption */
  encryptionKeyFile?: string;
}

export interface GenerateOptions {
  /** The run's settings; `outDir` may be relative. Fields left out are taken from an earlier run in `outDir`. */
  run: Partial<Omit<RunInput, 'outDir'>> & { outDir: string };
  temporal?: TemporalOptions;
  /**
   * Endpoint of the LLM worker this process runs. The API key comes from the environment. With no
   * endpoint (no `baseURL`, OPENAI_BASE_URL or OPENAI_API_KEY), or with `localModel` (a GGUF file),
   * an embedded llama.cpp server serves the model for the run.
   */
  llm?: { baseURL?: string; localModel?: string; judgeBaseURL?: string };
  /**
   * Serve the worker runtime's Prometheus metrics (the SDK's and the package's) at this address.
   * Ignored when the process installed its own `Runtime` before. @default none
   */
  metrics?: MetricsExport;
  /** The run's priority and fairness key among runs on one task queue (set when it starts). @default fairness key = run id */
  fairShare?: FairShare;
  /** Run a generation worker in this process. @default true */
  localWorker?: boolean;
  /** Called about once a second with the live progress. */
  onProgress?: (progress: RunProgress) => void;
  /** Called once the run is started or found, before waiting for it. `attached`: another process owns it. */
  onStarted?: (info: {
    runId: string;
    resumed: boolean;
    attached: boolean;
    address: string;
    uiUrl?: string;
  }) => void;
  /** Called with problems worth a look that do not stop the run. */
  onWarning?: (message: string) => void;
  /** Called with one-line notices, e.g. that an embedded model serves the run. */
  onNotice?: (message: string) => void;
  /**
   * Resume a run even though the taxonomy or prompts given now differ from those it recorded; it
   * still finishes with the recorded ones. @default false (such a resume is refused)
   */
  keepRecordedMethod?: boolean;
  /**
   * Retry the dialogues of the finished run in `outDir` that failed (failures.jsonl), once each, instead
   * of running it: they are booked into its summary, and failures.jsonl keeps what failed again.
   * @default false
   */
  retryFailed?: boolean;
  /**
   * Judge the stored dialogues of the finished run in `outDir` that have no verdict (`run.judge` says
   * with which model and sample) instead of running it: `consistent-chat judge DIR`. @default false
   */
  judgeRecords?: boolean;
  /** With `judgeRecords`: called about once a second with what the judge has done so far. */
  onJudgeProgress?: (progress: JudgeRecordsBooks) => void;
  /** Stops waiting (the run itself goes on and can be resumed). */
  signal?: AbortSignal;
  /** @default 1000 */
  progressIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Receives the Temporal SDK's log lines. @default none on the terminal: they go to
   * `<outDir>/consistent-chat.log`, at `LOG_LEVEL` (default INFO). Ignored when the process installed
   * its own `Runtime` before.
   */
  logger?: Logger;
}

export interface GenerateResult {
  summary: RunSummary;
  /** True when the run had already finished before this call. */
  alreadyFinished: boolean;
  /** With `retryFailed`: how many failed dialogues were retried. */
  retried?: number;
  /** With `judgeRecords`: what the judge did. */
  judged?: JudgeRecordsSummary;
  /**
   * Replies the run's `generate` workers checked, this process's and those of earlier processes on the
   * same directory, and rejected by kind (each rejection was a new call). Not set with `--no-worker`.
   */
  replyChecks?: ReplyCheckCounts;
}

/** What `run.json` in the output directory holds: the run's full input, so a rerun resumes it. */
export interface RunFile {
  runId: string;
  input: RunConfig;
  createdAt: string;
  /** The package version that created the run (absent in runs from before it was recorded). */
  packageVersion?: string;
  /** Content hash of the run's taxonomy and prompts (see method-files.ts). */
  methodHash?: string;
}

/** What `run.json` and the run's memo record about the method: who made it and with what. */
export interface RunMethodRecord {
  packageVersion?: string;
  methodHash?: string;
}

export function zodToConfigError(error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  const path = issue?.path.join('.') ?? '';
  return new ConfigError(path ? flagOf(path) : 'input', issue?.message ?? 'invalid');
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `cc-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Checks and creates the output directory; prefer `checkOutDir` first and creating it once checks pass. */
export async function prepareOutDir(outDir: string): Promise<string> {
  const dir = await checkOutDir(outDir);
  try {
    await makeDirs(dir);
  } catch (error) {
    throw new ConfigError(
      '--out',
      `cannot create ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  return dir;
}

const PLAN_FIELDS = [
  'model',
  'intents',
  'numDialogsPerIntent',
  'numTurnsPerDialog',
  'temperature',
  'seed',
  'attributes',
  'expand',
] as const;

type RunMethodOptions = { keepRecordedMethod?: boolean; onWarning?: (message: string) => void };
type ResolvedRunInput = { config: RunConfig; resumed: boolean; record: RunMethodRecord };

/** Resolves the run's input: an earlier run in the directory wins for what was not given now. */
export async function resolveRunInput(
  options: GenerateOptions['run'],
  dir: string,
  method: RunMethodOptions = {},
): Promise<ResolvedRunInput> {
  const runFile = join(dir, OUTPUT_FILES.run);
  let previous: RunFile | undefined;
  try {
    previous = JSON.parse(await readFile(runFile, 'utf8')) as RunFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError('--out', `${runFile} is unreadable: ${(error as Error).message}`);
    }
  }
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  if (previous && (!given.runId || given.runId === previous.runId))
    return resumedRunInput(previous, given, dir, method);
  return newRunInput(given, dir);
}

/** The input of the run `run.json` recorded, with what was given now where the run allows a change. */
async function resumedRunInput(
  previous: RunFile,
  given: Record<string, unknown>,
  dir: string,
  method: RunMethodOptions,
): Promise<ResolvedRunInput> {
  checkResumable(previous, dir);
  checkRecordedMethod(previous, given, dir, method);
  // A run finishes with the taxonomy and prompts it started with: the recorded ones, never new ones.
  delete given.taxonomy;
  delete given.prompts;
  for (const field of PLAN_FIELDS) {
    if (
      given[field] !== undefined &&
      JSON.stringify(given[field]) !== JSON.stringify(previous.input[field])
    ) {
      throw new ConfigError(
        flagOf(field),
        `${JSON.stringify(given[field])} differs from the run ${previous.runId} already in ${dir} (${JSON.stringify(previous.input[field])}); use another --out or the same value`,
      );
    }
  }
  const parsed = runInputSchema.safeParse({
    ...previous.input,
    ...given,
    outDir: dir,
    runId: previous.runId,
  });
  if (!parsed.success) throw zodToConfigError(parsed.error);
  const { taxonomy, prompts } = parsed.data;
  // Copies deleted by hand come back: they are how the run's method is read and reused.
  if (taxonomy && prompts && previous.methodHash && !existsSync(join(dir, METHOD_COPIES.taxonomy)))
    await writeMethodCopies(dir, taxonomy, prompts, previous.methodHash);
  return {
    config: parsed.data,
    resumed: true,
    record: { packageVersion: previous.packageVersion, methodHash: previous.methodHash },
  };
}

/** A new run's input: the built-in method and defaults under what was given. */
function newRunInput(given: Record<string, unknown>, dir: string): ResolvedRunInput {
  if (!given.model) throw new ConfigError('--model', 'no model given: pass --model or set OPENAI_MODEL');
  // The run carries its taxonomy and templates in its input (the built-in ones unless given), so the
  // plan and prompts it starts with are the ones it finishes with, whatever package version runs it.
  const parsed = runInputSchema.safeParse({
    taxonomy: BUILTIN_TAXONOMY,
    prompts: BUILTIN_PROMPTS,
    // New runs vary who asks and how; a run resumed from before attributes keeps planning without them.
    attributes: 'builtin',
    // Seed topics grow into a tree when the run needs more of them; a run's own topic list stays as given.
    expand: given.taxonomy ? false : {},
    ...given,
    outDir: dir,
    runId: given.runId ?? newRunId(),
  });
  if (!parsed.success) throw zodToConfigError(parsed.error);
  const hash = methodHash(parsed.data.taxonomy, parsed.data.prompts);
  // Nothing is written yet: `saveRunFile` records the run once every start-up check has passed.
  return {
    config: parsed.data,
    resumed: false,
    record: { packageVersion: packageVersion(), methodHash: hash },
  };
}

/**
 * A run recorded by a version older than `OLDEST_RESUMABLE_VERSION` may need workflow code this one no
 * longer has (patches removed): it is refused, with the version that finishes it. Runs from before the
 * version was recorded are 0.1.0's.
 */
function checkResumable(previous: RunFile, dir: string): void {
  const recorded = semver.valid(previous.packageVersion ?? '0.1.0');
  if (recorded === null || semver.gte(recorded, OLDEST_RESUMABLE_VERSION)) return;
  throw new ConfigError(
    '--out',
    `run ${previous.runId} in ${dir} was started by consistent-chat ${recorded}, and this version (${packageVersion()}) resumes runs from ${OLDEST_RESUMABLE_VERSION} on: finish it with consistent-chat ${recorded}, or use another --out`,
  );
}

/**
 * On resume: the taxonomy and prompts given now must be those the run recorded (a run finishes with
 * the plan it started with), unless the caller accepts that the recorded ones stay. Runs from before
 * the method was recorded ran with the built-in one. A different package version is only noted.
 */
function checkRecordedMethod(
  previous: RunFile,
  given: Record<string, unknown>,
  dir: string,
  options: { keepRecordedMethod?: boolean; onWarning?: (message: string) => void },
): void {
  const recorded = {
    taxonomy: previous.input.taxonomy ?? BUILTIN_TAXONOMY,
    prompts: previous.input.prompts ?? BUILTIN_PROMPTS,
  };
  for (const part of ['taxonomy', 'prompts'] as const) {
    if (given[part] === undefined || sameContent(given[part], recorded[part])) continue;
    const message = `differs from the ${part} run ${previous.runId} in ${dir} started with (${previous.methodHash ?? 'built-in'}); a run finishes with what it started with: give the same ${part}, use another --out, or pass --keep-recorded-method to resume with the recorded one`;
    if (!options.keepRecordedMethod) throw new ConfigError(flagOf(part), message);
    options.onWarning?.(
      `--${part} ignored: run ${previous.runId} keeps the ${part} it recorded (${previous.methodHash ?? 'built-in'})`,
    );
  }
  if (previous.packageVersion && previous.packageVersion !== packageVersion()) {
    options.onWarning?.(
      `run ${previous.runId} was started by consistent-chat ${previous.packageVersion} (this is ${packageVersion()}); it keeps the taxonomy and prompts it recorded`,
    );
  }
}

/** Records a new run's input in `run.json`, once every start-up check has passed. */
export async function saveRunFile(
  dir: string,
  config: RunConfig,
  method: RunMethodRecord = {},
): Promise<void> {
  const runFile = join(dir, OUTPUT_FILES.run);
  const record: RunFile = {
    runId: config.runId,
    input: config,
    createdAt: new Date().toISOString(),
    ...method,
  };
  if (config.taxonomy && config.prompts && method.methodHash)
    await writeMethodCopies(dir, config.taxonomy, config.prompts, method.methodHash);
  // Written atomically: a crash never leaves a half run.json behind.
  await writeFile(`${runFile}.tmp`, JSON.stringify(record, null, 2));
  await rename(`${runFile}.tmp`, runFile);
}

/** Connects to a plain (loopback) Temporal server or says clearly that it cannot. */
export async function connectTemporal(address: string, namespace: string): Promise<Connection> {
  return connectClient(embeddedConnection(address, namespace));
}

/**
 * Fails with a one-line `ConfigError` naming the key variable when an existing run's payloads cannot be
 * opened with the keys at hand (a wrong or missing key), before workers start failing its tasks.
 */
export async function checkRunDecodes(
  client: Client,
  runId: string,
  keys: EncryptionKeys | undefined,
): Promise<void> {
  let payloads;
  try {
    const history = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: runId },
      maximumPageSize: 1,
    });
    payloads = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  } catch (error) {
    if (error instanceof WorkflowNotFoundError || /not found/i.test((error as Error).message)) return;
    throw error;
  }
  try {
    await new EncryptionCodec(keys).decode(payloads);
  } catch (error) {
    throw new ConfigError(ENCRYPTION_KEY_ENV, `run ${runId}: ${(error as Error).message}`);
  }
}

/**
 * When the run's numbers for each intent last changed, for a caller that reads progress repeatedly
 * (the progress view). The run holds each intent's last report, sent at most every
 * `MIN_REPORT_INTERVAL_MS`; numbers unchanged for longer may be stale.
 */
export class ReportAges {
  private readonly seen = new Map<string, { key: string; since: number }>();

  /** Milliseconds the run's numbers for `p.intent` have stood still; unknown (Infinity) at first sight. */
  unchangedFor(p: IntentProgress, now = Date.now()): number {
    const key = `${p.written}/${p.failed}/${p.inFlight}/${p.llmCalls}/${p.started ?? ''}`;
    const last = this.seen.get(p.intent);
    if (last?.key === key) return now - last.since;
    this.seen.set(p.intent, { key, since: now });
    return last ? 0 : Infinity;
  }
}

/**
 * The live progress of a run: the parent's view, with running intents asked directly when the
 * parent's numbers may be stale: none yet, the run or intent paused (a paused intent sends no more
 * reports), or unchanged for longer than the reporting interval. Without `ages` (a one-off read like
 * `status`) their age is unknown, so every running intent is asked.
 */
export async function readProgress(client: Client, runId: string, ages?: ReportAges): Promise<RunProgress> {
  const progress = await client.workflow.getHandle(runId).query(runProgressQuery);
  const now = Date.now();
  const intents = await Promise.all(
    progress.intents.map(async (p) => {
      if (p.status !== 'running') return p;
      const reported = p.written + p.failed + p.inFlight + p.llmCalls > 0;
      // Computed for every intent, so each one's age is tracked from the first read.
      const age = ages?.unchangedFor(p, now) ?? Infinity;
      if (reported && !progress.paused && !p.paused && age < MIN_REPORT_INTERVAL_MS) return p;
      try {
        return await client.workflow.getHandle(intentWorkflowId(runId, p.intent)).query(intentProgressQuery);
      } catch {
        return p; // not started yet, or between two runs of a continue-as-new
      }
    }),
  );
  return { ...progress, intents };
}

/** Reads the address of the embedded server that the directory's owner runs. */
async function embeddedServerAddress(dir: string): Promise<string> {
  try {
    return (JSON.parse(await readFile(join(dir, '.temporal', 'server.json'), 'utf8')) as { address: string })
      .address;
  } catch {
    throw new ConfigError(
      '--out',
      `${dir} is owned by another process but its Temporal server is unknown; pass --temporal-address`,
    );
  }
}

/** Waits for the run's result, reporting progress, until it ends, the caller stops waiting, or a worker dies. */
async function followRun(
  client: Client,
  handle: WorkflowHandle,
  runId: string,
  options: GenerateOptions,
  running: Promise<void>[],
): Promise<GenerateResult> {
  // The result is a long poll that the SDK retries when the server goes away; cancelled here once
  // this function returns, since a retry after the connection closed throws outside any promise.
  const stopWaiting = new AbortController();
  const result = runResult<RunSummary>(client, handle, stopWaiting.signal);
  result.catch(() => undefined);
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new Error('stopped waiting; run the same command again to resume'));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  const workerFailure =
    running.length > 0
      ? Promise.race(running).then(() => {
          throw new Error('a worker stopped before the run finished');
        })
      : new Promise<never>(() => undefined);
  workerFailure.catch(() => undefined);

  const poll = pollProgress(client, runId, options);
  try {
    const summary = await Promise.race([result, aborted, workerFailure]);
    // A run too short for a progress read to see its calibration still warns.
    if (summary.calibration) poll.warnCalibration(summary.calibration);
    return { summary, alreadyFinished: false };
  } finally {
    stopWaiting.abort();
    await poll.stop();
  }
}

/**
 * Reads the run's progress every `progressIntervalMs` for `onProgress`, and says storage that keeps
 * failing once per distinct failure, until `stop` (which ends the pause between two reads at once).
 */
function pollProgress(
  client: Client,
  runId: string,
  options: GenerateOptions,
): Poller & { warnCalibration(c: JudgeCalibration): void } {
  let calibrationWarned = false;
  // Said once, as soon as the judge is calibrated: before the run pays for judging every dialogue.
  const warnCalibration = (c: JudgeCalibration) => {
    if (!c.nearChance || calibrationWarned) return;
    calibrationWarned = true;
    options.onWarning?.(calibrationWarning(c));
  };
  const storageWarnings = new Set<string>();
  let storageCheckedAt = 0;
  const ages = new ReportAges();
  const warnStorage = async (progress: RunProgress, warn: (message: string) => void) => {
    storageCheckedAt = Date.now();
    const running = progress.intents.filter((i) => i.status === 'running');
    const issues = await readStorageIssues(client, [
      runId,
      ...running.map((i) => intentWorkflowId(runId, i.intent)),
    ]);
    for (const issue of issues) {
      const key = `${issue.workflowId} ${issue.activity} ${issue.noWorker} ${issue.lastFailure}`;
      if (!storageWarnings.has(key)) warn(formatStorageIssue(issue));
      storageWarnings.add(key);
    }
  };
  const onProgress = options.onProgress;
  const poller = onProgress
    ? pollUntilStopped(options.progressIntervalMs ?? 1_000, async () => {
        // A read fails while the run is completing; the next tick or the result says.
        const progress = await readProgress(client, runId, ages);
        onProgress(progress);
        if (progress.calibration) warnCalibration(progress.calibration);
        if (options.onWarning && Date.now() - storageCheckedAt >= STORAGE_CHECK_INTERVAL_MS)
          await warnStorage(progress, options.onWarning);
      })
    : { stop: () => Promise.resolve() };
  return { stop: () => poller.stop(), warnCalibration };
}

/** Checks the Temporal settings' shape, so a typo is one line instead of a retried connection. */
export function checkTemporalSettings(settings: {
  address?: string;
  namespace: string;
  taskQueue: string;
}): void {
  const { address, namespace, taskQueue } = settings;
  if (address !== undefined) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535)
      throw new ConfigError('--temporal-address', `must be host:port, got ${JSON.stringify(address)}`);
  }
  for (const [field, value] of [
    ['--namespace', namespace],
    ['--task-queue', taskQueue],
  ] as const) {
    if (!/^[A-Za-z0-9._\-/:]{1,200}$/.test(value))
      throw new ConfigError(
        field,
        `must be 1-200 letters, digits or . _ - / : (no spaces), got ${JSON.stringify(value)}`,
      );
  }
}

/** A run id names one run: on a shared server it must not already belong to another output directory. */
async function checkRunIdFree(client: Client, runId: string, dir: string): Promise<void> {
  let memo: Record<string, unknown> | undefined;
  try {
    memo = (await client.workflow.getHandle(runId).describe()).memo;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return;
    throw error;
  }
  if (memo?.outDir !== dir)
    throw new ConfigError(
      '--run-id',
      `run ${runId} already exists on this Temporal server${typeof memo?.outDir === 'string' ? ` for ${memo.outDir}` : ''}; pick another --run-id or its --out`,
    );
}

/** What `prepare` settled before anything is written or started. */
export interface Prepared {
  env: NodeJS.ProcessEnv;
  target: TemporalConnectionConfig;
  keys: EncryptionKeys | undefined;
  namespace: string;
  taskQueue: string;
  /** The server the caller named; none means the embedded one. */
  address?: string;
  dir: string;
  localModel?: { path: string; isDefault: boolean };
  openai?: OpenAI;
  /** The judge's own endpoint, when the worker's environment names one. */
  judgeOpenai?: OpenAI;
  /** The run's priority and fairness key, set when it starts. */
  fairShare?: FairShare;
  config: RunConfig;
  /** `config` with the run's storage queue: what the workflow is started with. */
  input: RunConfig;
  resumed: boolean;
  record: RunMethodRecord;
  startupLog: (phase: string) => void;
  /** With `retryFailed`: the failed dialogues' ids and the content of failures.jsonl they come from. */
  retry?: { ids: string[]; content: string };
}

/** What `acquire` holds for the run: released by the caller's `Resources`. */
export interface Acquired {
  client: Client;
  /** False when another process holds the directory: this one only follows its run. */
  owner: boolean;
  serverAddress: string;
  uiUrl?: string;
  running: Promise<void>[];
  replyChecks?: ReplyCheckCounts;
}

/** Whether the run began: an exit before it removes the directory this call created. */
export interface StartState {
  created?: string;
  begun: boolean;
}

/** prepare → acquire → start or attach → follow; whatever was acquired is released however it ends. */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const prep = await prepare(options);
  const resources = new Resources();
  const state: StartState = { begun: false };
  try {
    const acquired = await acquire(prep, options, resources, state);
    const { client, serverAddress } = acquired;
    if (!acquired.owner) {
      state.begun = true;
      options.onStarted?.({ runId: prep.input.runId, resumed: true, attached: true, address: serverAddress });
      return await followRun(
        client,
        client.workflow.getHandle(prep.input.runId),
        prep.input.runId,
        options,
        [],
      );
    }
    if (prep.retry) return await retryFailures(client, prep, acquired, options, state);
    if (options.judgeRecords) return await judgeStoredRecords(client, prep, acquired, options, state);
    if (!prep.resumed) await saveRunFile(prep.dir, prep.config, prep.record);
    const { handle, alreadyFinished } = await startOrFind(client, prep, state);
    prep.startupLog('run started');
    options.onStarted?.({
      runId: prep.input.runId,
      resumed: prep.resumed || alreadyFinished,
      attached: false,
      address: serverAddress,
      uiUrl: acquired.uiUrl,
    });
    const result = await followRun(client, handle, prep.input.runId, options, acquired.running);
    return { ...result, alreadyFinished, replyChecks: acquired.replyChecks };
  } finally {
    // A failed release (a server already gone) must not hide how the run ended.
    await resources.releaseAll().catch(() => undefined);
    if (state.created && !state.begun)
      await rm(state.created, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Everything that can be checked is checked before anything is written or started: a failed check
 * leaves no directory and no run.json behind, so the corrected command is accepted.
 */
async function prepare(options: GenerateOptions): Promise<Prepared> {
  const env = options.env ?? process.env;
  const target = resolveConnection(options.temporal, env);
  const namespace = target.namespace ?? DEFAULT_TEMPORAL_NAMESPACE;
  const taskQueue = options.temporal?.taskQueue ?? env.CONSISTENT_CHAT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const address = target.address;
  const localWorker = options.localWorker ?? true;
  const keys = resolveEncryptionKeys(options.temporal?.encryptionKeyFile, env);
  checkTemporalSettings({ address, namespace, taskQueue });
  checkTracingEnv(env);
  const dir = await checkOutDir(options.run.outDir);
  const localModel = localModelChoice(options, env, localWorker);
  let openai: OpenAI | undefined;
  if (localModel) await checkModelFile(localModel.path, localModel.isDefault);
  else if (localWorker || !address) openai = createOpenAiClient({ baseURL: options.llm?.baseURL }, env);
  const judgeOpenai =
    localWorker || !address ? createJudgeClient({ baseURL: options.llm?.judgeBaseURL }, env) : undefined;
  const { config, resumed, record } = await resolveRunInput(
    {
      ...options.run,
      model: options.run.model ?? (localModel ? localModelName(localModel.path) : env.OPENAI_MODEL),
      concurrency: options.run.concurrency ?? (localModel ? defaultLocalSlots() : undefined),
      timeouts: options.run.timeouts ?? (localModel ? LOCAL_MODEL_TIMEOUTS : undefined),
    },
    dir,
    { keepRecordedMethod: options.keepRecordedMethod, onWarning: options.onWarning },
  );
  const input: RunConfig = { ...config, storageTaskQueue: runStorageTaskQueue(taskQueue, config.runId) };
  const prep: Prepared = {
    ...{ env, target, keys, namespace, taskQueue, address, dir, localModel, openai, judgeOpenai },
    fairShare: options.fairShare,
    ...{ config, input, resumed, record, startupLog: startupLogger(options, env) },
  };
  if (options.retryFailed) prep.retry = await failedToRetry(dir, resumed);
  if (options.judgeRecords && !resumed) throw new ConfigError('DIR', `no run in ${dir}: nothing to judge`);
  await checkReachable(prep, options);
  prep.startupLog('checks done');
  return prep;
}

/** The endpoint answers for the model, and a named server does not hold this run id for another directory. */
async function checkReachable(prep: Prepared, options: GenerateOptions): Promise<void> {
  if (prep.openai) {
    const { warning } = await preflightEndpoint(prep.openai, prep.input.model, undefined, options.signal);
    if (warning) options.onWarning?.(warning);
  }
  options.signal?.throwIfAborted();
  if (prep.address) {
    // The cluster's own settings (TLS, API key, profile): the same connection the run will use.
    const connection = await connectClient(prep.target);
    try {
      await checkRunIdFree(createClient(connection, prep.namespace, prep.keys), prep.input.runId, prep.dir);
    } finally {
      await connection.close();
    }
  }
  options.signal?.throwIfAborted();
}

/** Where start-up time goes, in the run's log: ms since this process started. */
function startupLogger(options: GenerateOptions, env: NodeJS.ProcessEnv): (phase: string) => void {
  return (phase) => {
    (options.logger ?? routedRuntimeLogger(env)).info(`start-up: ${phase}`, {
      ms: Math.round(performance.now()),
    });
  };
}

/**
 * The process runtime of the run: the directory and its store, the local model, the Temporal server,
 * the client and the workers, each registered in `resources` as it is acquired.
 */
async function acquire(
  prep: Prepared,
  options: GenerateOptions,
  resources: Resources,
  state: StartState,
): Promise<Acquired> {
  // This process's storage is confined to its own --out, whatever a workflow's outDir says; it may
  // adopt the files of that directory written before the store's marker existed (only on a resume).
  const storage = new StoreRegistry({ root: prep.dir, adopt: prep.resumed ? prep.dir : undefined });
  const owner = await claimDirectory(prep, options, resources, storage, state);
  options.signal?.throwIfAborted();
  const openai = owner && prep.localModel ? await serveLocalModel(prep, options, resources) : prep.openai;
  const server = await ensureServer(prep, owner, resources);
  options.signal?.throwIfAborted();
  // Released after the workers (registered before them): their last spans are exported.
  const tracing = tracingRequested(prep.env)
    ? (await import('../tracing.js')).installTracing(prep.env)
    : undefined;
  if (tracing) resources.defer(() => tracing.shutdown());
  const connection = await connectClient(server.target);
  resources.defer(() => connection.close());
  const client = createClient(
    connection,
    prep.namespace,
    prep.keys,
    tracing && (await tracingClientInterceptors()),
  );
  await checkRunDecodes(client, prep.input.runId, prep.keys);
  const base = { client, owner, serverAddress: server.address, uiUrl: server.uiUrl, running: [] };
  if (!owner) return base;
  const workers = await startWorkers(prep, server.target, storage, openai, resources, {
    metrics: options.metrics,
    tracing,
  });
  options.signal?.throwIfAborted();
  return { ...base, ...workers };
}

/**
 * Creates the directory, routes the SDK's log lines, and takes the directory's lock: the process that
 * holds it owns the run; a second one only attaches to it. Returns whether this process owns the run.
 */
async function claimDirectory(
  prep: Prepared,
  options: GenerateOptions,
  resources: Resources,
  storage: StoreRegistry,
  state: StartState,
): Promise<boolean> {
  try {
    state.created = await makeDirs(prep.dir);
  } catch (error) {
    throw new ConfigError(
      '--out',
      `cannot create ${prep.dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const route = options.logger ? { logger: options.logger } : { file: join(prep.dir, LOG_FILE) };
  resources.defer(routedRuntimeLogger(prep.env).route(route));
  const owner = await storage.get(prep.dir, prep.input.runId).then(
    () => true,
    (error: Error) => {
      if (error instanceof DirectoryInUseError) return false;
      throw new ConfigError('--out', error.message);
    },
  );
  resources.defer(() => storage.closeAll());
  return owner;
}

/** Starts the embedded llama.cpp server for the run and returns a client of it. */
async function serveLocalModel(
  prep: Prepared,
  options: GenerateOptions,
  resources: Resources,
): Promise<OpenAI> {
  const { config, localModel, env } = prep;
  const slots = Math.min(config.concurrency, defaultLocalSlots());
  const served = await startLocalModel({
    modelPath: localModel!.isDefault ? undefined : localModel!.path,
    slots,
    contextPerSlot: contextPerSlot(config.numTurnsPerDialog, {
      ...defaultMaxTokens(config.numTurnsPerDialog),
      ...config.maxTokens,
    }),
    logFile: join(prep.dir, '.local-model.log'),
    env,
  });
  resources.defer(() => served.stop());
  const openai = createOpenAiClient({ baseURL: served.baseURL, apiKey: 'local' }, env);
  options.onNotice?.(
    `no LLM endpoint configured: serving ${served.displayName} locally with llama.cpp (${slots} slots, ${served.threads} threads); for real data set --base-url or OPENAI_BASE_URL and OPENAI_API_KEY`,
  );
  if (config.concurrency > slots)
    options.onWarning?.(
      `--concurrency ${config.concurrency} is above the local model's ${slots} slots: the other calls wait in its queue`,
    );
  const { warning } = await preflightEndpoint(openai, prep.input.model);
  if (warning) options.onWarning?.(warning);
  return openai;
}

/** The Temporal server of the run: the one named, the owner's embedded one, or one started here. */
async function ensureServer(
  prep: Prepared,
  owner: boolean,
  resources: Resources,
): Promise<{ address: string; target: TemporalConnectionConfig; uiUrl?: string }> {
  if (prep.address) return { address: prep.address, target: prep.target };
  if (!owner) {
    const address = await embeddedServerAddress(prep.dir);
    return { address, target: embeddedConnection(address, prep.namespace) };
  }
  const server = await startEmbeddedServer(prep, resources);
  prep.startupLog('embedded server ready');
  return {
    address: server.address,
    target: embeddedConnection(server.address, prep.namespace),
    uiUrl: server.uiUrl,
  };
}

/** Starts the dev server persisted in `DIR/.temporal`, with a codec endpoint for the UI when encrypted. */
async function startEmbeddedServer(prep: Prepared, resources: Resources): Promise<DevServer> {
  const stateDir = join(prep.dir, '.temporal');
  await makeDirs(stateDir);
  // With encryption on, the embedded UI decodes through a codec endpoint this process serves.
  const codec = prep.keys ? await startCodecServer({ keys: prep.keys }) : undefined;
  if (codec) resources.defer(() => codec.close());
  let spawned = (): void => undefined;
  const booting = new Promise<void>((resolve) => (spawned = resolve));
  const starting = startDevServer({
    dbFile: join(stateDir, 'temporal.db'),
    stateFile: join(stateDir, 'server.json'),
    logFile: join(stateDir, 'server.log'),
    // The token rides in the endpoint's path: the dev UI sends no header of ours.
    uiCodecEndpoint: codec?.endpoint,
    env: prep.env,
    onSpawned: () => spawned(),
  });
  const settled = starting.then(
    () => undefined,
    () => undefined,
  );
  // The SDK's worker takes a few hundred ms of CPU to load: load it while the server boots.
  await Promise.race([booting, settled]);
  await import('../worker.js');
  const server = await starting;
  resources.defer(() => server.stop());
  codec?.allowOrigin(server.uiUrl);
  return server;
}

/** The run's storage worker and, with an endpoint, its generation worker, running. */
async function startWorkers(
  prep: Prepared,
  target: TemporalConnectionConfig,
  storage: StoreRegistry,
  openai: OpenAI | undefined,
  resources: Resources,
  telemetry: {
    metrics?: MetricsExport;
    tracing?: Tracing;
  },
): Promise<{ running: Promise<void>[]; replyChecks?: ReplyCheckCounts }> {
  const { createGenerationWorker, createStorageWorker } = await import('../worker.js');
  await installRoutedRuntime(prep.env, telemetry.metrics);
  const connection = await connectWorker(target);
  resources.defer(() => connection.close());
  const replyChecks = openai ? await keepReplyChecks(prep, resources) : undefined;
  const common = { connection, namespace: prep.namespace, encryption: prep.keys, tracing: telemetry.tracing };
  // Created side by side: each waits on the server, and the run starts sooner.
  const workers: Worker[] = await createWorkers([
    createStorageWorker({ ...common, taskQueue: prep.input.storageTaskQueue!, storage }),
    ...(openai
      ? [
          createGenerationWorker({
            ...common,
            taskQueue: prep.taskQueue,
            openai,
            ...(prep.judgeOpenai && { judge: prep.judgeOpenai }),
            replyChecks,
            outputRoot: storage.root,
            // One thread loads the bundle once: a shorter start, and the workflow code of one run
            // needs a fraction of a core even at hundreds of calls a second.
            workflowThreads: 1,
            // Eager dispatch saves a matching round trip per call; a run that asks for a share of a
            // named cluster sends its activities through the queue, where the share is decided.
            eagerActivities: prep.address === undefined || !asksForShare(prep.fairShare),
          }),
        ]
      : []),
  ]);
  const running = workers.map((w) => w.run());
  prep.startupLog('workers ready');
  resources.defer(async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
  });
  return { running, replyChecks };
}

/**
 * The reply-check counts, from what earlier processes of this run saved, saved again as calls are
 * checked, so the summary's count covers the run's calls, not only this process's.
 */
async function keepReplyChecks(prep: Prepared, resources: Resources): Promise<ReplyCheckCounts> {
  const { dir, input, resumed } = prep;
  const replyChecks: ReplyCheckCounts = resumed
    ? await loadReplyChecks(dir, input.runId)
    : { checked: 0, rejected: {} };
  const save = () => saveReplyChecks(dir, input.runId, replyChecks);
  const saving = setInterval(() => void save().catch(() => undefined), REPLY_CHECKS_SAVE_MS);
  saving.unref();
  // Registered before the workers' shutdown, so it runs after their calls in flight have drained.
  resources.defer(async () => {
    clearInterval(saving);
    await save();
  });
  return replyChecks;
}

/** Starts the run, or finds it already there; a closed run is refused before anything else is said. */
async function startOrFind(
  client: Client,
  prep: Prepared,
  state: StartState,
): Promise<{ handle: WorkflowHandle; alreadyFinished: boolean }> {
  const { input, dir, record, taskQueue, fairShare } = prep;
  try {
    const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: input.runId,
      taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      priority: runPriority(fairShare, input.runId),
      staticSummary: `${input.intents.length} intents × ${input.numDialogsPerIntent} dialogues, ${input.model}`,
      // The memo says, in the UI and to `temporal workflow describe`, which package and method made the run.
      memo: {
        outDir: dir,
        host: hostname(),
        ...Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)),
      },
    });
    state.begun = true;
    return { handle, alreadyFinished: false };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  state.begun = true;
  const handle = client.workflow.getHandle(input.runId);
  // Said before anything else: "resuming" and the closed run's last counts would mislead.
  const { status } = await handle.describe();
  if (status.name !== 'COMPLETED' && status.name !== 'RUNNING')
    throw new RunClosedError(input.runId, status.name, dir);
  return { handle, alreadyFinished: true };
}

/** The failed dialogues `--retry-failed` retries: those failures.jsonl of the run in `dir` records. */
async function failedToRetry(dir: string, resumed: boolean): Promise<{ ids: string[]; content: string }> {
  if (!resumed) throw new ConfigError('--retry-failed', `no run in ${dir}: nothing to retry`);
  const file = join(dir, OUTPUT_FILES.failures);
  const content = await readFile(file, 'utf8').catch(() => '');
  const ids = content
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, n) => {
      const id = (JSON.parse(line) as { id?: unknown }).id;
      if (typeof id !== 'string')
        throw new ConfigError('--retry-failed', `${file} line ${n + 1} has no "id"`);
      return id;
    });
  if (ids.length === 0)
    throw new ConfigError('--retry-failed', `${file} records no failed dialogue: nothing to retry`);
  return { ids: [...new Set(ids)], content };
}

/**
 * Starts the retry of the run's failed dialogues, or attaches to it: its workflow id is named after
 * failures.jsonl's content, which only the retry's last step changes, so the same command after a
 * crash resumes the same retry instead of starting another.
 */
async function retryFailures(
  client: Client,
  prep: Prepared,
  acquired: Acquired,
  options: GenerateOptions,
  state: StartState,
): Promise<GenerateResult> {
  const { runId } = prep.input;
  const run = client.workflow.getHandle(runId);
  const { status } = await run.describe().catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError)
      throw new ConfigError('--retry-failed', `run ${runId} is not on this Temporal server`);
    throw error;
  });
  if (status.name !== 'COMPLETED')
    throw new ConfigError(
      '--retry-failed',
      `run ${runId} is ${status.name.toLowerCase()}: retry its failures once it has completed`,
    );
  const { ids, content } = prep.retry!;
  const base = await summaryBeforeRetry(prep.dir, runId, () => run.result() as Promise<RunSummary>);
  const workflowId = `${runId}.retry-${createHash('sha256').update(content).digest('hex').slice(0, 12)}`;
  let alreadyFinished = false;
  const handle = await client.workflow
    .start(WORKFLOW_TYPES.retry, {
      workflowId,
      taskQueue: prep.taskQueue,
      args: [{ config: prep.input, ids, base }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: `retry ${ids.length} failed dialogues of ${runId}`,
    })
    .catch((error: unknown) => {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      alreadyFinished = true;
      return client.workflow.getHandle(workflowId);
    });
  state.begun = true;
  options.onStarted?.({ runId: workflowId, resumed: true, attached: false, address: acquired.serverAddress });
  const result = await followRun(
    client,
    handle,
    runId,
    { ...options, onProgress: undefined },
    acquired.running,
  );
  return { ...result, alreadyFinished, retried: ids.length, replyChecks: acquired.replyChecks };
}

/** The run's books before this retry: summary.json when an earlier retry updated it, else its result. */
async function summaryBeforeRetry(
  dir: string,
  runId: string,
  result: () => Promise<RunSummary>,
): Promise<RunSummary> {
  try {
    const file = JSON.parse(await readFile(join(dir, SUMMARY_FILE), 'utf8')) as RunSummary;
    if (file.runId === runId) {
      const { outDir, model, requested, written, failed, tokens, llmCalls, intents } = file;
      const { duplicates, failedAttempts, stageTokens, estimatedCostUsd, batch } = file;
      const { judge, judgeModel, topics, calibration } = file;
      return {
        ...{ runId, outDir, model, requested, written, failed, tokens, llmCalls, intents },
        ...{ duplicates, failedAttempts, stageTokens, estimatedCostUsd },
        ...(batch && { batch }),
        // The judge's and the run's own figures (topic expansion, calibration) stay in the books.
        ...(judge && { judge }),
        ...(judgeModel && { judgeModel }),
        ...(topics && { topics }),
        ...(calibration && { calibration }),
      };
    }
  } catch {
    // none yet, or unreadable: the run's own result is the truth
  }
  return result();
}

/** Whether this process serves the run's model itself, and which file: see `GenerateOptions.llm`. */
function localModelChoice(
  options: GenerateOptions,
  env: NodeJS.ProcessEnv,
  localWorker: boolean,
): { path: string; isDefault: boolean } | undefined {
  const given = options.llm?.localModel;
  if (given !== undefined) {
    if (options.llm?.baseURL)
      throw new ConfigError('--local-model', 'cannot be combined with --base-url: pick one endpoint');
    if (!localWorker)
      throw new ConfigError('--local-model', 'needs a worker in this process (drop --no-worker)');
    return { path: resolve(given), isDefault: false };
  }
  // A variable set but empty is a mistake to report (createOpenAiClient does), not a wish for the local model.
  if (
    !localWorker ||
    options.llm?.baseURL ||
    env.OPENAI_BASE_URL !== undefined ||
    env.OPENAI_API_KEY !== undefined
  )
    return undefined;
  return { path: defaultModelPath(env), isDefault: true };
}
