/**
 * Workers of the package. A generation worker runs the workflows and the LLM activities (and, unless
 * storage has its own task queue, the storage activities); a storage worker serves only the storage
 * activities for the process that owns the output directory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  bundleWorkflowCode,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import type OpenAI from 'openai';
import {
  createBatchActivities,
  createLlmActivities,
  createStorageActivities,
  RateController,
  RunGates,
  type ReplyCheckCounts,
} from './activities';
import {
  encryptionDataConverter,
  ENCODED_FAILURES_MODULE,
  type EncryptionKeys,
} from './shared/encryption/codec';
import {
  DEFAULT_MAX_CACHED_WORKFLOWS,
  DEFAULT_MAX_CONCURRENT_LLM_CALLS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPORAL_NAMESPACE,
  HEARTBEAT_THROTTLE_MS,
} from './shared/constants';
import { StoreRegistry } from './storage/jsonl-store';
import { deploymentOptions, workflowBuildId } from './deployment';
import { StallDetector, type StallDetectorSettings } from './activities/stall-detector';
import { PackageMetrics } from './activities/metrics';
import type { Context as ActivityContext } from '@temporalio/activity';
import type { Tracing } from './tracing';

let runtimeMetrics: PackageMetrics | undefined;
/**
 * The package's metrics on the SDK runtime's meter: exported wherever the runtime exports its own
 * (`--metrics-port`), and recorded nowhere when it exports none. Read after the runtime is installed.
 */
export function processMetrics(): PackageMetrics {
  runtimeMetrics ??= new PackageMetrics(Runtime.instance().metricMeter);
  return runtimeMetrics;
}

export {
  DEFAULT_MAX_CACHED_WORKFLOWS,
  DEFAULT_MAX_CONCURRENT_LLM_CALLS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  HEARTBEAT_THROTTLE_MS,
} from './shared/constants';

// Defined in src/shared so that commands which start no worker (export, report) need not load this module.
import { ConfigError } from './shared/errors';
export { ConfigError };

// Here for callers of this module; defined apart so that the CLI builds a client without loading the SDK's worker.
export {
  createJudgeClient,
  createOpenAiClient,
  type JudgeEndpointOptions,
  type LlmEndpointOptions,
} from './activities/openai-client';

/** The workflow side of the OpenTelemetry interceptors: in the bundles of workers that trace. */
export const OTEL_WORKFLOW_INTERCEPTORS =
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** The prebuilt bundle's file name (scripts/bundle-workflows.js writes all four). */
export function workflowBundleFile(encrypted: boolean, traced: boolean): string {
  return `workflow-bundle${traced ? '-traced' : ''}${encrypted ? '-encrypted' : ''}.js`;
}

const bundles = new Map<string, Promise<WorkflowBundleOption>>();
/**
 * The workflow bundle: the one `npm run build` wrote next to the compiled code, or else (running from
 * the TypeScript sources) built once per process with webpack, which takes seconds and keeps memory.
 * An encrypting worker's bundle carries the failure converter that encodes failure messages; a
 * tracing worker's, the OpenTelemetry workflow interceptors (apart, so that workers that do not trace
 * keep their workflow code, and its cost, as it was).
 */
export function workflowBundle(encrypted = false, traced = false): Promise<WorkflowBundleOption> {
  const file = workflowBundleFile(encrypted, traced);
  const prebuilt = join(__dirname, file);
  let bundle = bundles.get(file);
  if (!bundle) {
    bundle =
      __filename.endsWith('.js') && existsSync(prebuilt)
        ? Promise.resolve({ codePath: prebuilt })
        : bundleWorkflowCode({
            workflowsPath: require.resolve('./workflows'),
            failureConverterPath: encrypted ? ENCODED_FAILURES_MODULE : undefined,
            workflowInterceptorModules: traced ? [OTEL_WORKFLOW_INTERCEPTORS] : undefined,
            logger: quietBundlerLogger,
          });
    bundles.set(file, bundle);
  }
  return bundle;
}

/**
 * What a tracing worker adds: activity interceptors and the sink that exports workflow spans. Loaded
 * only then: workers that do not trace never load the OpenTelemetry SDK.
 */
async function tracingOptions(tracing: Tracing | undefined) {
  if (!tracing) return {};
  const {
    makeWorkflowExporter,
    OpenTelemetryActivityInboundInterceptor,
    OpenTelemetryActivityOutboundInterceptor,
  } = await import('@temporalio/interceptors-opentelemetry');
  return {
    interceptors: {
      activity: [
        (ctx: ActivityContext) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}
const noop = () => undefined;
const quietBundlerLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: console.error,
  log: noop,
};

export interface GenerationWorkerOptions {
  connection: NativeConnection;
  /** @default 'default' */
  namespace?: string;
  /** @default DEFAULT_TASK_QUEUE */
  taskQueue?: string;
  openai: OpenAI;
  /** The judge's own endpoint (`createJudgeClient`); without it the judge calls `openai`. */
  judge?: OpenAI;
  /** When given, this worker also serves storage activities on its own task queue (confined to its root). */
  storage?: StoreRegistry;
  /**
   * Where batch mode stages its request and reply files (below each run's output directory).
   * @default storage's root; without either, batch runs fail with `Batch.NoOutputRoot`
   */
  outputRoot?: string;
  /** @default DEFAULT_MAX_CONCURRENT_LLM_CALLS */
  maxConcurrentLlmCalls?: number;
  /**
   * Temporal's eager activity dispatch: a workflow task's new activities start on this worker at once
   * when it has a free slot, without passing through the task queue, so the queue's fairness weights
   * and rate limit never see them (README "Fair sharing"). It saves a matching round trip per LLM
   * call: off, efficiency at C = 64, L = 1 s fell from 0.92 to 0.79 on the dev server. @default true
   */
  eagerActivities?: boolean;
  /** @default DEFAULT_MAX_CACHED_WORKFLOWS */
  maxCachedWorkflows?: number;
  /** @default DEFAULT_SHUTDOWN_GRACE_MS */
  shutdownGraceMs?: number;
  /** Threads that run workflow code, each loading the workflow bundle. @default 2 (the SDK's) */
  workflowThreads?: number;
  rate?: RateController;
  /** Payload encryption keys; payloads pass in the clear without them. */
  encryption?: EncryptionKeys;
  /** Filled with the counts of replies checked and rejected by this worker's LLM calls. */
  replyChecks?: ReplyCheckCounts;
  /**
   * How the worker learns each endpoint's normal timings and cuts hung calls (src/activities/stall-detector.ts).
   * @default factor 3 × p99, after 20 calls, over the last 500, never under 2 s; the run's `idleMs` is the ceiling
   */
  stallDetection?: StallDetectorSettings;
  /**
   * Worker Deployment Versioning: announce this worker as a version of this deployment. The build id
   * defaults to a hash of the workflow bundle. Unset: an unversioned worker (the embedded server's case).
   */
  deployment?: { deploymentName: string; buildId?: string };
  /** @default processMetrics() */
  metrics?: PackageMetrics;
  /** Traces of this worker's workflows and activities (src/tracing.ts). @default none */
  tracing?: Tracing;
}

/**
 * Sends every activity through its task queue. By default a workflow task starts the activities it
 * schedules on its own worker when a slot is free (eager dispatch): those skip the queue, so runs'
 * priorities, fair shares and the queue's rate limit do not apply to them.
 */
export const QUEUED_ACTIVITIES = { maxEagerActivityReservationsPerWorkflowTask: 0 } as const;

export async function createGenerationWorker(options: GenerationWorkerOptions): Promise<Worker> {
  const metrics = options.metrics ?? processMetrics();
  const activities = {
    ...createLlmActivities(
      {
        openai: options.openai,
        rate: options.rate ?? new RateController(),
        gates: new RunGates(),
        replyChecks: options.replyChecks,
        stalls: new StallDetector(options.stallDetection),
        metrics,
      },
      options.judge && { openai: options.judge },
    ),
    ...createBatchActivities({ openai: options.openai, root: options.outputRoot ?? options.storage?.root }),
    ...(options.storage ? createStorageActivities(options.storage, metrics) : {}),
  };
  const workflows = await workflowBundle(options.encryption !== undefined, options.tracing !== undefined);
  const { deployment } = options;
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowBundle: workflows,
    dataConverter: encryptionDataConverter(options.encryption),
    ...(deployment && {
      workerDeploymentOptions: deploymentOptions({
        deploymentName: deployment.deploymentName,
        buildId: deployment.buildId ?? (await workflowBuildId(workflows)),
      }),
    }),
    activities,
    ...(await tracingOptions(options.tracing)),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentLlmCalls ?? DEFAULT_MAX_CONCURRENT_LLM_CALLS,
    ...(options.eagerActivities === false && QUEUED_ACTIVITIES),
    maxCachedWorkflows: options.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
    ...(options.workflowThreads !== undefined && { workflowThreadPoolSize: options.workflowThreads }),
    shutdownGraceTime: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
    // Heartbeats carry cancellation back: keep them frequent enough that a cancelled run stops paying soon.
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
  });
}

export interface StorageWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  /** Holds the output root every directory is confined to. */
  storage: StoreRegistry;
  /** Payload encryption keys; payloads pass in the clear without them. */
  encryption?: EncryptionKeys;
  /** @default processMetrics() */
  metrics?: PackageMetrics;
  /** Traces of the storage activities. @default none */
  tracing?: Tracing;
}

export async function createStorageWorker(options: StorageWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    taskQueue: options.taskQueue,
    activities: createStorageActivities(options.storage, options.metrics ?? processMetrics()),
    ...(await tracingOptions(options.tracing)),
    dataConverter: encryptionDataConverter(options.encryption),
    maxConcurrentActivityTaskExecutions: 200,
  });
}

export { NativeConnection, StoreRegistry };
