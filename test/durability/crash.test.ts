/**
 * Crashes for real: SIGKILL a worker, the Temporal server, or the embedded `generate` process in the
 * middle of a run, bring it back, and check that nothing is lost, duplicated or generated twice.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunInput, RunSummary } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { spawnCli, generateArgs } from '../helpers/cli';
import { assertDataset, readDialogues } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { startDevServer } from '../../src/client/dev-server';
import { waitFor } from '../helpers/wait';
import { countLines, spawnWorker, startRestartableServer } from '../helpers/crash';
import { INTENT_IDS } from '../../src/method/intents';
import { CALIBRATION_SET } from '../../src/method/calibration';

const API_KEY = 'sk-durability-key';
let llm: LlmServer;

before(async () => {
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 150, jitter: 0.3 } });
});
after(async () => {
  await llm?.close();
});

const LLM_ACTIVITIES = new Set(['generateSkeleton', 'generateResponses', 'judgeDialogue']);
const EventType = proto.api.enums.v1.EventType;

/** A completed LLM activity as its intent's history records it. */
interface LlmActivity {
  type: string;
  /** The attempt that completed: each earlier one failed (here: died with a killed worker). */
  attempt: number;
  /** `pid@host` of the worker that completed it. */
  identity: string;
}

/** The completed LLM activities in the intents' histories. */
async function completedLlmActivities(client: Client, workflowIds: string[]): Promise<LlmActivity[]> {
  const completed: LlmActivity[] = [];
  for (const id of workflowIds) {
    const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const types = new Map<string, string>();
    const started = new Map<string, { identity: string; attempt: number }>();
    for (const e of events) {
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        types.set(String(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '');
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const a = e.activityTaskStartedEventAttributes;
        started.set(String(a?.scheduledEventId), { identity: a?.identity ?? '', attempt: a?.attempt ?? 1 });
      }
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const scheduled = String(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        const type = types.get(scheduled) ?? '';
        if (!LLM_ACTIVITIES.has(type)) continue;
        completed.push({ type, ...(started.get(scheduled) ?? { identity: '', attempt: 1 }) });
      }
    }
  }
  return completed;
}

/**
 * Waits until no connection to the LLM server is open: every byte a killed process sent has been read
 * and counted (a fixed pause is not enough on a loaded machine).
 */
async function llmConnectionsClosed(): Promise<void> {
  await waitFor(() => Promise.resolve(llm.stats().openConnections === 0), 180_000, 'connections to close');
}

function startWorker(address: string, taskQueue: string) {
  return spawnWorker({ address, taskQueue, outRoot: tmpdir(), llm: { url: llm.url, apiKey: API_KEY } });
}

function runInput(runId: string, outDir: string, dialogs: number): RunInput {
  return {
    runId,
    outDir,
    model: 'test-model',
    numDialogsPerIntent: dialogs,
    numTurnsPerDialog: 2,
    intents: ['transaction', 'educational', 'problem_solving'],
    concurrency: 9,
    timeouts: { startToCloseMs: 30_000, heartbeatMs: 2_000, idleMs: 5_000 },
    retry: { maximumAttempts: 10, initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 2_000 },
  };
}

describe('durability', () => {
  let temporal: TestDevServer;
  before(async () => {
    temporal = await devServer();
  });
  after(async () => {
    await temporal?.dispose();
  });

  test('durability: a SIGKILLed worker loses nothing and finished dialogues are not generated again', async () => {
    const outDir = await tempDir('cc-kill-worker-');
    const taskQueue = unique('kill-worker');
    const runId = unique('kill-worker');
    const total = 3 * 10;
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });
    llm.resetStats();
    const first = startWorker(temporal.address, taskQueue);
    try {
      const handle = await client.workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [runInput(runId, outDir, 10)],
      });
      // Storage goes in groups once calls are done, so the kill is timed by the LLM calls themselves.
      await waitFor(
        () => Promise.resolve(llm.stats().completed >= 2 * total * 0.3 && llm.stats().inFlight > 0),
        180_000,
        '30% of the calls done, more in flight',
      );
      const inFlightAtKill = llm.stats().inFlight;
      first.child.kill('SIGKILL');
      await first.done;
      assert.ok(inFlightAtKill > 0, 'LLM calls were in flight at the kill');
      // Requests already on the wire reach the server before the count.
      await llmConnectionsClosed();
      const requestsBeforeRestart = llm.stats().requests;
      const firstPid = `${first.child.pid}@`;
      const second = startWorker(temporal.address, taskQueue);
      try {
        const summary = (await handle.result()) as RunSummary;
        assert.equal(summary.written, total);
        assertDataset(await readDialogues(outDir), {
          count: total,
          turns: 2,
          intents: ['transaction', 'educational', 'problem_solving'],
        });
        // Every call the first worker finished is used, never paid for again: the new worker's calls
        // are exactly the activities it completed.
        const intents = ['transaction', 'educational', 'problem_solving'];
        const activities = await completedLlmActivities(
          client,
          intents.map((i) => `${runId}.${i}`),
        );
        const byFirst = activities.filter((a) => a.identity.startsWith(firstPid)).length;
        assert.ok(byFirst > 0, 'the first worker finished calls before the kill');
        assert.equal(activities.length, 2 * total, 'one completed LLM activity per call the run needs');
        const afterRestart = llm.stats().requests - requestsBeforeRestart;
        assert.equal(
          afterRestart,
          2 * total - byFirst,
          `${afterRestart} calls after the restart; the first worker finished ${byFirst} of ${2 * total}`,
        );
        // Paid before the kill without its result reaching Temporal: a call in flight at the endpoint,
        // or one answered whose completion had not reached the server yet. Either way its activity was
        // running on the killed worker, so it was tried again: at most one lost call per retried activity.
        const lost = requestsBeforeRestart - byFirst;
        const retried = activities.filter((a) => a.attempt > 1);
        assert.ok(
          lost <= retried.length,
          `${lost} calls lost at the kill, ${retried.length} activities retried (${inFlightAtKill} in flight)`,
        );
        for (const a of retried) assert.equal(a.attempt, 2, `${a.type}: only the kill failed an attempt`);
      } finally {
        second.child.kill('SIGTERM');
        await second.done;
      }
    } finally {
      first.child.kill('SIGKILL');
      await connection.close();
    }
  });

  test('durability: a SIGKILLed Temporal server restarted on its file finishes the run with nothing lost', async () => {
    const dir = await tempDir('cc-kill-server-');
    const outDir = join(dir, 'out');
    const server = await startRestartableServer(dir);
    const taskQueue = unique('kill-server');
    const runId = unique('kill-server');
    const total = 3 * 10;
    llm.resetStats();
    const worker = startWorker(server.address, taskQueue);
    try {
      let connection = await Connection.connect({ address: server.address });
      await new Client({ connection }).workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [runInput(runId, outDir, 10)],
      });
      await waitFor(
        async () => (await countLines(join(outDir, 'dialogs.jsonl'))) >= total * 0.3,
        180_000,
        '30% written',
      );
      await connection.close();
      await server.killAndRestart();
      connection = await Connection.connect({ address: server.address });
      const client = new Client({ connection });
      const summary = (await client.workflow.getHandle(runId).result()) as RunSummary;
      assert.equal(summary.written, total);
      assertDataset(await readDialogues(outDir), {
        count: total,
        turns: 2,
        intents: ['transaction', 'educational', 'problem_solving'],
      });
      // No new call starts while the server is down: only calls whose results it never recorded (in
      // flight at the kill, or answered while it was down) are paid again, each as a retried attempt.
      const activities = await completedLlmActivities(
        client,
        ['transaction', 'educational', 'problem_solving'].map((i) => `${runId}.${i}`),
      );
      await connection.close();
      assert.equal(activities.length, 2 * total, 'one completed LLM activity per call the run needs');
      const retries = activities.reduce((n, a) => n + a.attempt - 1, 0);
      const stages = llm.stats().stages;
      const calls = stages.skeleton + stages.responses + stages.judge;
      assert.ok(
        calls <= 2 * total + retries,
        `${calls} LLM calls for ${2 * total} needed: more than the ${retries} retried attempts explain`,
      );
    } finally {
      worker.child.kill('SIGTERM');
      await worker.done;
      await server.stop();
    }
  });
});

describe('durability of the embedded mode', () => {
  test('durability: killing `consistent-chat generate --judge` and running the same command again resumes the run; no dialogue is judged twice', async () => {
    const outDir = await tempDir('cc-kill-cli-');
    const total = 9 * 4;
    const args = generateArgs(outDir, { dialogs: 4, turns: 2, concurrency: 6 }).concat('--judge');
    const env = { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' };
    llm.resetStats();
    const first = spawnCli(args, env);
    await waitFor(
      async () => (await countLines(join(outDir, 'dialogs.jsonl'))) >= total * 0.3,
      180_000,
      '30% written',
    );
    first.child.kill('SIGKILL');
    await first.done;
    const runFile = JSON.parse(await readFile(join(outDir, 'run.json'), 'utf8')) as { runId: string };
    const second = await spawnCli(args, env).done;
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`resuming run ${runFile.runId}`));
    assert.match(second.stdout, new RegExp(`${total}/${total} dialogues written, 0 failed`));
    const records = await readDialogues(outDir);
    assertDataset(records, { count: total, turns: 2, intents: INTENT_IDS });
    assert.ok(
      records.every((r) => r.judge?.score !== undefined),
      'every dialogue judged',
    );
    // Finished calls are not paid again. A call is finished when Temporal recorded its result: one in
    // flight at the kill, or answered but not yet reported by the dying process, is paid again, and
    // its activity shows the retry. The run's own history (its embedded server's database) tells.
    const stages = llm.stats().stages;
    const calls = stages.skeleton + stages.responses + stages.judge;
    const history = await tempDir('cc-kill-cli-history-');
    const server = await startDevServer({
      dbFile: join(outDir, '.temporal', 'temporal.db'),
      stateFile: join(history, 'server.json'),
      logFile: join(history, 'server.log'),
    });
    try {
      const connection = await Connection.connect({ address: server.address });
      const client = new Client({ connection });
      const activities = await completedLlmActivities(
        client,
        INTENT_IDS.map((i) => `${runFile.runId}.${i}`),
      );
      // The judge's calibration, scored by the run itself before its intents: once, despite the kill.
      const calibration = await completedLlmActivities(client, [runFile.runId]);
      await connection.close();
      assert.equal(activities.length, 3 * total, 'one completed LLM activity per call the run needs');
      assert.equal(calibration.length, CALIBRATION_SET.length, 'the judge calibrated once');
      const judged = activities.filter((a) => a.type === 'judgeDialogue').length;
      assert.equal(judged, total, 'each dialogue judged once');
      const all = [...activities, ...calibration];
      const retries = all.reduce((n, a) => n + a.attempt - 1, 0);
      assert.ok(
        calls <= all.length + retries,
        `${calls} LLM calls for ${all.length} needed: more than the ${retries} retried attempts explain`,
      );
      for (const a of all) assert.ok(a.attempt <= 2, `${a.type}: only the kill failed an attempt`);
    } finally {
      await server.stop();
    }
  });
});
