/**
 * The compose topology with real processes on a real dev server: two `worker --no-storage`, one
 * `worker --storage-only --out-root R`, runs started with the Temporal CLI exactly as the README prints
 * it. Every record lands under R once, stored by the storage worker; storage that cannot get through
 * shows in `consistent-chat status`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { findTemporalCli } from '../../src/client/dev-server';
import { INTENT_IDS } from '../../src/method/intents';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunFile } from '../../src/client/generate';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { JsonlStore } from '../../src/storage/jsonl-store';
import { intentWorkflowId } from '../../src/workflows/run';
import { runCli, spawnCli } from '../helpers/cli';
import { assertDataset, readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';

const API_KEY = 'sk-test-cluster-key-0123456789';
let temporal: TestDevServer;
let llm: LlmServer;
let client: Client;
let root: string;
const taskQueue = unique('cluster');
const workers: ReturnType<typeof spawnCli>[] = [];

/** Starts a CLI worker and waits until it says it is polling. */
async function startWorker(args: string[]): Promise<ReturnType<typeof spawnCli>> {
  const worker = spawnCli(['worker', '--task-queue', taskQueue, ...args], {
    TEMPORAL_ADDRESS: temporal.address,
    OPENAI_API_KEY: API_KEY,
    OPENAI_BASE_URL: llm.url,
  });
  workers.push(worker);
  await new Promise<void>((ready, failed) => {
    let err = '';
    worker.child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('worker on ')) ready();
    });
    void worker.done.then((r) => failed(new Error(`worker exited ${r.code}: ${r.stderr}`)));
  });
  return worker;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

let storageWorkerPid = 0;
before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 20, jitter: 0.5 } });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  root = await tempDir('cc-cluster-root-');
  await startWorker(['--no-storage']);
  await startWorker(['--no-storage']);
  storageWorkerPid = (await startWorker(['--storage-only', '--out-root', root])).child.pid!;
});
after(async () => {
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.done));
  await client?.connection.close();
  await llm?.close();
  await temporal?.dispose();
});

describe('cluster storage', () => {
  test('cluster storage: a worker that would serve storage without an output root exits 2 naming the flag', async () => {
    const started = Date.now();
    const r = await runCli(
      ['worker', '--temporal-address', temporal.address, '--task-queue', unique('no-root')],
      {
        OPENAI_API_KEY: API_KEY,
        OPENAI_BASE_URL: llm.url,
        CONSISTENT_CHAT_OUT_ROOT: '',
      },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error: --out-root: .*CONSISTENT_CHAT_OUT_ROOT/);
    assert.ok(Date.now() - started < 20_000);
  });

  test('cluster storage: a run started with the Temporal CLI lands every record under the storage root once', async () => {
    const runId = unique('cli-run');
    const outDir = join(root, runId);
    const cli = findTemporalCli();
    assert.ok(cli, 'the Temporal CLI is installed (TEMPORAL_CLI_PATH)');
    // As the README prints it, with this test's server, task queue and sizes.
    await promisify(execFile)(cli, [
      'workflow',
      'start',
      '--type',
      'consistentChatRun',
      '--task-queue',
      taskQueue,
      '--workflow-id',
      runId,
      '--input',
      JSON.stringify({
        outDir,
        model: 'test-model',
        numDialogsPerIntent: 3,
        numTurnsPerDialog: 2,
        temperature: 0.9,
      }),
      '--address',
      temporal.address,
    ]);
    await client.workflow.getHandle(runId).result();
    const records = await readDialogues(outDir);
    assertDataset(records, { count: INTENT_IDS.length * 3, turns: 2, intents: INTENT_IDS });
    assert.equal((await readFailures(outDir)).length, 0);
    assert.deepEqual(await readdir(root), [runId], 'nothing else under the root');
    // Stored by the storage worker, on the shared storage queue, and only by it.
    const { events } = await client.workflow.getHandle(intentWorkflowId(runId, 'transaction')).fetchHistory();
    const storageScheduled = new Set<string>();
    for (const e of events ?? []) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name === 'storeDialogues') {
        assert.equal(scheduled.taskQueue?.name, `${taskQueue}.storage`);
        storageScheduled.add(String(e.eventId));
      }
      const started = e.activityTaskStartedEventAttributes;
      if (started && storageScheduled.has(String(started.scheduledEventId)))
        assert.match(started.identity ?? '', new RegExp(`^${storageWorkerPid}@`));
    }
    assert.ok(storageScheduled.size > 0);
  });

  test('cluster storage: storage that cannot get through shows in status, with its reason', async () => {
    // A directory of ours whose lock a live process (this test) holds: storage retries and cannot succeed.
    const locked = join(root, 'locked');
    await (await JsonlStore.open(locked)).close();
    await writeFile(
      join(locked, '.lock'),
      JSON.stringify({
        pid: process.pid,
        hostname: (await import('node:os')).hostname(),
        token: 't',
        startedAt: 'now',
      }),
    );
    const input = (runId: string, extra: Partial<RunInput>): RunInput => ({
      runId,
      outDir: locked,
      model: 'test-model',
      intents: ['transaction'],
      numDialogsPerIntent: 2,
      numTurnsPerDialog: 1,
      ...extra,
    });
    llm.resetStats();
    const lockedRun = unique('locked');
    const nobodyRun = unique('nobody');
    const nobodyQueue = unique('no-storage-worker');
    await client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: lockedRun,
      taskQueue,
      args: [input(lockedRun, {})],
    });
    await client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: nobodyRun,
      taskQueue,
      args: [input(nobodyRun, { outDir: join(root, 'nobody'), storageTaskQueue: nobodyQueue })],
    });
    try {
      const status = (runId: string, pattern: RegExp) =>
        waitFor(
          async () => {
            const r = await runCli(['status', runId, '--temporal-address', temporal.address]);
            return pattern.test(r.stdout) ? r.stdout : undefined;
          },
          60_000,
          `status of ${runId} matching ${pattern}`,
        );
      // The run's first step opens its directory: stuck there, it starts no intent and pays for no call.
      const lockedStatus = await status(
        lockedRun,
        /storage stuck: .*checkOutputDirectory attempt \d+.*in use by process/,
      );
      assert.match(lockedStatus, new RegExp(`in use by process ${process.pid}`));
      const nobodyStatus = await status(nobodyRun, /storage stuck: .*no worker serves its task queue/);
      assert.match(nobodyStatus, new RegExp(nobodyQueue));
      assert.equal(llm.stats().stages.skeleton, 0, 'no LLM call while storage cannot get through');
    } finally {
      for (const id of [lockedRun, nobodyRun]) await client.workflow.getHandle(id).terminate('test done');
      for (const id of [lockedRun, nobodyRun])
        await client.workflow
          .getHandle(intentWorkflowId(id, 'transaction'))
          .terminate('test done')
          .catch(() => undefined);
    }
  });

  test('cluster storage: a run whose directory is outside the root fails at once, naming it and the root, before any LLM call', async () => {
    llm.resetStats();
    const runId = unique('outside');
    const outDir = join(await tempDir('cc-cluster-outside-'), 'run');
    const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: runId,
      taskQueue,
      args: [
        {
          runId,
          outDir,
          model: 'test-model',
          intents: ['transaction'],
          numDialogsPerIntent: 2,
          numTurnsPerDialog: 1,
        },
      ],
    });
    const error = await handle.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WorkflowFailedError, String(error));
    const cause = error.cause;
    assert.ok(cause instanceof ApplicationFailure, String(cause));
    assert.equal(cause.type, 'Storage.ForbiddenDirectory');
    assert.ok(cause.message.includes(outDir) && cause.message.includes(root), cause.message);
    assert.equal(llm.stats().stages.skeleton + llm.stats().stages.responses, 0, 'no LLM call was paid for');
    const status = await runCli(['status', runId, '--temporal-address', temporal.address]);
    assert.equal(status.code, 3, status.stderr);
    assert.match(status.stdout, /why: .*outside the worker's output root/);
  });

  test('cluster storage: a run started with the Temporal CLI leaves summary.json and run.json, so report shows its tokens and the card its settings', async () => {
    const runId = unique('cli-files');
    const outDir = join(root, runId);
    const input = {
      outDir,
      model: 'test-model',
      intents: ['transaction'],
      numDialogsPerIntent: 2,
      numTurnsPerDialog: 1,
    };
    await promisify(execFile)(findTemporalCli()!, [
      ...['workflow', 'start', '--type', 'consistentChatRun', '--task-queue', taskQueue],
      ...['--workflow-id', runId, '--input', JSON.stringify(input), '--address', temporal.address],
    ]);
    const result = (await client.workflow.getHandle(runId).result()) as RunSummary;
    const summary = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as RunSummary;
    assert.equal(summary.written, 2);
    assert.deepEqual(summary.tokens, result.tokens);
    assert.ok(summary.tokens.prompt > 0 && summary.tokens.completion > 0);
    const runFile = JSON.parse(await readFile(join(outDir, 'run.json'), 'utf8')) as RunFile;
    assert.equal(runFile.runId, runId);
    assert.equal(runFile.input.numTurnsPerDialog, 1);
    assert.match(runFile.createdAt, /^\d{4}-\d\d-\d\dT/);

    const report = await runCli(['report', outDir]);
    assert.equal(report.code, 0, report.stderr);
    assert.ok(
      report.stdout.includes(
        `tokens: prompt ${result.tokens.prompt}, completion ${result.tokens.completion}`,
      ),
      report.stdout,
    );
    const hf = join(await tempDir('cc-cluster-hf-'), 'hf');
    const exported = await runCli(['export', outDir, '--format', 'hf', '--out', hf]);
    assert.equal(exported.code, 0, exported.stderr);
    const card = await readFile(join(hf, 'README.md'), 'utf8');
    assert.match(card, /## Generation settings \(run\.json\)/);
    assert.match(card, /\| `numTurnsPerDialog` \| `1` \|/);
    assert.match(card, new RegExp(`\\| run id \\| ${runId} \\|`));
  });
});
