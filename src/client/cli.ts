#!/usr/bin/env node
/**
 * `consistent-chat`: generate (embedded or against a cluster), worker, status, pause, resume, cancel.
 * Bad input gets one line naming the field and exit code 2 before any workflow starts.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  CancelledFailure,
  type Client,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type OpenAI from 'openai';
import type { Tracing } from '../tracing';
import type { EncryptionKeys } from '../shared/encryption/codec';
import { Command, CommanderError } from 'commander';
import { resolveIntent, type IntentId } from '../method/intents';
import type { Taxonomy } from '../method/taxonomy';
import { DEFAULT_TASK_QUEUE, DEFAULT_TEMPORAL_NAMESPACE, OUTPUT_FILES } from '../shared/constants';
import { pauseUpdate, resumeUpdate } from '../run/messages';
import { formatControlState } from './control';
import { redact } from '../shared/redact';
import type { RunInput, RunSummary } from '../run/schemas';
import { sharedStorageTaskQueue } from '../shared/storage-queue';
import { resolveOutputRoot } from '../storage/confine';
import { StoreRegistry } from '../storage/jsonl-store';
import { createJudgeClient, createOpenAiClient } from '../activities/openai-client';
import { addCalibrateCommand } from './calibrate-command';
import { addJudgeRecordsCommand, formatJudgeRecords, type JudgeRecordsFlags } from './judge-records';
import { addPlanCommand } from './plan-command';
import { loadPersonas, loadTopics } from './seed-files';
import { metricsExport } from './metrics-address';
import { parseFairShare } from './fair-share';
import { checkTracingEnv, tracingRequested } from '../shared/otel-env';
import {
  runProgressSchema,
  runStatusSchema,
  runSummarySchema,
  STATUS_SCHEMA_VERSION,
  type RunStatusDocument,
} from '../run/status';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_SHUTDOWN_GRACE_MS } from '../shared/constants';
import { ConfigError, RunClosedError } from '../shared/errors';
import { MIN_CODEC_TOKEN_LENGTH, startCodecServer } from './codec-server';
import {
  connectClient,
  connectWorker,
  createClient,
  describeConnection,
  embeddedConnection,
  resolveConnection,
  resolveEncryptionKeys,
  type ConnectionFlags,
  type TemporalConnectionConfig,
} from './connection';
import {
  checkRunDecodes,
  generate,
  readProgress,
  type GenerateOptions,
  type GenerateResult,
} from './generate';
import { checkVersionPart, DEFAULT_DEPLOYMENT_NAME, makeCurrentIfNone } from '../deployment';
import { HEALTH_MAX_AGE_MS, isHealthy, keepHealthFile } from '../health';
import { readConfigFile } from './config-file';
import { addDataCommands } from './data-commands';
import { writeSummaryFile } from '../report/stats';
import { loadAttributes, loadMethodOptions } from './method-files';
import { preflightEndpoint } from './preflight';
import { formatCost } from '../shared/pricing';
import {
  createJudgeProgressView,
  createProgressView,
  formatReplyChecks,
  formatCalibration,
  formatSummary,
  progressCost,
  progressIntervalMs,
} from './progress';
import { installStderrRuntime } from './logging';
import { serveUi } from './ui';
import { Resources } from './resources';
import { createWorkers } from './workers';
import { addRunFlags, flagOf, flagText, overFile, parseNumber, runFlagValues } from './run-flags';
import { packageVersion } from './version';
import { formatStorageIssue, readStorageIssues } from './storage-health';
import { intentWorkflowId } from '../workflows/run';

const METRICS_PORT_FLAG = '--metrics-port <port>';
const METRICS_PORT_HELP =
  'serve Prometheus metrics on this port, at /metrics (env CONSISTENT_CHAT_METRICS_PORT; host CONSISTENT_CHAT_METRICS_HOST, default 127.0.0.1)';

/**
 * Sampling presets: `paper` is the ConsistentChat authors' setting (queries at temperature 0.8 with
 * 800 max tokens, responses at 0.7 with 1,200). The per-stage flags win over a preset.
 */
export const SAMPLING_PRESETS = {
  paper: {
    temperatures: { skeleton: 0.8, responses: 0.7 },
    maxTokens: { skeleton: 800, responses: 1_200 },
  },
} as const;

/** The preset's per-stage sampling under the flags' (`temperatures`, `maxTokens`). */
function withPreset(name: string | undefined, flags: Record<string, unknown>): Record<string, unknown> {
  if (name === undefined) return flags;
  if (!Object.hasOwn(SAMPLING_PRESETS, name))
    throw new ConfigError(
      '--preset',
      `unknown preset "${name}"; known: ${Object.keys(SAMPLING_PRESETS).join(', ')}`,
    );
  return overFile({ ...SAMPLING_PRESETS[name as keyof typeof SAMPLING_PRESETS] }, flags);
}

/** Documented in the README: each means one thing, so scripts can tell them apart. */
export const EXIT_CODES = {
  ok: 0,
  /** Some dialogues are in failures.jsonl. */
  failures: 1,
  badInput: 2,
  /** The run failed or was cancelled. */
  runFailed: 3,
  interrupted: 130,
  terminated: 143,
} as const;

const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = {
  SIGINT: EXIT_CODES.interrupted,
  SIGTERM: EXIT_CODES.terminated,
};

/** Time past the workers' drain before a stopping process exits anyway. */
const EXIT_MARGIN_MS = 5_000;

/**
 * SIGINT / SIGTERM: the first aborts `controller` (workers drain, the server stops after them) and
 * bounds the whole stop to the drain time plus a margin; a second one exits at once. The embedded
 * server is killed on exit either way (see dev-server.ts).
 */
function stopOnSignals(
  controller: AbortController,
  graceMs = DEFAULT_SHUTDOWN_GRACE_MS,
): () => number | undefined {
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = SIGNAL_EXIT_CODES[signal] ?? EXIT_CODES.terminated;
    if (received) {
      process.stderr.write(`${signal} again: stopping now\n`);
      process.exit(code);
    }
    received = signal;
    process.stderr.write(
      `${signal}: stopping; calls in flight get up to ${Math.round(graceMs / 1000)} s (send it again to stop at once)\n`,
    );
    controller.abort();
    setTimeout(() => {
      process.stderr.write(
        `still stopping after ${Math.round((graceMs + EXIT_MARGIN_MS) / 1000)} s: exiting\n`,
      );
      process.exit(code);
    }, graceMs + EXIT_MARGIN_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => (received ? SIGNAL_EXIT_CODES[received] : undefined);
}

function number(flag: string, raw: string | undefined, integer = true): number | undefined {
  return raw === undefined ? undefined : parseNumber(flag, raw, integer);
}

/**
 * Intent names to ids, against `--taxonomy` when given. Without it, names the built-in taxonomy does
 * not know pass as they are: a resumed run may have its own taxonomy, and the run's input check names
 * the unknown ones.
 */
function intents(raw: string | undefined, taxonomy?: Taxonomy): IntentId[] | undefined {
  if (raw === undefined) return undefined;
  return raw.split(',').map((name) => {
    const id = resolveIntent(name, taxonomy);
    if (id) return id;
    if (!taxonomy) return name.trim();
    throw new ConfigError(
      '--intents',
      `unknown intent "${name.trim()}"; known: ${taxonomy.intents.map((i) => i.id).join(', ')}`,
    );
  });
}

/** `--taxonomy`/`--prompts`, else the config file's `taxonomy`/`prompts` (paths relative to the file, or inline). */
async function methodOptions(str: (key: string) => string | undefined, fromFile: Partial<RunInput>) {
  const fileValues = fromFile as { taxonomy?: unknown; prompts?: unknown };
  const fromConfig = await loadMethodOptions(
    {
      taxonomy: str('taxonomy') ? undefined : fileValues.taxonomy,
      prompts: str('prompts') ? undefined : fileValues.prompts,
    },
    dirname(resolve(str('config') ?? '.')),
    { taxonomy: '--config taxonomy', prompts: '--config prompts' },
  );
  const fromFlags = await loadMethodOptions(
    { taxonomy: str('taxonomy'), prompts: str('prompts') },
    process.cwd(),
    { taxonomy: '--taxonomy', prompts: '--prompts' },
  );
  return { ...fromConfig, ...fromFlags };
}

interface TemporalFlags {
  temporalAddress?: string;
  namespace?: string;
  taskQueue?: string;
  profile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
  encryptionKeyFile?: string;
}

/** The connection flags of a command, in the shape `resolveConnection` takes. */
function connectionFlags(opts: TemporalFlags): ConnectionFlags {
  return {
    address: opts.temporalAddress,
    namespace: opts.namespace,
    profile: opts.profile,
    tlsCertPath: opts.tlsCert,
    tlsKeyPath: opts.tlsKey,
    tlsCaPath: opts.tlsCa,
    tlsServerName: opts.tlsServerName,
  };
}

/** What `--temporal-address` falls back to: only `generate` starts a server of its own. */
const ADDRESS_HELP = {
  generate:
    'Temporal frontend (default TEMPORAL_ADDRESS or a temporal.toml profile, else an embedded dev server)',
  worker: 'Temporal frontend (default TEMPORAL_ADDRESS or a temporal.toml profile; starts no server)',
  run: "Temporal frontend (default TEMPORAL_ADDRESS or a temporal.toml profile, else the server of --out DIR's generate; starts no server)",
  judge:
    "Temporal frontend the run is on (default TEMPORAL_ADDRESS or a temporal.toml profile, else DIR's embedded server)",
} as const;

const temporalOptions = (cmd: Command, address: keyof typeof ADDRESS_HELP = 'run') =>
  cmd
    .option('--temporal-address <host:port>', ADDRESS_HELP[address])
    .option(
      '--namespace <ns>',
      `Temporal namespace (default TEMPORAL_NAMESPACE or "${DEFAULT_TEMPORAL_NAMESPACE}")`,
    )
    .option(
      '--task-queue <queue>',
      `task queue (default CONSISTENT_CHAT_TASK_QUEUE or "${DEFAULT_TASK_QUEUE}")`,
    )
    .option('--profile <name>', 'temporal.toml profile (default TEMPORAL_PROFILE or "default")')
    .option('--tls-cert <file>', 'mTLS client certificate, PEM (default TEMPORAL_TLS_CLIENT_CERT_PATH)')
    .option('--tls-key <file>', 'mTLS client key, PEM (default TEMPORAL_TLS_CLIENT_KEY_PATH)')
    .option('--tls-ca <file>', 'CA of the server certificate, PEM (default TEMPORAL_TLS_SERVER_CA_CERT_PATH)')
    .option('--tls-server-name <name>', 'server name to verify (default TEMPORAL_TLS_SERVER_NAME)')
    .option(
      '--encryption-key-file <file>',
      'payload encryption keys, [KEYID:]BASE64 per line (default CONSISTENT_CHAT_ENCRYPTION_KEY)',
    );

type Opts = Record<string, string | boolean | undefined>;

/** A string option's value; unset (or a boolean flag) is undefined. */
function text(opts: Opts, key: string): string | undefined {
  const value = opts[key];
  return typeof value === 'string' ? value : undefined;
}

/** `generate`'s run settings: the config file, then the table's flags over it, field by field. */
async function runSettings(opts: Opts): Promise<Partial<RunInput> & { outDir: string }> {
  const str = (key: string) => text(opts, key);
  const fromFile = str('config')
    ? await readConfigFile(str('config')!, { customTaxonomy: str('taxonomy') !== undefined })
    : {};
  const method = await methodOptions(str, fromFile);
  const flags = withPreset(str('preset'), runFlagValues(opts));
  // --judge-model and --judge-sample imply --judge; --no-calibrate alone does not.
  if (opts.judge === true) flags.judge ??= {};
  else if (onlyCalibrate(flags.judge) && !isRecord(fromFile.judge)) delete flags.judge;
  if (opts.expand === false) flags.expand = false;
  const intentNames = flagText(opts, 'intents');
  if (intentNames !== undefined) flags.intents = intents(intentNames, method.taxonomy);
  const attributes = flagText(opts, 'attributes');
  if (attributes) flags.attributes = await loadAttributes(attributes, process.cwd(), flagOf('attributes'));
  // Seed data (issue 22): the user's own topic list (all intents plan over it) and personas (one more axis).
  if (str('topics')) method.taxonomy = await loadTopics(str('topics')!, method.taxonomy, process.cwd());
  if (str('personas'))
    flags.attributes = await loadPersonas(
      str('personas')!,
      flags.attributes as RunInput['attributes'],
      process.cwd(),
    );
  // Flags win over the file; fields neither sets stay unset so an earlier run in --out can supply them.
  return {
    ...overFile(fromFile, flags),
    taxonomy: method.taxonomy,
    prompts: method.prompts,
  } as Partial<RunInput> & { outDir: string };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const onlyCalibrate = (judge: unknown) =>
  isRecord(judge) && Object.keys(judge).length === 1 && 'calibrate' in judge;

/** What `generate` is asked for besides the run settings: where it runs, its endpoint, its callbacks. */
function generateOptions(opts: Opts, run: GenerateOptions['run'], signal: AbortSignal): GenerateOptions {
  const str = (key: string) => text(opts, key);
  return {
    run,
    temporal: {
      ...connectionFlags(opts),
      taskQueue: str('taskQueue'),
      encryptionKeyFile: str('encryptionKeyFile'),
    },
    llm: { baseURL: str('baseUrl'), localModel: str('localModel'), judgeBaseURL: str('judgeBaseUrl') },
    localWorker: opts.worker !== false,
    metrics: metricsExport(str('metricsPort'), process.env),
    fairShare: parseFairShare({
      priority: number('--priority', str('priority')),
      fairnessKey: str('fairnessKey'),
      fairnessWeight: number('--fairness-weight', str('fairnessWeight'), false),
    }),
    keepRecordedMethod: opts.keepRecordedMethod === true,
    retryFailed: opts.retryFailed === true,
    signal,
    onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
    onNotice: (message) => process.stderr.write(`${message}\n`),
    progressIntervalMs: progressIntervalMs(),
  };
}

async function runGenerate(opts: Opts): Promise<number> {
  const run = await runSettings(opts);
  const view = createProgressView();
  const controller = new AbortController();
  const stoppedBy = stopOnSignals(controller);
  let attachedOnly = false;
  let result: GenerateResult;
  try {
    result = await generate({
      ...generateOptions(opts, run, controller.signal),
      onStarted: ({ runId, resumed, attached, address, uiUrl }) => {
        attachedOnly = attached;
        // With --retry-failed, `runId` is the retry's workflow id: the same one when a crashed retry resumes.
        const what = opts.retryFailed
          ? `retrying failed dialogues in ${runId}`
          : `${attached ? 'attached to' : resumed ? 'resuming' : 'started'} run ${runId}`;
        process.stderr.write(`${what} on Temporal ${address}${uiUrl ? `, UI ${uiUrl}` : ''}\n`);
      },
      onProgress: (p) => view.update(p),
    });
  } catch (error) {
    view.stop();
    if (controller.signal.aborted && !(error instanceof ConfigError)) {
      process.stderr.write('stopped: the run is saved; run the same command again to resume it\n');
      return stoppedBy() ?? EXIT_CODES.interrupted;
    }
    return generateFailureCode(error, run.outDir);
  }
  view.stop();
  const { summary, replyChecks } = result;
  // For `report` after the server is gone (an attached generate writes nothing: the owner does); a
  // run stored on another machine has no directory here.
  if (!attachedOnly)
    await writeSummaryFile(resolve(run.outDir), summary, run.prices).catch((error: Error) =>
      process.stderr.write(`warning: summary.json not written: ${error.message}\n`),
    );
  if (result.retried !== undefined)
    process.stderr.write(
      `retried ${result.retried} failed dialogue${result.retried === 1 ? '' : 's'} once each; ${summary.failed} in failures.jsonl now\n`,
    );
  else if (result.alreadyFinished) process.stderr.write(`run ${summary.runId} had already finished\n`);
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (replyChecks) process.stdout.write(`${formatReplyChecks(replyChecks)}\n`);
  return stoppedBy() ?? (summary.failed > 0 ? EXIT_CODES.failures : EXIT_CODES.ok);
}

/** A closed or cancelled run is said with what to do next; anything else is thrown on. */
function generateFailureCode(error: unknown, outDir: string): number {
  if (error instanceof RunClosedError) {
    const how = error.status.toLowerCase().replace('_', ' ');
    process.stderr.write(
      `run ${error.runId} was ${how} earlier and cannot be resumed; what it wrote stays in ${error.outDir}.\n` +
        `To generate again, start a new run in another directory: the same command with another --out (it draws a new run id; --run-id picks one).\n`,
    );
    return EXIT_CODES.runFailed;
  }
  if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
    process.stderr.write(`the run was cancelled; what was written in ${resolve(outDir)} stays valid\n`);
    return EXIT_CODES.runFailed;
  }
  throw error;
}

/** `judge DIR`: the run's stored dialogues without a verdict, through `generate`'s machinery. */
async function runJudgeRecords(dir: string, opts: JudgeRecordsFlags & TemporalFlags): Promise<number> {
  const sample = number('--judge-sample', opts.judgeSample, false);
  if (sample !== undefined && !(sample > 0 && sample <= 1))
    throw new ConfigError('--judge-sample', `must be in (0, 1], got ${opts.judgeSample}`);
  const judge = {
    ...(opts.judgeModel && { model: opts.judgeModel }),
    ...(sample !== undefined && { sample }),
  };
  const controller = new AbortController();
  const stoppedBy = stopOnSignals(controller);
  const view = createJudgeProgressView(await countLines(join(resolve(dir), OUTPUT_FILES.dialogues)));
  try {
    const { judged } = await generate({
      run: { outDir: dir, judge },
      // The same connection flags as every command that talks to Temporal; none: DIR's embedded server.
      temporal: {
        ...connectionFlags(opts),
        taskQueue: text(opts, 'taskQueue'),
        encryptionKeyFile: text(opts, 'encryptionKeyFile'),
      },
      llm: { judgeBaseURL: opts.judgeBaseUrl },
      judgeRecords: true,
      onJudgeProgress: (p) => view.update(p),
      progressIntervalMs: progressIntervalMs(),
      signal: controller.signal,
      onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
      onNotice: (message) => process.stderr.write(`${message}\n`),
      onStarted: ({ runId, address }) =>
        process.stderr.write(`judging with ${runId} on Temporal ${address}\n`),
    });
    view.stop();
    process.stdout.write(`${formatJudgeRecords(judged!)}\n`);
    return stoppedBy() ?? (judged!.failed > 0 ? EXIT_CODES.failures : EXIT_CODES.ok);
  } catch (error) {
    view.stop();
    if (controller.signal.aborted && !(error instanceof ConfigError)) {
      process.stderr.write('stopped: run the same command again to judge the rest\n');
      return stoppedBy() ?? EXIT_CODES.interrupted;
    }
    if (error instanceof WorkflowFailedError) {
      process.stderr.write(`the judge failed: ${error.cause?.message ?? error.message}\n`);
      return EXIT_CODES.runFailed;
    }
    throw error;
  }
}

/** The worker's deployment version from flags and environment; undefined with --no-versioning. */
function deploymentFromFlags(
  opts: Record<string, string | boolean | undefined>,
): { deploymentName: string; buildId?: string } | undefined {
  if (opts.versioning === false || opts.storageOnly === true) return undefined;
  const pick = (flag: string, value: unknown, env: string | undefined) => {
    const v = typeof value === 'string' ? value : env;
    const problem = v === undefined ? undefined : checkVersionPart(v);
    if (problem) throw new ConfigError(flag, problem);
    return v;
  };
  const deploymentName =
    pick('--deployment-name', opts.deploymentName, process.env.CONSISTENT_CHAT_DEPLOYMENT_NAME) ??
    DEFAULT_DEPLOYMENT_NAME;
  const buildId = pick('--build-id', opts.buildId, process.env.CONSISTENT_CHAT_BUILD_ID);
  return { deploymentName, buildId };
}

/** The `worker` command's settings, each checked before anything is started. */
interface WorkerSettings {
  target: TemporalConnectionConfig;
  keys: EncryptionKeys | undefined;
  namespace: string;
  taskQueue: string;
  storageQueue: string;
  storageOnly: boolean;
  /** Set when the worker serves storage: every such process is confined to an output root. */
  outRoot?: string;
  maxConcurrent?: number;
  maxCachedWorkflows?: number;
  /** Every LLM activity through the task queue, none started eagerly (README "Fair sharing"). */
  queuedActivities: boolean;
  deployment?: { deploymentName: string; buildId?: string };
}

function workerSettings(opts: Opts): WorkerSettings {
  const str = (key: string) => text(opts, key);
  const target = resolveConnection(connectionFlags(opts));
  const keys = resolveEncryptionKeys(str('encryptionKeyFile'));
  if (!target.address)
    throw new ConfigError(
      '--temporal-address',
      'a worker needs a Temporal server: pass --temporal-address, set TEMPORAL_ADDRESS or use a temporal.toml profile',
    );
  const taskQueue = str('taskQueue') ?? process.env.CONSISTENT_CHAT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const maxConcurrent = number('--max-concurrent-calls', str('maxConcurrentCalls'));
  const maxCachedWorkflows = number('--max-cached-workflows', str('maxCachedWorkflows'));
  if (maxCachedWorkflows !== undefined && maxCachedWorkflows < 1)
    throw new ConfigError('--max-cached-workflows', `must be at least 1, got ${maxCachedWorkflows}`);
  const storageOnly = opts.storageOnly === true;
  const serveStorage = opts.storage !== false;
  if (storageOnly && !serveStorage)
    throw new ConfigError('--storage-only', 'cannot be combined with --no-storage');
  const outRoot = str('outRoot') ?? process.env.CONSISTENT_CHAT_OUT_ROOT;
  if (serveStorage && !outRoot)
    throw new ConfigError(
      '--out-root',
      'a worker that serves storage needs an output root: pass --out-root DIR (or set CONSISTENT_CHAT_OUT_ROOT), or run it with --no-storage',
    );
  return {
    ...{
      target,
      keys,
      namespace: target.namespace,
      taskQueue,
      storageOnly,
      maxConcurrent,
      maxCachedWorkflows,
      queuedActivities: opts.queuedActivities === true,
    },
    storageQueue: str('storageTaskQueue') ?? sharedStorageTaskQueue(taskQueue),
    outRoot: serveStorage ? outRoot : undefined,
    deployment: deploymentFromFlags(opts),
  };
}

/** The store of a worker that serves storage, confined to its output root. */
async function workerStorage(s: WorkerSettings, resources: Resources): Promise<StoreRegistry | undefined> {
  if (s.outRoot === undefined) return undefined;
  let storage: StoreRegistry;
  try {
    storage = new StoreRegistry({ root: await resolveOutputRoot(s.outRoot) });
  } catch (error) {
    throw new ConfigError(
      '--out-root',
      `${s.outRoot}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  resources.defer(() => storage.closeAll());
  return storage;
}

/** The storage worker and the generation worker a `worker` process serves; both or neither exist. */
async function createProcessWorkers(
  s: WorkerSettings,
  connection: NativeConnection,
  storage: StoreRegistry | undefined,
  clients: { openai?: OpenAI; judge?: OpenAI },
  tracing: Tracing | undefined,
): Promise<Worker[]> {
  const { createGenerationWorker, createStorageWorker } = await import('../worker.js');
  const { openai, judge } = clients;
  const common = { connection, namespace: s.namespace, encryption: s.keys, tracing };
  return createWorkers([
    ...(storage ? [createStorageWorker({ ...common, taskQueue: s.storageQueue, storage })] : []),
    ...(openai
      ? [
          createGenerationWorker({
            ...common,
            taskQueue: s.taskQueue,
            openai,
            ...(judge && { judge }),
            // Also on the workflow's own queue: runs started before the shared storage queue store there.
            storage,
            maxConcurrentLlmCalls: s.maxConcurrent,
            maxCachedWorkflows: s.maxCachedWorkflows,
            eagerActivities: !s.queuedActivities,
            deployment: s.deployment,
          }),
        ]
      : []),
  ]);
}

async function runWorker(opts: Opts): Promise<number> {
  const s = workerSettings(opts);
  const metrics = metricsExport(text(opts, 'metricsPort'), process.env);
  checkTracingEnv(process.env);
  const openai = s.storageOnly ? undefined : createOpenAiClient({ baseURL: text(opts, 'baseUrl') });
  const judge = s.storageOnly ? undefined : createJudgeClient({ baseURL: text(opts, 'judgeBaseUrl') });
  // What this command acquires is released in reverse order however it ends (src/client/resources.ts).
  const resources = new Resources();
  try {
    const storage = await workerStorage(s, resources);
    if (openai) {
      const { warning } = await preflightEndpoint(openai, undefined);
      if (warning) process.stderr.write(`warning: ${warning}\n`);
    }
    await (await connectClient(s.target)).close();
    const controller = new AbortController();
    const stoppedBy = stopOnSignals(controller);
    await installStderrRuntime(process.env, metrics);
    // Released after the workers (registered before them): their last spans are exported.
    const tracing = tracingRequested(process.env)
      ? (await import('../tracing.js')).installTracing()
      : undefined;
    if (tracing) resources.defer(() => tracing.shutdown());
    const connection = await connectWorker(s.target);
    resources.defer(() => connection.close());
    const workers = await createProcessWorkers(s, connection, storage, { openai, judge }, tracing);
    const version = workers.find((w) => w.options.taskQueue === s.taskQueue)?.options.workerDeploymentOptions
      ?.version;
    process.stderr.write(
      `worker on ${describeConnection(s.target)}${s.keys ? ', payloads encrypted' : ''}, task queue ${s.storageOnly ? s.storageQueue : s.taskQueue}${storage && !s.storageOnly ? ` (storage on ${s.storageQueue})` : ''}${storage ? `, output root ${storage.root}` : ''}${version ? `, deployment ${version.deploymentName} build ${version.buildId}` : ''}; SIGTERM drains calls in flight\n`,
    );
    if (controller.signal.aborted) {
      // Created and never run: each still holds a native worker on the connection.
      await Promise.allSettled(workers.map((w) => w.runUntil(Promise.resolve())));
      return stoppedBy() ?? EXIT_CODES.terminated;
    }
    if (version) keepDeploymentCurrent(connection, s.namespace, version, resources);
    const healthFile = text(opts, 'healthFile') ?? process.env.CONSISTENT_CHAT_HEALTH_FILE;
    if (healthFile)
      resources.defer(
        keepHealthFile(resolve(healthFile), {
          getState: () => (workers.every((w) => w.getState() === 'RUNNING') ? 'RUNNING' : 'STOPPING'),
        }),
      );
    await runTogether(workers, controller.signal);
    return stoppedBy() ?? EXIT_CODES.ok;
  } finally {
    await resources.releaseAll();
  }
}

/** Runs the workers until one stops (SIGTERM reaches all of them), then stops the others too. */
async function runTogether(workers: Worker[], signal: AbortSignal): Promise<void> {
  const shutdown = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  signal.addEventListener('abort', shutdown, { once: true });
  const running = workers.map((w) => w.run());
  const settled = Promise.allSettled(running);
  try {
    await Promise.race(running);
  } finally {
    shutdown();
    await settled;
  }
  for (const r of await settled) if (r.status === 'rejected') throw r.reason;
}

/** The first version of a deployment becomes current by itself; later ones wait for the operator. */
function keepDeploymentCurrent(
  connection: NativeConnection,
  namespace: string,
  version: { deploymentName: string; buildId: string },
  resources: Resources,
): void {
  const stopped = new AbortController();
  const current = makeCurrentIfNone({ connection, namespace, version, signal: stopped.signal }).then(
    (outcome) =>
      outcome === 'not-current' &&
      process.stderr.write(
        `build ${version.buildId} is not the current version of ${version.deploymentName}: it serves runs already on it; ` +
          `to move runs to it: temporal worker deployment set-current-version --deployment-name ${version.deploymentName} --build-id ${version.buildId}\n`,
      ),
    (error: unknown) =>
      stopped.signal.aborted || process.stderr.write(`warning: ${(error as Error).message}\n`),
  );
  resources.defer(async () => {
    stopped.abort();
    await current;
  });
}

/** Finds the Temporal server of a run: a flag, the environment, or the embedded server of `--out DIR`. */
async function clientFor(opts: TemporalFlags & { out?: string }): Promise<Client> {
  const target = resolveConnection(connectionFlags(opts));
  const keys = resolveEncryptionKeys(opts.encryptionKeyFile);
  let address = target.address;
  if (!address && opts.out) {
    try {
      address = (
        JSON.parse(await readFile(join(resolve(opts.out), '.temporal', 'server.json'), 'utf8')) as {
          address: string;
        }
      ).address;
    } catch {
      throw new ConfigError(
        '--out',
        `no running embedded Temporal server for ${opts.out}: run its generate command, or \`consistent-chat ui ${opts.out}\` to reopen its history`,
      );
    }
  }
  if (!address)
    throw new ConfigError(
      '--temporal-address',
      'pass --temporal-address, set TEMPORAL_ADDRESS, or pass --out DIR of an embedded run',
    );
  const connection = await connectClient(
    target.address ? target : embeddedConnection(address, target.namespace),
  );
  return createClient(connection, target.namespace, keys);
}

/** `status` and the signals read the run's payloads: a wrong or missing key is a one-line error. */
async function checkedClientFor(runId: string, opts: TemporalFlags & { out?: string }): Promise<Client> {
  const client = await clientFor(opts);
  await checkRunDecodes(client, runId, resolveEncryptionKeys(opts.encryptionKeyFile));
  return client;
}

async function runCodecServer(opts: Record<string, string | undefined>): Promise<number> {
  const keys = resolveEncryptionKeys(opts.encryptionKeyFile);
  if (!keys)
    throw new ConfigError(
      'CONSISTENT_CHAT_ENCRYPTION_KEY',
      'a codec server needs the keys: set CONSISTENT_CHAT_ENCRYPTION_KEY or pass --encryption-key-file',
    );
  const port = number('--port', opts.port) ?? 8888;
  if (port < 0 || port > 65_535) throw new ConfigError('--port', `must be 0-65535, got ${port}`);
  let token: string | undefined;
  const tokenFile = opts.tokenFile;
  if (tokenFile) {
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new ConfigError(
        '--token-file',
        `cannot read ${tokenFile}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  } else token = process.env.CONSISTENT_CHAT_CODEC_TOKEN || undefined;
  if (token !== undefined && token.length < MIN_CODEC_TOKEN_LENGTH)
    throw new ConfigError(
      tokenFile ? '--token-file' : 'CONSISTENT_CHAT_CODEC_TOKEN',
      `use a token of ${MIN_CODEC_TOKEN_LENGTH} characters or more`,
    );
  const origins = (opts.corsOrigin ?? 'http://localhost:8233,http://127.0.0.1:8233')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    try {
      if (new URL(origin).origin !== origin) throw new Error('not an origin');
    } catch {
      throw new ConfigError('--cors-origin', `not an origin (scheme://host[:port]): ${origin}`);
    }
  }
  const server = await startCodecServer({
    keys,
    host: opts.host ?? '127.0.0.1',
    port,
    corsOrigins: origins,
    token,
    refusePlaintext: opts.refusePlaintext !== undefined,
  });
  // A token made here is shown once, inside the endpoint: the only way a UI can present it.
  process.stderr.write(
    `codec server on ${server.url} (POST /encode, /decode; CORS for ${origins.join(', ')}; token required${opts.refusePlaintext !== undefined ? '; plaintext payloads refused' : ''}); point the Temporal UI's codec endpoint at ${token === undefined ? server.endpoint : `${server.url}/<token>`} or send Authorization: Bearer <token>\n`,
  );
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  await server.close();
  return EXIT_CODES.ok;
}

const OUT_OF_EMBEDDED_RUN =
  'output directory of a run on the embedded server: talks to the server its generate command runs (or pass --temporal-address)';

/** The run's description, or a one-line error naming the run id when the server has no such run. */
async function describeRun(client: Client, runId: string) {
  try {
    return await client.workflow.getHandle(runId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new ConfigError('<run-id>', `no run ${runId} on this Temporal server`);
    throw error;
  }
}

/** Why a closed run did not complete: the failure's own message, with its cause. */
async function failureReason(client: Client, runId: string): Promise<string> {
  try {
    await client.workflow.getHandle(runId).result();
    return 'it completed';
  } catch (error) {
    if (error instanceof WorkflowFailedError) {
      const cause = error.cause;
      if (cause instanceof CancelledFailure) return 'cancelled';
      return [error.message, cause?.message, (cause?.cause as Error | undefined)?.message]
        .filter(Boolean)
        .join(': ');
    }
    return error instanceof Error ? error.message : String(error);
  }
}

async function countLines(file: string): Promise<number | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').filter((l) => l.length > 0).length;
  } catch {
    return undefined;
  }
}

/** `generate`: its run flags come from the table in run-flags.ts. */
function addGenerateCommand(program: Command): void {
  temporalOptions(
    addRunFlags(program.command('generate'))
      .description(
        'generate a dataset (resumes the run already in --out); without --temporal-address it starts an embedded Temporal server in DIR/.temporal',
      )
      .option('--base-url <url>', 'OpenAI-compatible endpoint (default OPENAI_BASE_URL)')
      .option(
        '--local-model <file.gguf>',
        'serve this GGUF model locally with llama.cpp (the default model when no endpoint is configured)',
      )
      .option('--config <file>', 'YAML or JSON file of run settings (workflow input names); flags win')
      .option(
        '--keep-recorded-method',
        "resume even if --taxonomy/--prompts differ from the run's; it keeps the recorded ones",
      )
      .option(
        '--retry-failed',
        "retry the finished run's failed dialogues (failures.jsonl) once each; failures.jsonl keeps what fails again",
      )
      .option(
        '--topics <file>',
        'your own topics for every intent: a CSV, JSONL or Parquet file, FILE:COLUMN (default column "topic"); not expanded unless the config sets expand',
      )
      .option(
        '--personas <file>',
        'personas, one more attribute axis: a YAML, JSON, CSV or JSONL file, FILE:COLUMN (default column "persona"), at most 200',
      )
      .option(
        '--no-expand',
        'plan over the seed topics only: no LLM topic expansion (new runs with the built-in topics expand when they need more)',
      )
      .option(
        '--preset <name>',
        'sampling preset: paper (skeleton temperature 0.8, 800 max tokens; responses 0.7, 1,200); the per-stage flags win',
      )
      .option('--judge', "score each dialogue's consistency with a judge (stage 3; default the run's model)")
      .option(
        '--judge-base-url <url>',
        "the judge's OpenAI-compatible endpoint, key in CONSISTENT_CHAT_JUDGE_API_KEY (default CONSISTENT_CHAT_JUDGE_BASE_URL, else --base-url)",
      )
      .option('--no-worker', 'run no LLM worker in this process (workers run elsewhere)')
      .option('--priority <n>', 'task priority among runs on the task queue, 1 (first) to 5 (default 3)')
      .option(
        '--fairness-key <key>',
        'runs with one key share one fair share of the workers (default the run id)',
      )
      .option('--fairness-weight <w>', "the fairness key's share relative to others' (default 1)")
      .option(METRICS_PORT_FLAG, METRICS_PORT_HELP),
    'generate',
  ).action(async (opts: Record<string, string | boolean | undefined>) => {
    process.exitCode = await runGenerate(opts);
  });
}

/** `worker`: serves a cluster's runs; starts no server. */
function addWorkerCommand(program: Command): void {
  temporalOptions(
    program
      .command('worker')
      .description(
        'run a worker against an existing Temporal server (--temporal-address or TEMPORAL_ADDRESS); starts no server',
      )
      .option('--base-url <url>', 'OpenAI-compatible endpoint (default OPENAI_BASE_URL)')
      .option(
        '--judge-base-url <url>',
        "the judge's endpoint, key in CONSISTENT_CHAT_JUDGE_API_KEY (default CONSISTENT_CHAT_JUDGE_BASE_URL, else --base-url)",
      )
      .option(METRICS_PORT_FLAG, METRICS_PORT_HELP)
      .option('--max-concurrent-calls <n>', 'LLM activities this worker runs at once (default 500)')
      .option(
        '--queued-activities',
        'start no activity eagerly: every one goes through the task queue, where priorities, fairness weights and its rate limit apply (costs throughput)',
      )
      .option(
        '--max-cached-workflows <n>',
        `workflows kept in memory between tasks (default ${DEFAULT_MAX_CACHED_WORKFLOWS})`,
      )
      .option('--no-storage', 'do not serve storage activities (they run where the output directory is)')
      .option('--storage-only', 'serve only storage activities, on --storage-task-queue')
      .option(
        '--storage-task-queue <queue>',
        'task queue of storage activities (default <task-queue>.storage)',
      )
      .option(
        '--out-root <dir>',
        'write output directories only below this one (required unless --no-storage; env CONSISTENT_CHAT_OUT_ROOT)',
      )
      .option(
        '--deployment-name <name>',
        `Worker Deployment this worker belongs to (default CONSISTENT_CHAT_DEPLOYMENT_NAME or "${DEFAULT_DEPLOYMENT_NAME}")`,
      )
      .option(
        '--build-id <id>',
        'version of this worker (default CONSISTENT_CHAT_BUILD_ID, else a hash of the workflow code)',
      )
      .option('--no-versioning', 'run unversioned: workflows replay on whatever code the workers run')
      .option(
        '--health-file <path>',
        'touch this file every few seconds while the worker runs (default CONSISTENT_CHAT_HEALTH_FILE)',
      ),
    'worker',
  ).action(async (opts: Record<string, string | boolean | undefined>) => {
    process.exitCode = await runWorker(opts);
  });
}

/** `status`, `pause`, `resume`, `cancel`: talk to a run's server, start none. */
function addRunCommands(program: Command): void {
  temporalOptions(
    program
      .command('status')
      .description(
        'print per-intent progress, tokens and failures (exit 3 if the run failed or was cancelled); starts no server',
      )
      .argument('<run-id>')
      .option('--out <dir>', OUT_OF_EMBEDDED_RUN)
      .option(
        '--json',
        `print one JSON document, schema version ${STATUS_SCHEMA_VERSION} (README "Machine-readable state")`,
      ),
  ).action((runId: string, opts: TemporalFlags & { out?: string; json?: boolean }) =>
    opts.json ? printStatusJson(runId, opts) : printStatus(runId, opts),
  );
  for (const [name, update, description] of [
    ['pause', pauseUpdate, 'stop starting LLM calls (calls in flight finish); starts no server'],
    ['resume', resumeUpdate, 'start LLM calls again; starts no server'],
  ] as const) {
    temporalOptions(
      program
        .command(name)
        .description(description)
        .argument('<run-id>')
        .option('--out <dir>', OUT_OF_EMBEDDED_RUN),
    ).action(async (runId: string, opts: TemporalFlags & { out?: string }) => {
      const client = await checkedClientFor(runId, opts);
      await describeRun(client, runId);
      const state = await client.workflow.getHandle(runId).executeUpdate(update);
      process.stdout.write(`${name}d ${runId}: ${formatControlState(state)}\n`);
    });
  }
  temporalOptions(
    program
      .command('cancel')
      .description('cancel a run; what was written stays; starts no server')
      .argument('<run-id>')
      .option('--out <dir>', OUT_OF_EMBEDDED_RUN),
  ).action(async (runId: string, opts: TemporalFlags & { out?: string }) => {
    const client = await checkedClientFor(runId, opts);
    await describeRun(client, runId);
    await client.workflow.getHandle(runId).cancel();
    process.stdout.write(`cancel requested for ${runId}\n`);
  });
}

/** `codec-server`, `ui` and `health`. */
function addServiceCommands(program: Command): void {
  program
    .command('codec-server')
    .description('serve the Temporal codec protocol so the Temporal UI shows encrypted payloads decoded')
    .option('--host <ip>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on (default 8888)')
    .option(
      '--cors-origin <origins>',
      'comma-separated browser origins of the Temporal UI (default http://localhost:8233,http://127.0.0.1:8233)',
    )
    .option(
      '--token-file <file>',
      'the token requests carry, as Authorization: Bearer <token> or a first path segment (default CONSISTENT_CHAT_CODEC_TOKEN, else a new one, printed)',
    )
    .option('--refuse-plaintext', 'refuse to decode payloads that are not encrypted')
    .option(
      '--encryption-key-file <file>',
      'payload encryption keys, [KEYID:]BASE64 per line (default CONSISTENT_CHAT_ENCRYPTION_KEY)',
    )
    .action(async (opts: Record<string, string | undefined>) => {
      process.exitCode = await runCodecServer(opts);
    });
  program
    .command('ui')
    .description(
      "open a finished or crashed run's embedded history in the Temporal UI: starts the dev server on DIR/.temporal/temporal.db until Ctrl-C",
    )
    .argument('<dir>', 'output directory of a run started without --temporal-address')
    .option(
      '--encryption-key-file <file>',
      'payload encryption keys, [KEYID:]BASE64 per line (default CONSISTENT_CHAT_ENCRYPTION_KEY): the UI shows payloads decoded',
    )
    .action(async (dir: string, opts: { encryptionKeyFile?: string }) => {
      const stopped = new Promise<void>((resolveStop) => {
        process.once('SIGINT', () => resolveStop());
        process.once('SIGTERM', () => resolveStop());
      });
      await serveUi({
        dir,
        until: stopped,
        print: (line) => process.stdout.write(`${line}\n`),
        encryptionKeyFile: opts.encryptionKeyFile,
      });
    });
  program
    .command('health')
    .description("exit 0 if a worker's health file was touched recently (for container health checks)")
    .option('--file <path>', "the worker's --health-file (default CONSISTENT_CHAT_HEALTH_FILE)")
    .action((opts: { file?: string }) => {
      const file = opts.file ?? process.env.CONSISTENT_CHAT_HEALTH_FILE;
      if (!file) throw new ConfigError('--file', 'pass --file or set CONSISTENT_CHAT_HEALTH_FILE');
      const healthy = isHealthy(resolve(file));
      process.stdout.write(
        healthy ? 'healthy\n' : `unhealthy: ${file} not touched in ${HEALTH_MAX_AGE_MS / 1000} s\n`,
      );
      process.exitCode = healthy ? EXIT_CODES.ok : EXIT_CODES.failures;
    });
}

/** `status --json`: what the text view shows, as the documented schema (src/run/status.ts). */
async function printStatusJson(runId: string, opts: TemporalFlags & { out?: string }): Promise<void> {
  const client = await checkedClientFor(runId, opts);
  const status = (await describeRun(client, runId)).status.name;
  const doc: RunStatusDocument = { schemaVersion: STATUS_SCHEMA_VERSION, runId, status };
  if (status === 'COMPLETED')
    doc.summary = runSummarySchema.parse(await client.workflow.getHandle(runId).result());
  else if (status !== 'RUNNING') doc.reason = await failureReason(client, runId);
  else {
    // Runs started before the version existed answer without it; the shape is the same.
    doc.progress = runProgressSchema.parse({
      ...(await readProgress(client, runId)),
      schemaVersion: STATUS_SCHEMA_VERSION,
    });
    doc.estimatedCostUsd = progressCost(doc.progress);
    const running = doc.progress.intents.filter((i) => i.status === 'running');
    doc.storageIssues = await readStorageIssues(client, [
      runId,
      ...running.map((i) => intentWorkflowId(runId, i.intent)),
    ]);
  }
  if (opts.out)
    doc.files = {
      dialogues: (await countLines(join(resolve(opts.out), OUTPUT_FILES.dialogues))) ?? 0,
      failures: (await countLines(join(resolve(opts.out), OUTPUT_FILES.failures))) ?? 0,
    };
  process.stdout.write(`${JSON.stringify(runStatusSchema.parse(doc), null, 2)}\n`);
  if (doc.summary && doc.summary.failed > 0) process.exitCode = EXIT_CODES.failures;
  else if (doc.reason !== undefined) process.exitCode = EXIT_CODES.runFailed;
}

/** Prints a run's state: its summary, why it closed, or its live progress, and its files with `--out`. */
async function printStatus(runId: string, opts: TemporalFlags & { out?: string }): Promise<void> {
  const client = await checkedClientFor(runId, opts);
  const description = await describeRun(client, runId);
  process.stdout.write(`run ${runId}: ${description.status.name}\n`);
  if (description.status.name === 'COMPLETED') {
    const summary = (await client.workflow.getHandle(runId).result()) as RunSummary;
    process.stdout.write(`${formatSummary(summary)}\n`);
    if (summary.failed > 0) process.exitCode = EXIT_CODES.failures;
  } else if (description.status.name !== 'RUNNING') {
    process.stdout.write(`why: ${await failureReason(client, runId)}\n`);
    process.exitCode = EXIT_CODES.runFailed;
  } else if (description.status.name === 'RUNNING') {
    const p = await readProgress(client, runId);
    process.stdout.write(`  ${formatCost(progressCost(p))} so far\n`);
    if (p.calibration) process.stdout.write(`  ${formatCalibration(p.calibration)}\n`);
    for (const i of p.intents) {
      process.stdout.write(
        `  ${i.intent.padEnd(22)} ${i.written}/${i.planned} written, ${i.failed} failed, ${i.inFlight} in flight, tokens ${i.tokens.prompt}+${i.tokens.completion}${i.paused ? ', paused' : ''}\n`,
      );
    }
    // Storage retries without end by design; say so when it is not getting through.
    const running = p.intents.filter((i) => i.status === 'running');
    const issues = await readStorageIssues(client, [
      runId,
      ...running.map((i) => intentWorkflowId(runId, i.intent)),
    ]);
    for (const issue of issues) process.stdout.write(`  ${formatStorageIssue(issue)}\n`);
  }
  if (opts.out) {
    const written = await countLines(join(resolve(opts.out), OUTPUT_FILES.dialogues));
    const failed = await countLines(join(resolve(opts.out), OUTPUT_FILES.failures));
    process.stdout.write(`files: ${written ?? 0} dialogues, ${failed ?? 0} failures\n`);
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name('consistent-chat')
    .description('Generate ConsistentChat multi-turn dialogue datasets as durable Temporal workflows')
    .version(packageVersion(), '-V, --version')
    .addHelpText(
      'after',
      '\nExit codes: 0 all written, 1 some dialogues failed, 2 bad input, 3 run failed or cancelled,\n130 interrupted (SIGINT), 143 terminated (SIGTERM).',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  addGenerateCommand(program);
  addWorkerCommand(program);
  addRunCommands(program);
  addDataCommands(program);
  addCalibrateCommand(program);
  temporalOptions(addJudgeRecordsCommand(program, runJudgeRecords), 'judge');
  addPlanCommand(program);
  addServiceCommands(program);
  return program;
}

/** `cmd | head -1` closes our stdout early: that ends the command quietly, not with an EPIPE trace. */
let quietOnClosedOutput = false;
function exitQuietlyOnClosedOutput(): void {
  // Once per process: `main` may run many times in one process (the library, tests).
  if (quietOnClosedOutput) return;
  quietOnClosedOutput = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT_CODES.ok);
    });
  }
}

export async function main(argv = process.argv): Promise<number> {
  exitQuietlyOnClosedOutput();
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.badInput;
    }
    // Redacted: an endpoint's or a server's error text can quote a credential.
    if (error instanceof ConfigError) {
      process.stderr.write(`error: ${redact(error.message)}\n`);
      return EXIT_CODES.badInput;
    }
    const message = redact(error instanceof Error ? error.message : String(error));
    process.stderr.write(`error: ${message.split('\n')[0]}\n`);
    return EXIT_CODES.runFailed;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
