/**
 * Runs a generation the way `consistent-chat generate` and `ConsistentChatGenerator.run` do: checks the
 * input before any work starts, connects to Temporal (or starts the embedded dev server persisted in the
 * output directory), runs the workers this process owns, starts or re-attaches to the run, reports
 * progress, and returns the summary.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type OpenAI from 'openai';
import type { z } from 'zod';
import { intentWorkflowId } from '../workflows/run';
import { defaultMaxTokens } from '../method/prompts';
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
import type { ReplyCheckCounts } from '../activities';
import { ConfigError, createGenerationWorker, createOpenAiClient, createStorageWorker } from '../worker';
import { startDevServer, type DevServer } from './dev-server';
import {
  checkModelFile,
  contextPerSlot,
  defaultLocalSlots,
  defaultModelPath,
  LOCAL_MODEL_TIMEOUTS,
  localModelName,
  startLocalModel,
} from './local-model';
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
  /**
   * Endpoint of the LLM worker this process runs. The API key comes from the environment. With no
   * endpoint (no `baseURL`, OPENAI_BASE_URL or OPENAI_API_KEY), or with `localModel` (a GGUF file),
   * an embedded llama.cpp server serves the model for the run.
   */
  llm?: { baseURL?: string; localModel?: string };
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
  /** Stops waiting (the run itself goes on and can be resumed). */
  signal?: AbortSignal;
  /** @default 1000 */
  progressIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface GenerateResult {
  summary: RunSummary;
  /** True when the run had already finished before this call. */
  alreadyFinished: boolean;
  /** Replies this process's worker checked, and rejected by kind (each rejection was a new call). */
  replyChecks?: ReplyCheckCounts;
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

/** Checks and creates the output directory before anything else happens. */
export async function prepareOutDir(outDir: string): Promise<string> {
  const dir = resolve(outDir);
  try {
    await mkdir(dir, { recursive: true });
    accessSync(dir, fsConstants.W_OK);
  } catch (error) {
    throw new ConfigError(
      '--out',
      `cannot write to ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
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
  const record: RunFile = {
    runId: parsed.data.runId,
    input: parsed.data,
    createdAt: new Date().toISOString(),
  };
  // Written atomically: a crash never leaves a half run.json behind.
  await writeFile(`${runFile}.tmp`, JSON.stringify(record, null, 2));
  await rename(`${runFile}.tmp`, runFile);
  return { config: parsed.data, resumed: false };
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
      if (p.status !== 'running') return p;
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

export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const env = options.env ?? process.env;
  const dir = await prepareOutDir(options.run.outDir);
  const namespace = options.temporal?.namespace ?? env.TEMPORAL_NAMESPACE ?? DEFAULT_TEMPORAL_NAMESPACE;
  const taskQueue = options.temporal?.taskQueue ?? env.CONSISTENT_CHAT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const address = options.temporal?.address ?? env.TEMPORAL_ADDRESS;
  const localWorker = options.localWorker ?? true;

  // Everything that can be checked is checked before a server, a worker or a workflow starts.
  let openai: OpenAI | undefined;
  const localModel = localModelChoice(options, env, localWorker);
  if (localModel) await checkModelFile(localModel.path, localModel.isDefault);
  else if (localWorker || !address) openai = createOpenAiClient({ baseURL: options.llm?.baseURL }, env);
  const { config, resumed } = await resolveRunInput(
    {
      ...options.run,
      model: options.run.model ?? (localModel ? localModelName(localModel.path) : env.OPENAI_MODEL),
      concurrency: options.run.concurrency ?? (localModel ? defaultLocalSlots() : undefined),
      timeouts: options.run.timeouts ?? (localModel ? LOCAL_MODEL_TIMEOUTS : undefined),
    },
    dir,
  );
  const input: RunConfig = { ...config, storageTaskQueue: storageTaskQueue(taskQueue, config.runId) };

  const cleanups: (() => Promise<void>)[] = [];
  const storage = new StoreRegistry();
  try {
    // The process that holds the directory's lock owns the run; a second one only attaches to it.
    const owner = await storage.get(dir).then(
      () => true,
      (error: Error) => {
        if (/in use by process/.test(error.message)) return false;
        throw new ConfigError('--out', error.message);
      },
    );
    cleanups.unshift(() => storage.closeAll());
    if (owner && localModel) {
      const slots = Math.min(config.concurrency, defaultLocalSlots());
      const served = await startLocalModel({
        modelPath: localModel.isDefault ? undefined : localModel.path,
        slots,
        contextPerSlot: contextPerSlot(config.numTurnsPerDialog, {
          ...defaultMaxTokens(config.numTurnsPerDialog),
          ...config.maxTokens,
        }),
        logFile: join(dir, '.local-model.log'),
        env,
      });
      cleanups.unshift(() => served.stop());
      openai = createOpenAiClient({ baseURL: served.baseURL, apiKey: 'local' }, env);
      options.onNotice?.(
        `no LLM endpoint configured: serving ${served.displayName} locally with llama.cpp (${slots} slots, ${served.threads} threads); for real data set --base-url or OPENAI_BASE_URL and OPENAI_API_KEY`,
      );
      if (config.concurrency > slots)
        options.onWarning?.(
          `--concurrency ${config.concurrency} is above the local model's ${slots} slots: the other calls wait in its queue`,
        );
    }
    if (owner && openai) {
      const { warning } = await preflightEndpoint(openai, input.model);
      if (warning) options.onWarning?.(warning);
    }

    let server: DevServer | undefined;
    let serverAddress = address;
    if (!serverAddress && !owner) serverAddress = await embeddedServerAddress(dir);
    if (!serverAddress) {
      const stateDir = join(dir, '.temporal');
      await mkdir(stateDir, { recursive: true });
      server = await startDevServer({
        dbFile: join(stateDir, 'temporal.db'),
        stateFile: join(stateDir, 'server.json'),
        logFile: join(stateDir, 'server.log'),
        env,
      });
      cleanups.unshift(() => server!.stop());
      serverAddress = server.address;
    }
    const connection = await connectTemporal(serverAddress, namespace);
    cleanups.unshift(() => connection.close());
    const client = new Client({ connection, namespace });

    if (!owner) {
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
    const replyChecks: ReplyCheckCounts = { checked: 0, rejected: {} };
    if (openai)
      workers.push(
        await createGenerationWorker({
          connection: workerConnection,
          namespace,
          taskQueue,
          openai,
          replyChecks,
        }),
      );
    const running = workers.map((w) => w.run());
    cleanups.unshift(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running);
    });

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
    options.onStarted?.({
      runId: input.runId,
      resumed: resumed || alreadyFinished,
      attached: false,
      address: serverAddress,
      uiUrl: server?.uiUrl,
    });
    const result = await followRun(client, handle, input.runId, options, running);
    return { ...result, alreadyFinished, replyChecks: openai ? replyChecks : undefined };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
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
