/**
 * Runs a generation the way `consistent-chat generate` and `ConsistentChatGenerator.run` do: checks the
 * input before any work starts, connects to Temporal (or starts the embedded dev server persisted in the
 * output directory), runs the workers this process owns, starts or re-attaches to the run, reports
 * progress, and returns the summary.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type OpenAI from 'openai';
import type { z } from 'zod';
import { intentWorkflowId } from '../workflows/run';
import {
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPORAL_NAMESPACE,
  OUTPUT_FILES,
  WORKFLOW_TYPES,
} from '../shared/constants';
import { intentProgressQuery, runProgressQuery } from '../shared/messages';
import {
  runInputSchema,
  type RunConfig,
  type RunInput,
  type RunProgress,
  type RunSummary,
} from '../shared/schemas';
import { StoreRegistry } from '../storage/jsonl-store';
import { ConfigError, createGenerationWorker, createOpenAiClient, createStorageWorker } from '../worker';
import { makeDirs } from '../storage/make-dirs';
import { startDevServer, type DevServer } from './dev-server';
import { LOG_FILE, routedRuntimeLogger } from './logging';
import { checkOutDir } from './out-dir';
import { preflightEndpoint } from './preflight';

export interface TemporalOptions {
  /** `host:port`; when absent (and TEMPORAL_ADDRESS unset) an embedded dev server is started. */
  address?: string;
  /** @default 'default' */
  namespace?: string;
  /** @default DEFAULT_TASK_QUEUE */
  taskQueue?: string;
}

export interface GenerateOptions {
  /** The run's settings; `outDir` may be relative. Fields left out are taken from an earlier run in `outDir`. */
  run: Partial<Omit<RunInput, 'outDir'>> & { outDir: string };
  temporal?: TemporalOptions;
  /** Endpoint of the LLM worker this process runs. The API key comes from the environment. */
  llm?: { baseURL?: string };
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
}

/** What `run.json` in the output directory holds: the run's full input, so a rerun resumes it. */
interface RunFile {
  runId: string;
  input: RunConfig;
  createdAt: string;
}

/** Maps run input paths to the CLI flags that set them, for one-line errors. */
export const FIELD_FLAGS: Record<string, string> = {
  runId: '--run-id',
  outDir: '--out',
  model: '--model',
  intents: '--intents',
  numDialogsPerIntent: '--dialogs-per-intent',
  numTurnsPerDialog: '--turns',
  temperature: '--temperature',
  seed: '--seed',
  concurrency: '--concurrency',
  responseFormat: '--response-format',
  'rateLimit.requestsPerMinute': '--rpm',
  'rateLimit.tokensPerMinute': '--tpm',
};

export function zodToConfigError(error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  const path = issue?.path.join('.') ?? '';
  const field = FIELD_FLAGS[path] ?? FIELD_FLAGS[String(issue?.path[0] ?? '')] ?? (path || 'input');
  return new ConfigError(field, issue?.message ?? 'invalid');
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
] as const;

/** Resolves the run's input: an earlier run in the directory wins for what was not given now. */
export async function resolveRunInput(
  options: GenerateOptions['run'],
  dir: string,
): Promise<{ config: RunConfig; resumed: boolean }> {
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
  if (previous && (!given.runId || given.runId === previous.runId)) {
    for (const field of PLAN_FIELDS) {
      if (
        given[field] !== undefined &&
        JSON.stringify(given[field]) !== JSON.stringify(previous.input[field])
      ) {
        throw new ConfigError(
          FIELD_FLAGS[field] ?? field,
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
    return { config: parsed.data, resumed: true };
  }
  if (!given.model) throw new ConfigError('--model', 'no model given: pass --model or set OPENAI_MODEL');
  const parsed = runInputSchema.safeParse({ ...given, outDir: dir, runId: given.runId ?? newRunId() });
  if (!parsed.success) throw zodToConfigError(parsed.error);
  return { config: parsed.data, resumed: false };
}

/** Records a new run's input in `run.json`, once every start-up check has passed. */
export async function saveRunFile(dir: string, config: RunConfig): Promise<void> {
  const runFile = join(dir, OUTPUT_FILES.run);
  const record: RunFile = { runId: config.runId, input: config, createdAt: new Date().toISOString() };
  // Written atomically: a crash never leaves a half run.json behind.
  await writeFile(`${runFile}.tmp`, JSON.stringify(record, null, 2));
  await rename(`${runFile}.tmp`, runFile);
}

/** Connects to a Temporal server or says clearly that it cannot. */
export async function connectTemporal(address: string, namespace: string): Promise<Connection> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 5_000 });
    await connection.workflowService.getSystemInfo({});
    await connection.workflowService.describeNamespace({ namespace });
    return connection;
  } catch (error) {
    throw new ConfigError(
      '--temporal-address',
      `cannot reach Temporal at ${address} (namespace ${namespace}): ${(error as Error).message}`,
    );
  }
}

/** The live progress of a run: the parent's view, with each running intent's own counters. */
export async function readProgress(client: Client, runId: string): Promise<RunProgress> {
  const progress = await client.workflow.getHandle(runId).query(runProgressQuery);
  const intents = await Promise.all(
    progress.intents.map(async (p) => {
      // Once the parent holds live numbers for an intent, one query serves the whole run.
      if (p.status !== 'running' || p.written + p.failed + p.inFlight + p.llmCalls > 0) return p;
      try {
        return await client.workflow.getHandle(intentWorkflowId(runId, p.intent)).query(intentProgressQuery);
      } catch {
        return p; // not started yet, or between two runs of a continue-as-new
      }
    }),
  );
  return { ...progress, intents };
}

export function storageTaskQueue(taskQueue: string, runId: string): string {
  return `${taskQueue}.storage.${runId}`;
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
  const result = handle.result() as Promise<RunSummary>;
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

  let done = false;
  const poll = (async () => {
    while (!done && options.onProgress) {
      try {
        options.onProgress(await readProgress(client, runId));
      } catch {
        // the run may be completing; the next tick or the result will say
      }
      await new Promise((r) => setTimeout(r, options.progressIntervalMs ?? 1_000));
    }
  })();
  try {
    const summary = await Promise.race([result, aborted, workerFailure]);
    return { summary, alreadyFinished: false };
  } finally {
    done = true;
    await poll;
  }
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

export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const env = options.env ?? process.env;
  const namespace = options.temporal?.namespace ?? env.TEMPORAL_NAMESPACE ?? DEFAULT_TEMPORAL_NAMESPACE;
  const taskQueue = options.temporal?.taskQueue ?? env.CONSISTENT_CHAT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const address = options.temporal?.address ?? (env.TEMPORAL_ADDRESS || undefined);
  const localWorker = options.localWorker ?? true;
  const aborted = () => options.signal?.throwIfAborted();

  // Everything that can be checked is checked before anything is written or started: a failed check
  // leaves no directory and no run.json behind, so the corrected command is accepted.
  checkTemporalSettings({ address, namespace, taskQueue });
  const dir = await checkOutDir(options.run.outDir);
  let openai: OpenAI | undefined;
  if (localWorker || !address) openai = createOpenAiClient({ baseURL: options.llm?.baseURL }, env);
  const { config, resumed } = await resolveRunInput(
    { ...options.run, model: options.run.model ?? env.OPENAI_MODEL },
    dir,
  );
  const input: RunConfig = { ...config, storageTaskQueue: storageTaskQueue(taskQueue, config.runId) };
  if (openai) {
    const { warning } = await preflightEndpoint(openai, input.model, undefined, options.signal);
    if (warning) options.onWarning?.(warning);
  }
  aborted();
  if (address) {
    const connection = await connectTemporal(address, namespace);
    try {
      await checkRunIdFree(new Client({ connection, namespace }), input.runId, dir);
    } finally {
      await connection.close();
    }
  }
  aborted();

  const logger = options.logger ? undefined : routedRuntimeLogger(env);
  const cleanups: (() => Promise<void>)[] = [];
  const storage = new StoreRegistry();
  let created: string | undefined;
  let workflowStarted = false;
  try {
    try {
      created = await makeDirs(dir);
    } catch (error) {
      throw new ConfigError(
        '--out',
        `cannot create ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    if (options.logger) {
      const stopRouting = routedRuntimeLogger(env)?.route({ logger: options.logger });
      if (stopRouting) cleanups.unshift(() => Promise.resolve(stopRouting()));
    } else if (logger) {
      const stopRouting = logger.route({ file: join(dir, LOG_FILE) });
      cleanups.unshift(() => Promise.resolve(stopRouting()));
    }
    // The process that holds the directory's lock owns the run; a second one only attaches to it.
    const owner = await storage.get(dir).then(
      () => true,
      (error: Error) => {
        if (/in use by process/.test(error.message)) return false;
        throw new ConfigError('--out', error.message);
      },
    );
    cleanups.unshift(() => storage.closeAll());
    aborted();

    let server: DevServer | undefined;
    let serverAddress = address;
    if (!serverAddress && !owner) serverAddress = await embeddedServerAddress(dir);
    if (!serverAddress) {
      const stateDir = join(dir, '.temporal');
      await makeDirs(stateDir);
      server = await startDevServer({
        dbFile: join(stateDir, 'temporal.db'),
        stateFile: join(stateDir, 'server.json'),
        logFile: join(stateDir, 'server.log'),
        env,
      });
      cleanups.unshift(() => server!.stop());
      serverAddress = server.address;
    }
    aborted();
    const connection = await connectTemporal(serverAddress, namespace);
    cleanups.unshift(() => connection.close());
    const client = new Client({ connection, namespace });

    if (!owner) {
      workflowStarted = true;
      options.onStarted?.({ runId: input.runId, resumed: true, attached: true, address: serverAddress });
      return await followRun(client, client.workflow.getHandle(input.runId), input.runId, options, []);
    }
    const workerConnection = await NativeConnection.connect({ address: serverAddress });
    cleanups.unshift(() => workerConnection.close());
    const workers: Worker[] = [
      await createStorageWorker({
        connection: workerConnection,
        namespace,
        taskQueue: input.storageTaskQueue!,
        storage,
      }),
    ];
    if (openai)
      workers.push(
        await createGenerationWorker({ connection: workerConnection, namespace, taskQueue, openai }),
      );
    const running = workers.map((w) => w.run());
    cleanups.unshift(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running);
    });
    aborted();
    if (!resumed) await saveRunFile(dir, config);

    let handle: WorkflowHandle;
    let alreadyFinished = false;
    try {
      handle = await client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: input.runId,
        taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        staticSummary: `${input.intents.length} intents × ${input.numDialogsPerIntent} dialogues, ${input.model}`,
        memo: { outDir: dir, host: hostname() },
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      handle = client.workflow.getHandle(input.runId);
      alreadyFinished = true;
    }
    workflowStarted = true;
    options.onStarted?.({
      runId: input.runId,
      resumed: resumed || alreadyFinished,
      attached: false,
      address: serverAddress,
      uiUrl: server?.uiUrl,
    });
    const result = await followRun(client, handle, input.runId, options, running);
    return { ...result, alreadyFinished };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    // An exit before the run began leaves no directory behind that this call created.
    if (created && !workflowStarted)
      await rm(created, { recursive: true, force: true }).catch(() => undefined);
  }
}
