/**
 * Fair sharing of one worker pool by two runs, on a dev server of the pinned Temporal CLI, one worker
 * with 2 activity slots (the bound that makes the server hold the backlog), the test LLM server.
 *
 * - Default: does a small urgent run get ahead of a large one? An 80-dialogue run, then a 2-dialogue
 *   run with priority 1 three seconds later: the small run's wall time. `--no-priority` is the control
 *   (neither run carries a priority or a fairness key).
 * - `--weights`: two runs of `--dialogues N` (default 300, concurrency 64) started together, fairness
 *   weights `--ratio R` (default 3) and 1: LLM calls and dialogues each had done when the first
 *   finished, and heavy's calls per light call (see `shares`). `--override` sets the weights in the
 *   task queue's config instead of on the runs; `--server-rps N` bounds the queue on the server
 *   (`temporal task-queue config set --queue-rps-limit`) and gives the worker 500 slots; `--trace`
 *   prints each sample (seconds, calls of heavy and light, dialogues started by heavy and light).
 *
 * `--fair` sets matching.enableFairness (the new matcher is on by default in server 1.32);
 * `--latency MS` the endpoint's latency (default 500, or 100 with `--weights`).
 * `node --import tsx bench/fair-share.ts [--fair] [--no-priority] [--weights [--ratio R] [--override]
 * [--server-rps N] [--dialogues N] [--trace]]`
 */
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startDevServer } from '../src/client/dev-server';
import { WORKFLOW_TYPES } from '../src/shared/constants';
import { intentProgressQuery } from '../src/run/messages';
import type { RunInput, RunSummary } from '../src/run/schemas';
import { intentWorkflowId } from '../src/workflows/run';
import { spawnCli } from '../test/helpers/cli';
import { tempDir } from '../test/helpers/temporal';
import { startLlmServer } from '../test/llm-server/server';

const TASK_QUEUE = 'fair';
const INTENT = 'transaction';

interface Flags {
  fair: boolean;
  /** The control of the urgent-run mode: no priority or fairness key on either run. */
  plain: boolean;
  weights: boolean;
  ratio: number;
  override: boolean;
  serverRps?: number;
  dialogues: number;
  latencyMs: number;
}

function flags(argv: string[]): Flags {
  const has = (name: string) => argv.includes(name);
  const value = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : undefined;
  };
  const weights = has('--weights');
  return {
    fair: has('--fair'),
    plain: has('--no-priority'),
    weights,
    ratio: value('--ratio') ?? 3,
    override: has('--override'),
    serverRps: value('--server-rps'),
    dialogues: value('--dialogues') ?? 300,
    latencyMs: value('--latency') ?? (weights ? 100 : 500),
  };
}

async function main() {
  const f = flags(process.argv);
  const root = await tempDir('cc-fair-bench-');
  const server = await startDevServer({
    dbFile: `${root}/t.db`,
    stateFile: `${root}/s.json`,
    logFile: `${root}/l.log`,
    dynamicConfig: f.fair ? { 'matching.enableFairness': true } : undefined,
  });
  const llm = await startLlmServer({ apiKey: 'sk-bench-0123456789abcdef', latency: { meanMs: f.latencyMs } });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  // Server-side bounds are set before any task arrives, so every task's pass is picked under them.
  await configureQueue(client, f);
  const slots = f.serverRps === undefined ? 2 : 500;
  const worker = spawnCli(
    [
      'worker',
      '--task-queue',
      TASK_QUEUE,
      '--out-root',
      root,
      '--max-concurrent-calls',
      String(slots),
      '--queued-activities',
    ],
    {
      TEMPORAL_ADDRESS: server.address,
      OPENAI_API_KEY: 'sk-bench-0123456789abcdef',
      OPENAI_BASE_URL: llm.url,
    },
  );
  let err = '';
  worker.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  while (!err.includes('worker on ')) await new Promise((r) => setTimeout(r, 200));
  const run = (runId: string, n: number, concurrency: number): RunInput => ({
    runId,
    outDir: `${root}/${runId}`,
    model: 'test-model',
    intents: [INTENT],
    numDialogsPerIntent: n,
    numTurnsPerDialog: 1,
    concurrency,
  });
  if (f.weights) await weightedShare(client, run, f, slots);
  else await urgentBehindLarge(client, run, f.fair, f.plain);
  worker.child.kill('SIGTERM');
  await worker.done;
  await client.connection.close();
  await llm.close();
  await server.stop();
}
type RunOf = (runId: string, n: number, concurrency: number) => RunInput;

/** The activity queue's server-side settings: weight overrides (`--override`), a rate limit (`--server-rps`). */
async function configureQueue(client: Client, f: Flags): Promise<void> {
  if (!f.override && f.serverRps === undefined) return;
  await client.workflowService.updateTaskQueueConfig({
    namespace: 'default',
    identity: 'fair-share-bench',
    taskQueue: TASK_QUEUE,
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    ...(f.override && { setFairnessWeightOverrides: { heavy: f.ratio, light: 1 } }),
    ...(f.serverRps !== undefined && {
      updateQueueRateLimit: { rateLimit: { requestsPerSecond: f.serverRps }, reason: 'bench: the endpoint' },
    }),
  });
}

/** A 2-dialogue run with priority 1 started 3 s after an 80-dialogue run: the small run's wall time. */
async function urgentBehindLarge(client: Client, run: RunOf, fair: boolean, plain: boolean): Promise<void> {
  const big = await client.workflow.start(WORKFLOW_TYPES.run, {
    workflowId: 'big',
    taskQueue: TASK_QUEUE,
    args: [run('big', 80, 64)],
    ...(plain ? {} : { priority: { priorityKey: 3, fairnessKey: 'big' } }),
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const started = Date.now();
  await client.workflow.execute(WORKFLOW_TYPES.run, {
    workflowId: 'small',
    taskQueue: TASK_QUEUE,
    args: [run('small', 2, 2)],
    ...(plain ? {} : { priority: { priorityKey: 1, fairnessKey: 'small' } }),
  });
  const smallMs = Date.now() - started;
  await big.result();
  console.log(
    JSON.stringify({ fair, priority: !plain, smallRunMs: smallMs, bigRunMs: Date.now() - started + 3_000 }),
  );
}

/** What one run had done: LLM calls completed (both stages) and dialogues written. */
interface Done {
  calls: number;
  written: number;
  /** Dialogues started: once all are, the run's window only drains. */
  started: number;
}
interface Sample {
  ms: number;
  heavy: Done;
  light: Done;
}

/** A running run's intent, asked directly (the run's own progress is reported only now and then). */
async function doneOf(client: Client, runId: string): Promise<Done> {
  try {
    const p = await client.workflow.getHandle(intentWorkflowId(runId, INTENT)).query(intentProgressQuery);
    return { calls: p.llmCalls, written: p.written, started: p.started ?? 0 };
  } catch {
    return { calls: 0, written: 0, started: 0 }; // the intent has not started yet
  }
}

/**
 * Two runs started together with fairness weights `ratio` and 1 (on the runs, or as the queue's
 * overrides): calls and dialogues each had done, sampled every 500 ms, until the first finished.
 */
async function weightedShare(client: Client, run: RunOf, f: Flags, slots: number): Promise<void> {
  const start = (id: 'heavy' | 'light', weight: number) =>
    client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: id,
      taskQueue: TASK_QUEUE,
      args: [run(id, f.dialogues, 64)],
      priority: { priorityKey: 3, fairnessKey: id, ...(!f.override && { fairnessWeight: weight }) },
    });
  const t0 = Date.now();
  const heavy = await start('heavy', f.ratio);
  const light = await start('light', 1);
  const samples: Sample[] = [];
  let first: { id: 'heavy' | 'light'; summary: RunSummary } | undefined;
  void heavy.result().then((summary) => (first ??= { id: 'heavy', summary }));
  void light.result().then((summary) => (first ??= { id: 'light', summary }));
  while (!first) {
    const [h, l] = await Promise.all([doneOf(client, 'heavy'), doneOf(client, 'light')]);
    if (!first) samples.push({ ms: Date.now() - t0, heavy: h, light: l });
    await new Promise((r) => setTimeout(r, 500));
  }
  const { id, summary } = first;
  const other = await doneOf(client, id === 'heavy' ? 'light' : 'heavy');
  const finished = { calls: summary.llmCalls, written: summary.written, started: summary.requested };
  const end: Sample = {
    ms: Date.now() - t0,
    heavy: id === 'heavy' ? finished : other,
    light: id === 'light' ? finished : other,
  };
  await Promise.all([heavy.result(), light.result()]);
  console.log(
    JSON.stringify({ ...settings(f, slots), firstDone: id, ...shares(samples, end, id, f.dialogues) }),
  );
  // `--trace`: calls done by each run over time, one line per sample: seconds, heavy, light.
  if (process.argv.includes('--trace'))
    for (const s of [...samples, end])
      console.log(`${s.ms / 1000} ${s.heavy.calls} ${s.light.calls} ${s.heavy.started} ${s.light.started}`);
}

function settings(f: Flags, slots: number) {
  return {
    fair: f.fair,
    weights: { heavy: f.ratio, light: 1, on: f.override ? 'task queue config' : 'runs' },
    ...(f.serverRps !== undefined && { serverRps: f.serverRps }),
    slots,
    dialogues: f.dialogues,
    latencyMs: f.latencyMs,
  };
}

/**
 * The first run's calls end some seconds before it does (it writes its files), and its last window
 * of dialogues drains with fewer tasks queued: heavy's calls per light call from the start to the
 * first run's last call, and while both runs had full windows (from 10 % of the first run's calls
 * until it had started its last dialogue).
 */
function shares(samples: Sample[], end: Sample, first: 'heavy' | 'light', dialogues: number) {
  const all = [...samples, end];
  const total = end[first].calls;
  const at = (reached: (s: Sample) => boolean) => all.find(reached) ?? end;
  const ratio = (from: Sample | undefined, to: Sample) => {
    const h = to.heavy.calls - (from?.heavy.calls ?? 0);
    const l = to.light.calls - (from?.light.calls ?? 0);
    return l === 0 ? null : Math.round((h / l) * 100) / 100;
  };
  const last = at((s) => s[first].calls >= total);
  const seconds = (s: Sample) => Math.round(s.ms / 100) / 10;
  return {
    firstDoneS: seconds(end),
    atFirstDone: { heavy: end.heavy, light: end.light },
    lastCallS: seconds(last),
    callRatio: ratio(undefined, last),
    callRatioFullWindows: ratio(
      at((s) => s[first].calls >= total / 10),
      at((s) => s[first].started >= dialogues),
    ),
  };
}

void main();
