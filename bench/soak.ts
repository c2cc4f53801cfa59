/**
 * `npm run soak` (not in CI): a long run against the test server's fault mix while the worker and the
 * Temporal server are SIGKILLed in turn every few minutes, with a pause and a resume in between. It
 * ends when the run does and checks that every dialogue is in the output exactly once and that every
 * call the endpoint served is booked, or was in flight at a kill. Prints the embedded server's database
 * size per 1,000 dialogues as the run goes.
 *
 * `npm run soak -- --minutes 60 --kill-every 180` (defaults); `--dialogs-per-intent N` sizes the run
 * (default: about what the minutes produce at this endpoint's pace).
 */
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { INTENT_IDS } from '../src/method/intents';
import { pauseSignal, resumeSignal } from '../src/run/messages';
import type { RunInput, RunSummary } from '../src/run/schemas';
import { WORKFLOW_TYPES } from '../src/shared/constants';
import { countLines, spawnWorker, startRestartableServer } from '../test/helpers/crash';
import { tempDir } from '../test/helpers/temporal';
import { sleep, waitFor } from '../test/helpers/wait';
import { startLlmServer, type LlmServer } from '../test/llm-server/server';

const API_KEY = 'sk-soak-0123456789abcdef';
/** The mix of issue 20: errors, rate limits, cut and hung streams, bad replies, 2% hung connections. */
const FAULTS = {
  serverError: 0.02,
  rateLimit: 0.02,
  streamCut: 0.01,
  streamError: 0.01,
  malformedJson: 0.01,
  wrongCount: 0.01,
  hang: 0.02,
  stall: 0.005,
};
const ACTIONS = ['worker', 'server', 'pause'] as const;
/** No new record for this long (pauses and kills take well under it) ends the soak as failed. */
const STALL_MS = 10 * 60_000;

interface Sample {
  minute: number;
  lines: number;
  dbBytes: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '60' },
      'kill-every': { type: 'string', default: '180' },
      'dialogs-per-intent': { type: 'string' },
    },
  });
  const minutes = Number(values.minutes);
  const killEveryMs = Number(values['kill-every']) * 1_000;
  // About 3 dialogues a second at concurrency 16 and 2 calls of ~2.5 s each, less the kills' downtime.
  const perIntent = Number(
    values['dialogs-per-intent'] ?? Math.ceil((minutes * 60 * 2.5) / INTENT_IDS.length),
  );
  const root = await tempDir('cc-soak-');
  const outDir = join(root, 'out');
  const llm = await startLlmServer({
    apiKey: API_KEY,
    latency: { meanMs: 1_000, jitter: 0.5, tokensPerSecond: 400 },
    faults: FAULTS,
  });
  const server = await startRestartableServer(root);
  // Its stderr is kept, for a run that stops making progress (`worker.log` beside the output).
  const workerLog = createWriteStream(join(root, 'worker.log'), { flags: 'a' });
  const startWorker = () =>
    spawnWorker({
      address: server.address,
      taskQueue: 'soak',
      outRoot: root,
      llm: { url: llm.url, apiKey: API_KEY },
      log: workerLog,
    });
  let worker = startWorker();
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const runId = `soak-${Date.now()}`;
  const input: RunInput = {
    runId,
    outDir,
    model: 'test-model',
    numDialogsPerIntent: perIntent,
    numTurnsPerDialog: 6,
    concurrency: 16,
  };
  const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
    workflowId: runId,
    taskQueue: 'soak',
    args: [input],
  });
  const started = Date.now();
  const samples: Sample[] = [];
  let progressAt = Date.now();
  const sample = async () => {
    const lines = await countLines(join(outDir, 'dialogs.jsonl'));
    if (lines !== samples.at(-1)?.lines) progressAt = Date.now();
    // A soak that stops making progress has found something: stop with where to look.
    if (Date.now() - progressAt > STALL_MS)
      throw new Error(
        `no dialogue written for ${STALL_MS / 60_000} minutes at ${lines}: see ${join(root, 'worker.log')} and the server at ${server.address}`,
      );
    samples.push({ minute: (Date.now() - started) / 60_000, lines, dbBytes: await dbBytes(server.dbFile) });
    const s = samples.at(-1)!;
    console.log(
      `${s.minute.toFixed(1)} min: ${lines} written, server db ${(s.dbBytes / 1e6).toFixed(1)} MB (${lines > 0 ? (((s.dbBytes / lines) * 1e3) / 1e6).toFixed(2) : '?'} MB per 1,000)`,
    );
  };
  const lostAtKills: number[] = [];
  let result: RunSummary | undefined;
  const finished = handle.result().then((r) => (result = r as RunSummary));
  for (let round = 0; Date.now() - started < minutes * 60_000 && result === undefined; round++) {
    const until = Date.now() + killEveryMs;
    while (Date.now() < until && result === undefined) {
      await sleep(Math.min(30_000, until - Date.now()));
      await sample();
    }
    if (result !== undefined) break;
    const action = ACTIONS[round % ACTIONS.length]!;
    if (action === 'worker') {
      // Lost with the worker: calls in flight, and calls answered whose results it had not yet reported.
      const running = await runningLlmActivities(client, runId);
      worker.child.kill('SIGKILL');
      lostAtKills.push(Math.max(running, llm.stats().inFlight));
      await worker.done;
      await waitFor(
        () => llm.stats().openConnections === 0,
        300_000,
        'the killed worker’s connections to close',
      );
      worker = startWorker();
      console.log(`worker SIGKILLed with ${lostAtKills.at(-1)} LLM activities running, restarted`);
    } else if (action === 'server') {
      // Results the server never recorded may be paid again: those of the activities running at the
      // kill, and of calls the worker started while the server was down.
      const running = await runningLlmActivities(client, runId);
      const requests = llm.stats().requests;
      await server.killAndRestart();
      await waitFor(
        async () => (await runningLlmActivities(client, runId).catch(() => -1)) >= 0,
        120_000,
        'the server',
      );
      lostAtKills.push(running + llm.stats().requests - requests);
      console.log(
        `Temporal server SIGKILLed with ${running} LLM activities running, restarted; ${lostAtKills.at(-1)} calls at risk`,
      );
    } else {
      await handle.signal(pauseSignal);
      await waitFor(() => llm.stats().inFlight === 0, 600_000, 'calls in flight to finish after pause');
      await sleep(10_000);
      const quiet = llm.stats().requests;
      await sleep(10_000);
      if (llm.stats().requests !== quiet) throw new Error('calls started while the run was paused');
      await handle.signal(resumeSignal);
      console.log('paused until the endpoint was quiet for 10 s, resumed');
    }
  }
  await finished;
  await sample();
  const verdict = await check(outDir, INTENT_IDS.length * perIntent, result!, llm, lostAtKills);
  console.log(
    JSON.stringify({ minutes: (Date.now() - started) / 60_000, perIntent, samples, ...verdict }, null, 1),
  );
  worker.child.kill('SIGTERM');
  await worker.done;
  await connection.close();
  await server.stop();
  await llm.close();
  if (!verdict.ok) process.exitCode = 1;
}

const LLM_ACTIVITIES = new Set(['generateSkeleton', 'generateResponses', 'judgeDialogue', 'expandTopic']);

/** LLM activities the server sees started and not finished, over the run's intents. */
async function runningLlmActivities(client: Client, runId: string): Promise<number> {
  let running = 0;
  for (const intent of INTENT_IDS) {
    const pending =
      (await client.workflow.getHandle(`${runId}.${intent}`).describe()).raw.pendingActivities ?? [];
    running += pending.filter(
      (a) => LLM_ACTIVITIES.has(a.activityType?.name ?? '') && Number(a.state) === 2, // PENDING_ACTIVITY_STATE_STARTED
    ).length;
  }
  return running;
}

/** Every dialogue exactly once; the endpoint's calls all booked, or in flight at a kill. */
async function check(
  outDir: string,
  total: number,
  summary: RunSummary,
  llm: LlmServer,
  lostAtKills: number[],
) {
  const ids = (await readFile(join(outDir, 'dialogs.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id);
  const failures = await countLines(join(outDir, 'failures.jsonl'));
  const unique = new Set(ids).size;
  const { stages, rateLimited, faults } = llm.stats();
  // Neither a 429 nor a connection that never answered is paid, or booked: the first waits and asks
  // again within its attempt, the second is cut by the stall detector.
  const served =
    stages.skeleton + stages.responses + stages.topics + stages.judge - rateLimited - (faults.hang ?? 0);
  const failed: { calls: number }[] = Object.values(summary.failedAttempts ?? {});
  const failedCalls = failed.reduce((n, f) => n + f.calls, 0);
  const booked = summary.llmCalls + failedCalls;
  const bound = lostAtKills.reduce((a, b) => a + b, 0);
  const ok = unique === ids.length && unique + failures === total && served - booked <= bound;
  return {
    ok,
    total,
    lines: ids.length,
    unique,
    failures,
    served,
    booked,
    unbookedBound: bound,
    kills: lostAtKills.length,
    faults,
  };
}

/** The SQLite file and its write-ahead log. */
async function dbBytes(db: string): Promise<number> {
  let bytes = 0;
  for (const f of [db, `${db}-wal`]) bytes += (await stat(f).catch(() => ({ size: 0 }))).size;
  return bytes;
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
