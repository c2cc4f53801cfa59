/**
 * `npm run bench`: one run on this machine of every benchmark scenario, against the test LLM server
 * (its own process, with a latency model), a real Temporal dev server and a worker process of this
 * package. Prints a table and writes JSON under bench/results/.
 *
 *   npm run bench                      all scenarios at full size
 *   npm run bench -- --quick           smaller sizes, for a smoke run
 *   npm run bench -- --only efficiency,zero-latency --scale 20000
 *   npm run bench -- --db memory       the dev server without its SQLite file
 *   npm run bench -- --only efficiency --timeline --profile-worker /tmp/prof
 *                                      where an efficiency run's time goes: history events, CPU profile
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import OpenAI from 'openai';
import { startDevServer, type DevServer } from '../src/client/dev-server';
import {
  INTENT_IDS,
  planDialogue,
  responsesJsonSchema,
  responsesMessages,
  responsesReplySchema,
  skeletonJsonSchema,
  skeletonMessages,
  skeletonReplySchema,
  extractJson,
  defaultMaxTokens,
  type IntentId,
} from '../src/method';
import { WORKFLOW_TYPES } from '../src/shared/constants';
import type { RunInput, RunSummary, Skeleton } from '../src/run/schemas';
import type { LlmServerOptions, LlmServerStats } from '../test/llm-server/server';
import { callBreakdown, timeline } from './breakdown';
import { temporalFloor, temporalShapedFloor } from './round-trip';

const LLM_ACTIVITIES = ['generateSkeleton', 'generateResponses'] as const;
/** The worker's Node flags in the Dockerfile's NODE_OPTIONS (see the README's notes on memory). */
const DEPLOYED_WORKER_NODE_OPTIONS = ['--max-old-space-size=192', '--max-semi-space-size=8'];
/** The Dockerfile's environment for glibc's allocator (see there). */
const DEPLOYED_WORKER_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

const ROOT = resolve(__dirname, '..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    scale: { type: 'string' },
    db: { type: 'string', default: 'file' },
    'profile-worker': { type: 'string' },
    // Extra node flags for the worker process (e.g. --trace-gc); its stdout goes to bench/results/worker.out.
    'worker-node-option': { type: 'string', multiple: true },
    // Extra arguments of the `worker` command (e.g. --max-cached-workflows=20).
    'worker-arg': { type: 'string', multiple: true },
    // KEY=VALUE environment of the worker process (e.g. MALLOC_ARENA_MAX=2).
    'worker-env': { type: 'string', multiple: true },
    // --profile-cli DIR: V8 CPU profiles of the `generate` processes the scenarios spawn.
    'profile-cli': { type: 'string' },
    // Rounds of the streams scenario (generate, pool and reference model interleaved); medians reported.
    rounds: { type: 'string' },
    // Which of the streams scenario's configurations, as TOKENS_PER_EVENT:C (e.g. `1:64,1:256`). @default all three
    'streams-configs': { type: 'string' },
    // Print the start and end of the efficiency run's histories, event by event.
    timeline: { type: 'boolean', default: false },
    // Also run the scale scenario with Node's default heap sizing (the comparison in BENCHMARKS.md).
    'compare-node-defaults': { type: 'boolean', default: false },
    // KEY=VALUE, repeatable: dynamic config of the benchmark's dev server, for experiments.
    'dynamic-config': { type: 'string', multiple: true },
  },
});
/** `file`: the dev server persists to SQLite as the embedded mode does; `memory`: no disk in the way. */
const DB = args.db;
const QUICK = args.quick;
const ONLY = args.only?.split(',');
const SCALE = Number(args.scale ?? (QUICK ? 2_000 : 20_000));

// ---------------------------------------------------------------- processes

interface LlmProcess {
  url: string;
  pid: number;
  configure(options: Partial<LlmServerOptions>): Promise<void>;
  stats(): Promise<LlmServerStats>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function startLlmProcess(options: Partial<LlmServerOptions>): Promise<LlmProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/llm-server/cli.ts', '--config', JSON.stringify(options)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const { url, port } = JSON.parse(line.toString()) as { url: string; port: number };
  const admin = async (path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}/admin/${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.json();
  };
  return {
    url,
    pid: child.pid!,
    configure: async (o) => void (await admin('config', o)),
    stats: async () => (await admin('stats')) as LlmServerStats,
    reset: async () => void (await admin('reset', {})),
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface WorkerProcess {
  child: ChildProcess;
  /** Peak resident set size so far (VmHWM), in MB. */
  peakRssMb(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Node flags and allocator settings of the worker process: those the Dockerfile sets (NODE_OPTIONS,
 * MALLOC_ARENA_MAX), unless the scenario asks for the defaults, plus any `--worker-node-option`.
 */
async function startWorker(
  address: string,
  taskQueue: string,
  baseURL: string,
  nodeDefaults = false,
): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      ...(nodeDefaults ? [] : DEPLOYED_WORKER_NODE_OPTIONS),
      ...(args['worker-node-option'] ?? []),
      // --profile-worker DIR: a V8 CPU profile of the worker process, written when it exits.
      ...(args['profile-worker'] ? ['--cpu-prof', `--cpu-prof-dir=${args['profile-worker']}`] : []),
      // The package as shipped: compiled, with the workflow bundle that `npm run build` wrote.
      'bin/consistent-chat.js',
      'worker',
      '--temporal-address',
      address,
      '--task-queue',
      taskQueue,
      '--base-url',
      baseURL,
      '--out-root',
      tmpdir(),
      ...(args['worker-arg'] ?? []),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', args['worker-node-option'] ? 'pipe' : 'ignore', 'pipe'],
      env: {
        ...process.env,
        ...(nodeDefaults ? {} : DEPLOYED_WORKER_ENV),
        ...Object.fromEntries((args['worker-env'] ?? []).map((kv) => kv.split('=', 2) as [string, string])),
        OPENAI_API_KEY: 'bench-key',
        LOG_LEVEL: 'ERROR',
      },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.pipe(createWriteStream(join(ROOT, 'bench', 'results', 'worker.out')));
  // Ready once it says so (after bundling the workflows).
  const deadline = Date.now() + 60_000;
  while (!stderr.includes('worker on') && Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`worker exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    async peakRssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb / 1024;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

// ---------------------------------------------------------------- workloads

/**
 * `consistent-chat generate` as a user runs it: the built CLI, its embedded server (no Temporal
 * address), the test endpoint, 6 turns. Resolves with the exit code and stderr when it ends.
 */
function spawnGenerate(
  dir: string,
  baseURL: string,
  extra: string[],
  turns = 6,
): { child: ChildProcess; exited: Promise<{ code: number; stderr: string }> } {
  const child = spawn(
    process.execPath,
    [
      ...(args['profile-cli'] ? ['--cpu-prof', `--cpu-prof-dir=${args['profile-cli']}`] : []),
      'bin/consistent-chat.js',
      'generate',
      '--out',
      dir,
      '--base-url',
      baseURL,
      '--model',
      'test-model',
      '--turns',
      String(turns),
      ...extra,
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, OPENAI_API_KEY: 'bench-key', TEMPORAL_ADDRESS: '', CI: '1' },
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number, stderr }));
  return { child, exited };
}

let counter = 0;
const uid = (p: string) => `${p}-${Date.now().toString(36)}-${++counter}`;

interface Measured {
  runId?: string;
  seconds: number;
  calls: number;
  dialogues: number;
  summary?: RunSummary;
  rateLimited?: number;
  server?: ServerView;
  /** From the start of the run to the first LLM request, and from the last reply to the run's result. */
  leadMs?: number;
  trailMs?: number;
  lastAt?: number;
  startedAt?: number;
  /** Mean LLM calls in flight in each second of the run, at the LLM server. */
  inFlightBySecond?: number[];
  /** CPU milliseconds per completed LLM call, by process. */
  cpuMsPerCall?: Record<string, number>;
}

/** User + system CPU time of a process so far, in ms (Linux /proc; clock ticks are 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * One `generate` as a user runs it: CPU of the CLI process and of its embedded server, sampled as they
 * run (the server exits with the CLI), and of the LLM server.
 */
async function measureGenerate(llm: LlmProcess, dialogsPerIntent: number, concurrency: number, turns = 6) {
  const dir = join(tmpdir(), uid('cc-cli'));
  try {
    await llm.reset();
    const llmCpuBefore = await cpuMs(llm.pid);
    const spawnedAt = Date.now();
    const { child, exited } = spawnGenerate(
      dir,
      llm.url,
      ['--dialogs-per-intent', String(dialogsPerIntent), '--concurrency', String(concurrency)],
      turns,
    );
    // The embedded server is a child of the CLI: each descendant's CPU, read while it runs.
    const childCpu = new Map<number, number>();
    let cliCpu = 0;
    const sampler = setInterval(() => {
      void (async () => {
        for (const pid of await descendants(child.pid!))
          childCpu.set(pid, Math.max(childCpu.get(pid) ?? 0, await cpuMs(pid)));
        cliCpu = Math.max(cliCpu, await cpuMs(child.pid!));
      })();
    }, 250);
    const { code, stderr } = await exited;
    clearInterval(sampler);
    if (code !== 0) throw new Error(`generate exited ${code}: ${stderr}`);
    return {
      cliCpu,
      serverCpu: [...childCpu.values()].reduce((a, b) => a + b, 0),
      llmCpu: (await cpuMs(llm.pid)) - llmCpuBefore,
      stats: await llm.stats(),
      seconds: (Date.now() - spawnedAt) / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every process below `pid` (Linux /proc). */
async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  try {
    for (const task of await readdir(`/proc/${pid}/task`)) {
      const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8');
      for (const child of text.split(' ').filter(Boolean).map(Number))
        found.push(child, ...(await descendants(child)));
    }
  } catch {
    // gone meanwhile
  }
  return found;
}

async function cpuSnapshot(env: Env): Promise<Record<string, number>> {
  return {
    'temporal server': await cpuMs(env.server.pid),
    worker: await cpuMs(env.worker.child.pid!),
    'llm server': await cpuMs(env.llm.pid),
    'bench (client)': await cpuMs(process.pid),
  };
}

function cpuPerCall(before: Record<string, number>, after: Record<string, number>, calls: number) {
  return Object.fromEntries(
    Object.keys(after).map((k) => [k, round((after[k]! - before[k]!) / Math.max(1, calls), 2)]),
  );
}

interface ServerView {
  /** Mean chat requests in flight at the LLM server between its first request and its last reply. */
  meanInFlight: number;
  maxInFlight: number;
  /** Mean time the server held a chat request: the latency the client actually saw. */
  meanCallMs: number;
}

function serverView(stats: LlmServerStats): ServerView {
  const window = (stats.lastAt ?? 0) - (stats.firstAt ?? 0);
  return {
    meanInFlight: window > 0 ? round(stats.busyMs / window, 1) : 0,
    maxInFlight: stats.maxInFlight,
    meanCallMs: stats.requests > 0 ? round(stats.busyMs / stats.requests, 1) : 0,
  };
}

async function runTemporal(env: Env, input: Omit<RunInput, 'runId' | 'outDir' | 'model'>): Promise<Measured> {
  const runId = uid('bench');
  const outDir = join(env.scratch, runId);
  await env.llm.reset();
  const cpuBefore = await cpuSnapshot(env);
  const startedAt = Date.now();
  const started = performance.now();
  const summary = (await env.client.workflow.execute(WORKFLOW_TYPES.run, {
    workflowId: runId,
    taskQueue: env.taskQueue,
    args: [{ ...input, runId, outDir, model: 'test-model' }],
  })) as RunSummary;
  const seconds = (performance.now() - started) / 1000;
  const endedAt = Date.now();
  const stats = await env.llm.stats();
  const cpuMsPerCall = cpuPerCall(cpuBefore, await cpuSnapshot(env), stats.completed);
  if (summary.failed > 0) throw new Error(`${summary.failed} dialogues failed in a benchmark run`);
  return {
    runId,
    seconds,
    calls: stats.completed,
    dialogues: summary.written,
    summary,
    rateLimited: stats.rateLimited,
    server: serverView(stats),
    cpuMsPerCall,
    inFlightBySecond: stats.busyBySecond.map((ms) => Math.round(ms / 1000)),
    lastAt: stats.lastAt,
    startedAt,
    leadMs: (stats.firstAt ?? startedAt) - startedAt,
    trailMs: endedAt - (stats.lastAt ?? endedAt),
  };
}

type Plan = ReturnType<typeof planDialogue>;

/**
 * The two calls of a dialogue as a plain client makes them (the openai client's own stream reader, no
 * Temporal), with `attempts` tries each (after a 429's Retry-After, else at once).
 */
function dialogueCalls(baseURL: string, turns: number, attempts = 1) {
  const openai = new OpenAI({ apiKey: 'bench-key', baseURL, maxRetries: 0 });
  const maxTokens = defaultMaxTokens(turns);
  const callOnce = async <T>(
    messages: OpenAI.ChatCompletionMessageParam[],
    name: string,
    schema: Record<string, unknown>,
    tokens: number,
    parse: (v: unknown) => T,
  ) => {
    const stream = await openai.chat.completions.create({
      model: 'test-model',
      messages,
      temperature: 0.9,
      max_tokens: tokens,
      stream: true,
      stream_options: { include_usage: true },
      response_format: { type: 'json_schema', json_schema: { name, strict: true, schema } },
    });
    let content = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    if (finish !== 'stop') throw new Error(`finish_reason ${finish}`);
    return parse(extractJson(content));
  };
  const call = async <T>(...a: Parameters<typeof callOnce<T>>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await callOnce(...a);
      } catch (error) {
        if (attempt >= attempts) throw error;
        if (error instanceof OpenAI.RateLimitError) {
          const seconds = Number(error.headers?.get('retry-after') ?? 1);
          await new Promise((r) => setTimeout(r, seconds * 1000));
        }
      }
    }
  };
  return {
    skeleton: (plan: Plan): Promise<Skeleton> =>
      call(
        skeletonMessages(plan, turns),
        'dialogue_skeleton',
        skeletonJsonSchema(turns),
        maxTokens.skeleton,
        (v) => skeletonReplySchema(turns).parse(v),
      ),
    responses: (plan: Plan, skeleton: Skeleton) =>
      call(
        responsesMessages(plan, skeleton),
        'dialogue_responses',
        responsesJsonSchema(turns),
        maxTokens.responses,
        (v) => responsesReplySchema(turns).parse(v),
      ),
  };
}

const planJobs = (intents: readonly IntentId[], perIntent: number) =>
  intents.flatMap((intent) =>
    Array.from({ length: perIntent }, (_, index) =>
      planDialogue({ runId: 'baseline', seed: 'b', intent, index }),
    ),
  );

/** Runs `work` on every item, `concurrency` at a time. */
async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** The same dialogues with no Temporal: an in-process pool calling the same server with the same prompts. */
async function runBaseline(
  env: Env,
  intents: readonly IntentId[],
  perIntent: number,
  turns: number,
  concurrency: number,
  /** Retry a failed call (after a 429's Retry-After, else at once) up to this many attempts. */
  attempts = 1,
): Promise<Measured> {
  const calls = dialogueCalls(env.llm.url, turns, attempts);
  const jobs = planJobs(intents, perIntent);
  await env.llm.reset();
  const cpuBefore = await cpuSnapshot(env);
  const started = performance.now();
  await pool(jobs, concurrency, async (plan) => calls.responses(plan, await calls.skeleton(plan)));
  const seconds = (performance.now() - started) / 1000;
  const stats = await env.llm.stats();
  return {
    seconds,
    calls: stats.completed,
    dialogues: jobs.length,
    server: serverView(stats),
    cpuMsPerCall: cpuPerCall(cpuBefore, await cpuSnapshot(env), stats.completed),
  };
}

/**
 * The dialogues through an in-process pool of `concurrency` (no Temporal). `phased` models the reference
 * operator's design: a thread pool that runs every skeleton, then every response, after `importMs` of
 * imports. CPU of this process (the pool's client) and of the LLM server.
 */
async function runStreamPool(
  llm: LlmProcess,
  jobs: readonly Plan[],
  concurrency: number,
  reference: { phased: boolean; importMs: number },
) {
  // A connection the server closed as it was reused is tried again, as a real client would.
  const calls = dialogueCalls(llm.url, 6, 3);
  await llm.reset();
  const before = { bench: await cpuMs(process.pid), llm: await cpuMs(llm.pid) };
  const started = performance.now();
  if (reference.importMs > 0) await new Promise((r) => setTimeout(r, reference.importMs));
  if (reference.phased) {
    const skeletons = new Map<Plan, Skeleton>();
    await pool(jobs, concurrency, async (plan) => skeletons.set(plan, await calls.skeleton(plan)));
    await pool(jobs, concurrency, (plan) => calls.responses(plan, skeletons.get(plan)!));
  } else {
    await pool(jobs, concurrency, async (plan) => calls.responses(plan, await calls.skeleton(plan)));
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    seconds,
    stats: await llm.stats(),
    benchCpu: (await cpuMs(process.pid)) - before.bench,
    llmCpu: (await cpuMs(llm.pid)) - before.llm,
  };
}

/** One round of the streams scenario: `generate`, then the pool, then the reference model. */
async function streamsRound(
  llm: LlmProcess,
  jobs: readonly Plan[],
  perIntent: number,
  concurrency: number,
): Promise<Record<string, number>> {
  const gen = await measureGenerate(llm, perIntent, concurrency);
  const poolRun = await runStreamPool(llm, jobs, concurrency, { phased: false, importMs: 0 });
  const ref = await runStreamPool(llm, jobs, concurrency, { phased: true, importMs: 8_000 });
  const calls = gen.stats.completed;
  const busy = (stats: LlmServerStats) => serverView(stats).meanInFlight / concurrency;
  return {
    calls,
    'generate s': gen.seconds,
    'pool s': poolRun.seconds,
    'reference s': ref.seconds,
    'generate ÷ reference': gen.seconds / ref.seconds,
    'efficiency (generate)': busy(gen.stats),
    'efficiency (pool)': busy(poolRun.stats),
    'LLM window ÷ pool s': (gen.stats.lastAt! - gen.stats.firstAt!) / 1000 / poolRun.seconds,
    'completion tokens/call': gen.stats.completionTokens / calls,
    'prompt tokens/call': gen.stats.promptTokens / calls,
    'CPU ms/call: CLI (worker)': gen.cliCpu / calls,
    'CPU ms/call: Temporal server': gen.serverCpu / calls,
    'CPU ms/call: package (CLI + server)': (gen.cliCpu + gen.serverCpu) / calls,
    'CPU ms/call: LLM server': gen.llmCpu / calls,
    'CPU ms/call: pool client': poolRun.benchCpu / poolRun.stats.completed,
    'CPU ms/call: reference client': ref.benchCpu / ref.stats.completed,
    'load average (1 min)': Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]),
  };
}

async function largestHistory(client: Client): Promise<{ events: number; bytes: number; workflows: number }> {
  let events = 0;
  let bytes = 0;
  let workflows = 0;
  for await (const execution of client.workflow.list()) {
    const d = await client.workflow.getHandle(execution.workflowId, execution.runId).describe();
    workflows++;
    events = Math.max(events, d.historyLength);
    bytes = Math.max(bytes, d.historySize ?? 0);
  }
  return { events, bytes, workflows };
}

// ---------------------------------------------------------------- scenarios

interface Env {
  llm: LlmProcess;
  server: DevServer;
  client: Client;
  taskQueue: string;
  worker: WorkerProcess;
  scratch: string;
}

type Row = Record<string, string | number>;
const results: Record<string, unknown> = {};
const table: Row[] = [];
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function withEnv<T>(
  llmOptions: Partial<LlmServerOptions>,
  fn: (env: Env) => Promise<T>,
  nodeDefaults = false,
): Promise<T> {
  const scratch = join(tmpdir(), uid('cc-bench'));
  await mkdir(scratch, { recursive: true });
  const server = await startDevServer({
    dbFile: DB === 'memory' ? undefined : join(scratch, 'temporal.db'),
    stateFile: join(scratch, 'server.json'),
    logFile: join(scratch, 'server.log'),
    dynamicConfig: Object.fromEntries(
      (args['dynamic-config'] ?? []).map((kv) => {
        const [key, value] = kv.split('=', 2) as [string, string];
        return [key, JSON.parse(value) as string | number | boolean];
      }),
    ),
  });
  const llm = await startLlmProcess(llmOptions);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const taskQueue = uid('bench-tq');
  const worker = await startWorker(server.address, taskQueue, llm.url, nodeDefaults);
  const env = { llm, server, client, taskQueue, worker, scratch };
  try {
    // A worker on a cluster is long-lived: one small run first, so that the measured runs see neither
    // the worker's first workflow tasks nor its deployment version becoming current (the `startup`
    // scenario measures a cold start).
    await runTemporal(env, { numDialogsPerIntent: 1, numTurnsPerDialog: 2, concurrency: 9 });
    return await fn(env);
  } finally {
    await worker.stop();
    await connection.close();
    await llm.stop();
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

const scenarios: Record<string, () => Promise<void>> = {
  /**
   * From the command to the first LLM request, and from the last reply to the process's exit: the CLI
   * with its embedded Temporal server and worker, as a user runs it, for a 9-dialogue run.
   */
  async startup() {
    const llm = await startLlmProcess({ latency: { meanMs: 1000, jitter: 0.25 } });
    const runs: Record<string, number>[] = [];
    try {
      for (let i = 0; i < (QUICK ? 1 : 5); i++) {
        const dir = join(tmpdir(), uid('cc-startup'));
        await llm.reset();
        const spawnedAt = Date.now();
        const { exited } = spawnGenerate(dir, llm.url, ['--dialogs-per-intent', '1']);
        const { code, stderr } = await exited;
        const exitedAt = Date.now();
        if (code !== 0) throw new Error(`generate exited ${code}: ${stderr}`);
        const stats = await llm.stats();
        const log = await readFile(join(dir, 'consistent-chat.log'), 'utf8');
        const phases = Object.fromEntries(
          [...log.matchAll(/start-up: (.+?) \{ ms: (\d+) \}/g)].map((m) => [m[1]!, Number(m[2])]),
        );
        runs.push({
          'first LLM request ms': stats.firstAt! - spawnedAt,
          'exit after last reply ms': exitedAt - stats.lastAt!,
          'total s': (exitedAt - spawnedAt) / 1000,
          ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`${k} ms`, v])),
        });
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      await llm.stop();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const row: Row = { scenario: `start-up (9 dialogues, embedded server, median of ${runs.length})` };
    for (const key of Object.keys(runs[0]!)) row[key] = round(median(runs.map((r) => r[key] ?? NaN)), 2);
    table.push(row);
    results.startup = { ...row, runs };
  },

  /**
   * The product as a user runs it: `generate` with its embedded server and in-process worker at C = 64,
   * L = 1 s, progress view included. CPU per LLM call of the CLI process and its server together.
   */
  async 'cli-efficiency'() {
    const concurrency = 64;
    const perIntent = QUICK ? 16 : 200;
    const llm = await startLlmProcess({ latency: { meanMs: 1000, jitter: 0.25 } });
    const measure = (dialogsPerIntent: number) => measureGenerate(llm, dialogsPerIntent, concurrency);
    try {
      // A 2-dialogue-per-intent run first: what start-up and exit cost, apart from the calls.
      const small = await measure(2);
      const big = await measure(perIntent);
      const { stats } = big;
      const window = (stats.lastAt! - stats.firstAt!) / 1000;
      const all = big.cliCpu + big.serverCpu;
      const row = {
        scenario: `generate, embedded server (C=${concurrency}, L=1s, ${perIntent * INTENT_IDS.length} dialogues)`,
        'LLM calls/s': round(stats.completed / window),
        efficiency: round(stats.completed / window / concurrency, 3),
        'command to exit s': round(big.seconds, 1),
        'CPU ms/call: CLI (worker)': round(big.cliCpu / stats.completed, 2),
        'CPU ms/call: server': round(big.serverCpu / stats.completed, 2),
        'CPU ms/call: all': round(all / stats.completed, 2),
        'CPU s: start-up and exit (small run)': round((small.cliCpu + small.serverCpu) / 1000, 2),
        'CPU ms/call: all, less the small run': round(
          (all - small.cliCpu - small.serverCpu) / (stats.completed - small.stats.completed),
          2,
        ),
      };
      table.push(row);
      results.cliEfficiency = {
        ...row,
        server: serverView(stats),
        inFlightBySecond: stats.busyBySecond.map((ms) => Math.round(ms / 1000)),
      };
    } finally {
      await llm.stop();
    }
  },

  /**
   * Random faults unrelated to the request rate (5% each of 429, 5xx, malformed JSON, truncated JSON)
   * against the same run without them, at C = 64 and L = 1 s; the pool retries the same way.
   */
  async faults() {
    const concurrency = 64;
    const perIntent = QUICK ? 30 : 100;
    const mix = { rateLimit: 0.05, serverError: 0.05, malformedJson: 0.05, truncated: 0.05 };
    await withEnv({ latency: { meanMs: 1000, jitter: 0.25 } }, async (env) => {
      const input = { numDialogsPerIntent: perIntent, numTurnsPerDialog: 6, concurrency };
      const clean = await runTemporal(env, input);
      const baselineClean = await runBaseline(env, INTENT_IDS, perIntent, 6, concurrency);
      await env.llm.configure({ faults: mix });
      const faulty = await runTemporal(env, input); // throws if a dialogue failed
      const faultStats = await env.llm.stats();
      // Ten attempts: with six, one call in 16,000 fails all of them at this mix (1 in 5), and that
      // ended the whole bench run (4 Dec 2026).
      const baselineFaulty = await runBaseline(env, INTENT_IDS, perIntent, 6, concurrency, 10);
      await env.llm.configure({ faults: {} });
      // Mean calls in flight by second: where the faulty run fell short.
      process.stderr.write(
        `  in flight by second, clean: ${clean.inFlightBySecond?.join(' ')}\n  with faults: ${faulty.inFlightBySecond?.join(' ')}\n`,
      );
      const row = {
        scenario: `random faults (${perIntent * INTENT_IDS.length} dialogues, C=64, L=1s)`,
        'clean s': round(clean.seconds, 1),
        'faults s': round(faulty.seconds, 1),
        'faults ÷ clean': round(faulty.seconds / clean.seconds, 3),
        delivered: `${faulty.dialogues}/${perIntent * INTENT_IDS.length}`,
        'requests per dialogue': round(faultStats.requests / faulty.dialogues, 2),
        'baseline clean s': round(baselineClean.seconds, 1),
        'baseline faults s': round(baselineFaulty.seconds, 1),
        'faults vs baseline': round(baselineFaulty.seconds / faulty.seconds, 3),
      };
      table.push(row);
      results.faults = { ...row, clean, faulty, faultStats, baselineClean, baselineFaulty };
    });
  },
  /**
   * Hung connections (issue 20): `generate` as users run it (embedded server), 450 dialogues of 4 turns
   * at C = 32, L = 1 s, clean and then with the faults scenario's mix plus 2% of connections that are
   * accepted and never answered. Default timeouts: a hang is cut by the idle timeout or the stall detector.
   */
  async hangs() {
    const concurrency = 32;
    const perIntent = QUICK ? 10 : 50;
    const mix = { rateLimit: 0.05, serverError: 0.05, malformedJson: 0.05, truncated: 0.05, hang: 0.02 };
    const llm = await startLlmProcess({ latency: { meanMs: 1000, jitter: 0.25 } });
    const measure = async () => {
      const dir = join(tmpdir(), uid('cc-hangs'));
      try {
        await llm.reset();
        const spawnedAt = Date.now();
        const { exited } = spawnGenerate(
          dir,
          llm.url,
          ['--dialogs-per-intent', String(perIntent), '--concurrency', String(concurrency)],
          4,
        );
        const { code, stderr } = await exited;
        const seconds = (Date.now() - spawnedAt) / 1000;
        if (code !== 0) throw new Error(`generate exited ${code}: ${stderr}`);
        const lines = (await readFile(join(dir, 'dialogs.jsonl'), 'utf8')).split('\n').filter(Boolean);
        return { seconds, delivered: lines.length, stats: await llm.stats() };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    try {
      const clean = await measure();
      await llm.configure({ faults: mix });
      const faulty = await measure();
      await llm.configure({ faults: {} });
      const row = {
        scenario: `hung connections (generate, ${perIntent * INTENT_IDS.length} dialogues of 4 turns, C=${concurrency}, L=1s)`,
        'clean s': round(clean.seconds, 1),
        'faults + 2% hangs s': round(faulty.seconds, 1),
        'faults ÷ clean': round(faulty.seconds / clean.seconds, 3),
        delivered: `${faulty.delivered}/${perIntent * INTENT_IDS.length}`,
        'hangs injected': faulty.stats.faults.hang ?? 0,
        'requests per dialogue': round(faulty.stats.requests / faulty.delivered, 2),
        // Held from arrival to close at the server: what one hung connection cost its slot.
        'mean hang held s': round(
          (faulty.stats.busyByFault?.hang ?? NaN) / 1000 / (faulty.stats.faults.hang ?? NaN),
          1,
        ),
      };
      table.push(row);
      results.hangs = { ...row, clean: clean.stats, faulty: faulty.stats };
    } finally {
      await llm.stop();
    }
  },
  /**
   * Issue 24: replies as real servers stream them. About 440 completion tokens a call at 400 tokens/s,
   * one token per SSE event (and eight, to compare), after a log-normal latency of mean 1 s; 6 turns;
   * C = 64 and 256. `generate` as users run it (start-up included), the in-process pool, and a model of
   * the reference operator's thread pool (8 s of imports, then every skeleton, then every response),
   * interleaved in each of `--rounds` rounds; medians.
   */
  async streams() {
    const rounds = Number(args.rounds ?? 1);
    const chosen = args['streams-configs']?.split(',');
    const configs = [
      { tokensPerChunk: 1, concurrency: 64, perIntent: QUICK ? 10 : 40 },
      { tokensPerChunk: 1, concurrency: 256, perIntent: QUICK ? 40 : 160 },
      { tokensPerChunk: 8, concurrency: 64, perIntent: QUICK ? 10 : 40 },
    ].filter((c) => !chosen || chosen.includes(`${c.tokensPerChunk}:${c.concurrency}`));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
    const all: unknown[] = [];
    for (const { tokensPerChunk, concurrency, perIntent } of configs) {
      const llm = await startLlmProcess({
        latency: { meanMs: 1000, jitter: 0.25, tokensPerSecond: 400 },
        tokensPerChunk,
        // ~780 completion tokens a responses reply, ~115 a skeleton: ~445 a call, as in real runs.
        responseWords: { min: 65, max: 115 },
      });
      const jobs = planJobs(INTENT_IDS, perIntent);
      const runs: Record<string, number>[] = [];
      try {
        // A 1-dialogue-per-intent run first: what start-up and exit cost, apart from the calls.
        const small = await measureGenerate(llm, 1, concurrency);
        const startupCpu = small.cliCpu + small.serverCpu;
        for (let r = 0; r < rounds; r++) {
          const run = await streamsRound(llm, jobs, perIntent, concurrency);
          const calls = run['calls']!;
          run['CPU s: start-up and exit (9 dialogues)'] = startupCpu / 1000;
          run['CPU ms/call: package, less start-up'] =
            (run['CPU ms/call: package (CLI + server)']! * calls - startupCpu) /
            (calls - small.stats.completed);
          runs.push(run);
        }
      } finally {
        await llm.stop();
      }
      const row: Row = {
        scenario: `streams: ${tokensPerChunk} token(s)/event, C=${concurrency}, ${jobs.length} dialogues (median of ${runs.length})`,
      };
      for (const key of Object.keys(runs[0]!)) row[key] = round(median(runs.map((x) => x[key]!)), 3);
      process.stderr.write(`  ${JSON.stringify(row)}\n`);
      table.push(row);
      all.push({ ...row, runs });
    }
    results.streams = all;
  },
  /** Temporal's own cost per activity on this machine: the floor under the orchestration overhead. */
  async 'round-trip'() {
    const persisted = await temporalFloor({ persisted: true, burst: QUICK ? 1000 : 4000 });
    const memory = await temporalFloor({ persisted: false, burst: QUICK ? 1000 : 4000 });
    const row = {
      scenario: 'Temporal alone: no-op activities',
      'round trip ms (SQLite)': round(persisted.roundTripMs, 1),
      'round trip ms (memory)': round(memory.roundTripMs, 1),
      'activities/s (SQLite)': round(persisted.noopActivitiesPerSecond, 1),
      'activities/s (memory)': round(memory.noopActivitiesPerSecond, 1),
    };
    table.push(row);
    results.roundTrip = row;
  },

  /**
   * Temporal alone at the streams scenario's shape (9 intents, 2 calls per dialogue, C = 63 and 252),
   * each call a timer of the same length with inputs and replies of the same sizes: what Temporal itself
   * costs per call at that shape, with one activity per call and with one per dialogue.
   */
  async 'temporal-shape'() {
    const rows: Row[] = [];
    for (const [dialogues, lanes, oneActivity] of [
      [40, 7, false],
      [160, 28, false],
      [40, 7, true],
      [160, 28, true],
    ] as const) {
      const floor = await temporalShapedFloor({ workflows: 9, dialogues, lanes, oneActivity, cpuMs });
      const row = {
        scenario: `Temporal alone at the streams' shape: ${9 * lanes} in flight, ${floor.calls} calls${oneActivity ? ', one activity per dialogue' : ''}`,
        seconds: round(floor.seconds, 1),
        'CPU ms/call: worker and client': round(floor.workerCpuMsPerCall, 2),
        'CPU ms/call: Temporal server': round(floor.serverCpuMsPerCall, 2),
        'CPU ms/call: both': round(floor.workerCpuMsPerCall + floor.serverCpuMsPerCall, 2),
      };
      table.push(row);
      rows.push(row);
    }
    results.temporalShape = rows;
  },

  /** Efficiency at concurrency 64 with L = 1 s, and the same workload without Temporal. */
  async efficiency() {
    const concurrency = 64;
    const latencyS = 1;
    const perIntent = QUICK ? 16 : 200; // 3,600 calls: about a minute at the ideal rate
    await withEnv({ latency: { meanMs: latencyS * 1000, jitter: 0.25 } }, async (env) => {
      const temporal = await runTemporal(env, {
        numDialogsPerIntent: perIntent,
        numTurnsPerDialog: 6,
        concurrency,
      });
      const baseline = await runBaseline(env, INTENT_IDS, perIntent, 6, concurrency);
      const achieved = temporal.calls / temporal.seconds;
      const baselineRate = baseline.calls / baseline.seconds;
      const row = {
        scenario: 'efficiency (C=64, L=1s)',
        'dialogues/min': round((temporal.dialogues / temporal.seconds) * 60, 1),
        'LLM calls/s': round(achieved),
        efficiency: round(achieved / (concurrency / latencyS), 3),
        'baseline calls/s': round(baselineRate),
        'vs baseline': round(achieved / baselineRate, 3),
      };
      table.push(row);
      const breakdown = await callBreakdown(env.client, `${temporal.runId}.${INTENT_IDS[0]}`, LLM_ACTIVITIES);
      process.stderr.write(`  ${JSON.stringify({ temporal: temporal.server, baseline: baseline.server })}\n`);
      process.stderr.write(
        `  cpu ms/call ${JSON.stringify({ temporal: temporal.cpuMsPerCall, baseline: baseline.cpuMsPerCall })}\n`,
      );
      process.stderr.write(
        `  ${JSON.stringify(breakdown)} lead ${temporal.leadMs} trail ${temporal.trailMs}\n`,
      );
      if (args.timeline) {
        // The run's first events (from its start) and every workflow's last ones (from the last LLM reply).
        const ids = [temporal.runId!, ...INTENT_IDS.map((i) => `${temporal.runId}.${i}`)];
        for (const id of ids.slice(0, 2)) {
          const events = (await timeline(env.client, id, temporal.startedAt!)).slice(0, 14);
          process.stderr.write(`start of ${id}: ${JSON.stringify(events)}\n`);
        }
        for (const id of ids) {
          const events = (await timeline(env.client, id, temporal.lastAt!)).slice(-12);
          process.stderr.write(`end of ${id}: ${JSON.stringify(events)}\n`);
        }
      }
      results.efficiency = {
        ...row,
        temporal,
        baseline,
        breakdown,
        peakRssMb: await env.worker.peakRssMb(),
      };
    });
  },

  /** Orchestration overhead per LLM call, and the most LLM activities/s, with L = 0. */
  async 'zero-latency'() {
    await withEnv({ latency: { meanMs: 0 } }, async (env) => {
      const sequential = QUICK ? 20 : 60;
      const temporalSeq = await runTemporal(env, {
        numDialogsPerIntent: sequential,
        numTurnsPerDialog: 6,
        concurrency: 1,
        intents: ['transaction'],
      });
      const baselineSeq = await runBaseline(env, ['transaction'], sequential, 6, 1);
      const overheadMs = ((temporalSeq.seconds - baselineSeq.seconds) / temporalSeq.calls) * 1000;
      const perIntent = QUICK ? 60 : 750; // 13,500 calls: long enough to be sustained, not a burst
      const burst = await runTemporal(env, {
        numDialogsPerIntent: perIntent,
        numTurnsPerDialog: 6,
        concurrency: 256,
      });
      const baselineBurst = await runBaseline(env, INTENT_IDS, perIntent, 6, 256);
      const row = {
        scenario: 'zero latency',
        'overhead/call ms': round(overheadMs, 1),
        'LLM activities/s': round(burst.calls / burst.seconds, 1),
        'all activities/s': round((burst.calls + burst.dialogues) / burst.seconds, 1),
        'baseline calls/s': round(baselineBurst.calls / baselineBurst.seconds, 1),
      };
      table.push(row);
      results.zeroLatency = { ...row, temporalSeq, baselineSeq, burst, baselineBurst };
    });
  },

  /** Memory and history bounds at SCALE dialogues. */
  async scale() {
    // As deployed (the Dockerfile's Node flags), then with Node's default heap sizing for comparison.
    for (const nodeDefaults of [false, true]) {
      await withEnv(
        { latency: { meanMs: 20, jitter: 0.5 } },
        async (env) => {
          const perIntent = Math.ceil(SCALE / INTENT_IDS.length);
          const run = await runTemporal(env, {
            numDialogsPerIntent: perIntent,
            numTurnsPerDialog: 6,
            concurrency: 256,
          });
          const history = await largestHistory(env.client);
          const row = {
            scenario: `scale (${run.dialogues} dialogues, ${nodeDefaults ? "Node's default heap" : 'deployed flags'})`,
            'worker peak RSS MB': round(await env.worker.peakRssMb(), 1),
            'largest history events': history.events,
            'largest history KB': round(history.bytes / 1024, 1),
            'workflow runs': history.workflows,
            'dialogues/min': round((run.dialogues / run.seconds) * 60, 1),
            'LLM calls/s': round(run.calls / run.seconds, 1),
          };
          table.push(row);
          results[nodeDefaults ? 'scaleNodeDefaults' : 'scale'] = {
            ...row,
            run: { ...run, summary: undefined },
          };
        },
        nodeDefaults,
      );
      if (QUICK || !args['compare-node-defaults']) break;
    }
  },

  /** A server limited to R requests/min: the run settles just under R without a storm of 429s. */
  async 'rate-limit'() {
    const rpm = 600;
    await withEnv(
      // A 5 s sliding window: a burst of R/12 at most, so the average measures the settled rate.
      { latency: { meanMs: 100, jitter: 0.3 }, rateLimit: { requestsPerMinute: rpm, windowMs: 5_000 } },
      async (env) => {
        const perIntent = QUICK ? 30 : 80; // 9 × 80 × 2 = 1,440 calls: 2.4 minutes at the limit
        const run = await runTemporal(env, {
          numDialogsPerIntent: perIntent,
          numTurnsPerDialog: 4,
          concurrency: 32,
        });
        const perMinute = (run.calls / run.seconds) * 60;
        const row = {
          scenario: `rate limit (R=${rpm}/min)`,
          'achieved/min': round(perMinute, 1),
          'of R': round(perMinute / rpm, 3),
          '429s': run.rateLimited ?? 0,
          '429s per call': round((run.rateLimited ?? 0) / run.calls, 3),
        };
        table.push(row);
        results.rateLimit = { ...row, run: { ...run, summary: undefined } };
      },
    );
  },
};

async function main(): Promise<void> {
  const started = new Date();
  for (const [name, scenario] of Object.entries(scenarios)) {
    if (ONLY && !ONLY.includes(name)) continue;
    process.stderr.write(`running ${name}…\n`);
    await scenario();
  }
  for (const row of table) {
    process.stdout.write(`\n${row.scenario}\n`);
    for (const [k, v] of Object.entries(row))
      if (k !== 'scenario') process.stdout.write(`  ${k.padEnd(24)} ${v}\n`);
  }
  const file = join(ROOT, 'bench', 'results', `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(
    file,
    JSON.stringify(
      { startedAt: started.toISOString(), node: process.version, quick: QUICK, scale: SCALE, results },
      null,
      2,
    ),
  );
  process.stdout.write(`\nresults: ${file}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
