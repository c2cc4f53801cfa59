/**
 * The run seen from outside. `status --json` against the documented schema, and Prometheus metrics of a real run: a `worker --metrics-port` on a real dev server (serving storage
 * too, so every count is in its process), a run started with the client, against the OpenAI-compatible test server with random 429s, bad replies and
 * refusals. The package's counters, scraped from the worker, agree with the run's summary, its files
 * and what the endpoint saw.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { METRIC_NAMES } from '../../src/activities/metrics';
import { freePort } from '../../src/client/dev-server';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import { intentWorkflowId } from '../../src/workflows/run';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { runStatusSchema, STATUS_SCHEMA_VERSION } from '../../src/run/status';
import { runCli, spawnCli } from '../helpers/cli';
import { dashboardPanels, metricNames } from '../helpers/dashboard';
import { scrape, sumOf, type Sample } from '../helpers/prometheus';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startLlmServer, type LlmServer } from '../llm-server/server';

const API_KEY = 'sk-test-metrics-key-0123456789';
const MODEL = 'gpt-4o-mini'; // has a list price: the cost metric is filled
let temporal: TestDevServer;
let llm: LlmServer;
let root: string;
let port: number;
let worker: ReturnType<typeof spawnCli>;
let client: Client;
const taskQueue = unique('metrics');

before(async () => {
  temporal = await devServer();
  llm = await startLlmServer({
    apiKey: API_KEY,
    models: [MODEL],
    latency: { meanMs: 10, jitter: 0.5 },
    faults: { rateLimit: 0.15, wrongCount: 0.1, contentPolicy: 0.1 },
    retryAfterSeconds: 0,
  });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  root = await tempDir('cc-metrics-root-');
  port = await freePort();
  worker = spawnCli(
    ['worker', '--task-queue', taskQueue, '--out-root', root, '--metrics-port', String(port)],
    { TEMPORAL_ADDRESS: temporal.address, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url },
  );
  let err = '';
  worker.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(() => err.includes('worker on '), 120_000, `the worker to poll (stderr: ${err})`);
});
after(async () => {
  worker?.child.kill('SIGTERM');
  await worker?.done;
  await client?.connection.close();
  await llm?.close();
  await temporal?.dispose();
});

describe('status --json', () => {
  test('status --json: a running run prints its progress query, versioned, and a closed one why, exit 3', async () => {
    const runId = unique('status-json');
    const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: runId,
      taskQueue,
      // Paused from the start: it stays running, with nothing in flight, for as long as the test looks.
      args: [
        {
          runId,
          outDir: join(root, runId),
          model: MODEL,
          intents: ['transaction'],
          numDialogsPerIntent: 2,
          numTurnsPerDialog: 1,
          paused: true,
        } satisfies RunInput,
      ],
    });
    const running = await runCli(['status', runId, '--json', '--temporal-address', temporal.address]);
    assert.equal(running.code, 0, running.stderr);
    const doc = runStatusSchema.parse(JSON.parse(running.stdout));
    assert.equal(doc.status, 'RUNNING');
    assert.equal(doc.progress?.schemaVersion, STATUS_SCHEMA_VERSION);
    assert.equal(doc.progress?.paused, true);
    assert.deepEqual(
      doc.progress?.intents.map((i) => [i.intent, i.planned]),
      [['transaction', 2]],
    );
    assert.deepEqual(doc.storageIssues, []);
    assert.equal(doc.estimatedCostUsd, 0);

    await handle.terminate('stopped for the test');
    const closed = await runCli(['status', runId, '--json', '--temporal-address', temporal.address]);
    assert.equal(closed.code, 3, closed.stderr);
    const closedDoc = runStatusSchema.parse(JSON.parse(closed.stdout));
    assert.equal(closedDoc.status, 'TERMINATED');
    assert.match(closedDoc.reason ?? '', /stopped for the test/);
  });
});

describe('fair share', () => {
  test('fair share: --priority and --fairness-key reach the run and its intent workflows, which the server hands on', async () => {
    const runId = unique('fair');
    const r = await runCli(
      [
        ...['generate', '--no-worker', '--temporal-address', temporal.address, '--task-queue', taskQueue],
        ...['--out', join(await tempDir('cc-fair-'), 'run'), '--run-id', runId, '--model', MODEL],
        ...['--intents', 'transaction', '--dialogs-per-intent', '1', '--turns', '1'],
        ...['--priority', '1', '--fairness-key', 'team-a', '--fairness-weight', '2.5'],
      ],
      { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url },
    );
    assert.ok(r.code === 0 || r.code === 1, `generate exited ${r.code}: ${r.stderr}`);
    for (const id of [runId, intentWorkflowId(runId, 'transaction')]) {
      const { events } = await client.workflow.getHandle(id).fetchHistory();
      const started = events?.[0]?.workflowExecutionStartedEventAttributes;
      assert.deepEqual(
        { ...started?.priority },
        { priorityKey: 1, fairnessKey: 'team-a', fairnessWeight: 2.5 },
        id,
      );
    }
  });

  test('fair share: a priority outside 1-5 is one line naming the flag, exit 2', async () => {
    const r = await runCli(
      [
        'generate',
        '--no-worker',
        '--temporal-address',
        temporal.address,
        '--out',
        join(root, 'never'),
        '--priority',
        '9',
      ],
      { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error: --priority: /);
  });
});

describe('metrics', () => {
  test('metrics: a worker serves the SDK metrics and the package counters agree with the run summary', async () => {
    // The worker serves the other tests' runs too: counts without a run label are compared as deltas.
    const before = await scrape(port);
    const seenBefore = llm.stats();
    const delta = (name: string, match?: Record<string, string>) =>
      sumOf(samples, name, match) - sumOf(before, name, match);
    const runId = unique('metrics-run');
    const outDir = join(root, runId);
    const input: RunInput = {
      runId,
      outDir,
      model: MODEL,
      intents: ['transaction', 'educational'],
      numDialogsPerIntent: 6,
      numTurnsPerDialog: 2,
      // A budget the run's calls exceed: some wait in the worker's rate limiter.
      rateLimit: { requestsPerMinute: 240 },
    };
    const summary: RunSummary = await client.workflow.execute(WORKFLOW_TYPES.run, {
      workflowId: runId,
      taskQueue,
      args: [input],
    });
    const now = llm.stats();
    const seen = {
      stages: {
        skeleton: now.stages.skeleton - seenBefore.stages.skeleton,
        responses: now.stages.responses - seenBefore.stages.responses,
      },
      rateLimited: (now.byStatus['429'] ?? 0) - (seenBefore.byStatus['429'] ?? 0),
    };
    const n = METRIC_NAMES;
    // The storage activity records before it returns, and the run ends after it: no wait is needed,
    // but a scrape is a separate read, so wait for the last count rather than trust the order.
    let samples: Sample[] = [];
    await waitFor(
      async () => {
        samples = await scrape(port);
        return sumOf(samples, n.dialoguesWritten, { run: runId }) === summary.written;
      },
      30_000,
      'the written counter to reach the summary',
    );
    for (const intent of summary.intents) {
      assert.equal(sumOf(samples, n.dialoguesWritten, { run: runId, intent: intent.intent }), intent.written);
      assert.equal(sumOf(samples, n.dialoguesFailed, { run: runId, intent: intent.intent }), intent.failed);
    }
    assert.equal(sumOf(samples, n.dialoguesFailed, { run: runId }), summary.failed);
    assert.equal(delta(n.llmCalls, { outcome: 'ok' }), summary.llmCalls);
    assert.equal(delta(n.llmCalls), seen.stages.skeleton + seen.stages.responses);
    assert.equal(delta(n.llmRateLimited), seen.rateLimited);
    assert.ok(seen.rateLimited > 0, 'the endpoint refused some calls');
    assert.equal(delta(n.llmCalls, { outcome: 'Llm.RateLimit' }), seen.rateLimited);
    for (const stage of ['skeleton', 'responses'] as const) {
      assert.equal(delta(n.llmCalls, { stage }), seen.stages[stage], stage);
      // Paid tokens: the calls that succeeded and the failed attempts.
      const failed = summary.failedAttempts?.[stage];
      assert.equal(
        delta(n.llmTokens, { stage, kind: 'prompt' }),
        summary.stageTokens![stage].prompt + (failed?.prompt ?? 0),
      );
      assert.equal(
        delta(n.llmTokens, { stage, kind: 'completion' }),
        summary.stageTokens![stage].completion + (failed?.completion ?? 0),
      );
    }
    assert.ok(summary.estimatedCostUsd! > 0);
    assert.ok(Math.abs(delta(`${n.llmCostUsd}_sum`) - summary.estimatedCostUsd!) < 1e-9, 'cost');
    assert.equal(sumOf(samples, n.llmCallsInFlight), 0);
    assert.ok(delta(`${n.rateLimiterWaitMs}_count`) > 0, 'calls waited in the rate limiter');
    const bytes = async (file: string) => (await stat(join(outDir, file)).catch(() => ({ size: 0 }))).size;
    assert.equal(delta(n.storageBytes, { kind: 'dialogues' }), await bytes('dialogs.jsonl'));
    assert.equal(delta(n.storageBytes, { kind: 'failures' }), await bytes('failures.jsonl'));
    assert.ok(delta(n.storageBatches, { kind: 'dialogues' }) > 0);
    // The SDK runtime's own metrics come out of the same exporter, with the names the dashboard uses.
    const names = new Set(samples.map((s) => s.name));
    for (const panel of await dashboardPanels())
      for (const name of (panel.targets ?? []).flatMap((t) => metricNames(t.expr ?? '')))
        if (name.startsWith('temporal_')) assert.ok(names.has(name), `${panel.title}: ${name} is exported`);
    // Bounded labels: no dialogue id, no key, no prompt text.
    const text = JSON.stringify(samples);
    assert.doesNotMatch(text, new RegExp(`${runId}\\.[a-z_]+\\.\\d`));
    assert.doesNotMatch(text, new RegExp(API_KEY));

    // The same run as `status --json` prints it: the documented schema, the workflow's own result.
    const status = await runCli(['status', runId, '--json', '--temporal-address', temporal.address]);
    assert.equal(status.code, summary.failed > 0 ? 1 : 0, status.stderr);
    const doc = runStatusSchema.parse(JSON.parse(status.stdout));
    assert.equal(doc.schemaVersion, STATUS_SCHEMA_VERSION);
    assert.equal(doc.status, 'COMPLETED');
    assert.deepEqual(doc.summary, summary);
  });

  test('metrics: a port that is not a number is one line naming the flag, exit 2', async () => {
    const r = await runCli(
      ['worker', '--temporal-address', temporal.address, '--no-storage', '--metrics-port', 'x'],
      {
        OPENAI_API_KEY: API_KEY,
        OPENAI_BASE_URL: llm.url,
      },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error: --metrics-port: must be a whole number, got "x"/);
  });

  test('metrics: a port already in use is one line naming the flag, exit 2', async () => {
    const r = await runCli(
      ['worker', '--temporal-address', temporal.address, '--no-storage', '--metrics-port', String(port)],
      { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error: --metrics-port: cannot serve metrics on 127\.0\.0\.1:\d+/);
  });
});
