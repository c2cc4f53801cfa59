/**
 * Worker Deployment Versioning on a real dev server, the way the README's upgrade procedure runs it:
 * `worker` processes of build A serve a run, a worker of build B starts mid-run, the operator makes B
 * current with the Temporal CLI, A is stopped once nothing is left on it, and the run finishes with every
 * record written once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { decodeVersioningBehavior } from '@temporalio/common';
import { findTemporalCli } from '../../src/client/dev-server';
import { intentWorkflowId } from '../../src/workflows/run';
import type { IntentId } from '../../src/method/intents';
import type { RunSummary } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { spawnCli, type CliResult } from '../helpers/cli';
import { assertDataset, readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { sleep, waitFor } from '../helpers/wait';

const API_KEY = 'sk-test-versioning-0123456789';
const INTENTS: IntentId[] = ['problem_solving', 'educational', 'exploratory'];
const PER_INTENT = 24;

let temporal: TestDevServer;
let llm: LlmServer;
let client: Client;

before(async () => {
  temporal = await devServer();
  // Slow replies while the upgrade happens, so the run is still in its first half when B takes over.
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 700, jitter: 0.2 } });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
});
after(async () => {
  await client?.connection.close();
  await llm?.close();
  await temporal?.dispose();
});

interface Version {
  buildId: string | undefined;
  behavior: string | undefined;
}
async function versionOf(workflowId: string): Promise<Version> {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  const info = raw.workflowExecutionInfo?.versioningInfo;
  return {
    buildId: info?.deploymentVersion?.buildId ?? undefined,
    behavior: decodeVersioningBehavior(info?.behavior),
  };
}

async function deployment(name: string) {
  try {
    const { workerDeploymentInfo } = await client.workflowService.describeWorkerDeployment({
      namespace: 'default',
      deploymentName: name,
    });
    return {
      current: workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId ?? undefined,
      versions: (workerDeploymentInfo?.versionSummaries ?? []).map((v) => v.deploymentVersion?.buildId),
    };
  } catch {
    return { current: undefined, versions: [] };
  }
}

/** Runs the real Temporal CLI against the test server. */
const temporalCli = (...args: string[]) =>
  promisify(execFile)(findTemporalCli()!, [...args, '--address', temporal.address]);

/**
 * A fresh deployment, task queue and run for one test, and `worker` processes of its builds started
 * the way the README starts them. `stopWorkers` ends every one still running, pass or fail.
 */
async function upgradeScenario() {
  const taskQueue = unique('tq-ver');
  const deploymentName = unique('dep').replace(/[^A-Za-z0-9_-]/g, '-');
  const root = await tempDir('cc-ver-');
  const runId = unique('ver');
  const env = { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: temporal.address };
  const workers: ReturnType<typeof spawnCli>[] = [];
  return {
    taskQueue,
    deploymentName,
    runId,
    outDir: join(root, 'run'),
    intentIds: INTENTS.map((i) => intentWorkflowId(runId, i)),
    startWorker: (buildId: string) => {
      const worker = spawnCli(
        [
          'worker',
          '--task-queue',
          taskQueue,
          '--deployment-name',
          deploymentName,
          '--build-id',
          buildId,
          '--out-root',
          root,
        ],
        env,
      );
      workers.push(worker);
      return worker;
    },
    stopWorkers: async () => {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.done));
    },
  };
}

test('versioning: a run in progress moves from build A to build B, and every record lands once', async () => {
  const { taskQueue, deploymentName, runId, outDir, intentIds, startWorker, stopWorkers } =
    await upgradeScenario();
  const workerA = startWorker('A');
  try {
    // The first version of a fresh deployment makes itself current.
    await waitFor(async () => (await deployment(deploymentName)).current === 'A', 180_000, 'A to be current');

    const handle = await client.workflow.start('consistentChatRun', {
      taskQueue,
      workflowId: runId,
      args: [
        {
          outDir,
          model: 'test-model',
          intents: INTENTS,
          numDialogsPerIntent: PER_INTENT,
          numTurnsPerDialog: 2,
          concurrency: INTENTS.length,
          retry: {
            maximumAttempts: 5,
            initialIntervalMs: 100,
            backoffCoefficient: 2,
            maximumIntervalMs: 1_000,
          },
        },
      ],
    });
    await waitFor(async () => (await readDialogues(outDir)).length >= 3, 180_000, 'records written on A');
    assert.deepEqual(await versionOf(runId), { buildId: 'A', behavior: 'AUTO_UPGRADE' });
    for (const id of intentIds) assert.deepEqual(await versionOf(id), { buildId: 'A', behavior: 'PINNED' });

    // Replies are held while B starts, however long a loaded machine takes: the run cannot finish on A.
    llm.configure({ hold: true });
    // B starts beside A; it is listed but takes no run until the operator makes it current.
    const workerB = startWorker('B');
    let stderrB = '';
    workerB.child.stderr!.on('data', (d: Buffer) => (stderrB += d.toString()));
    await waitFor(
      () => stderrB.includes('is not the current version'),
      180_000,
      'B to report it is not current',
    );
    assert.equal((await deployment(deploymentName)).current, 'A');
    const writtenBeforeUpgrade = (await readDialogues(outDir)).length;
    assert.ok(writtenBeforeUpgrade < INTENTS.length * PER_INTENT, 'the run is still in progress');
    llm.configure({ hold: false });

    // The README's upgrade step, with the real Temporal CLI.
    await temporalCli(
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      deploymentName,
      '--build-id',
      'B',
      '--yes',
    );
    // Each intent drains what it has in flight and continues as new on B; the run follows at its next task.
    let versions: Version[] = [];
    await waitFor(
      async () => {
        versions = await Promise.all(intentIds.map(versionOf));
        return versions.every((v) => v.buildId === 'B');
      },
      90_000,
      'every intent to be on B',
      500,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; versions: ${JSON.stringify(versions)}`);
    });
    for (const id of intentIds)
      assert.equal((await versionOf(id)).behavior, 'PINNED', `${id} stays pinned on B`);
    // The README's check before retiring A: no pinned workflow still running on it.
    const { stdout } = await temporalCli(
      'workflow',
      'count',
      '--query',
      `TemporalWorkerDeploymentVersion='${deploymentName}:A' AND TemporalWorkflowVersioningBehavior='Pinned' AND ExecutionStatus='Running'`,
    );
    assert.match(stdout, /Total: 0\b/);

    // Nothing is left on A: retire it.
    workerA.child.kill('SIGTERM');
    const exitA: CliResult = await workerA.done;
    assert.equal(exitA.code, 143, exitA.stderr); // stopped by SIGTERM, after draining
    llm.configure({ latency: { meanMs: 5 } });

    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.written, INTENTS.length * PER_INTENT);
    assert.equal(summary.failed, 0);
    assert.equal((await versionOf(runId)).buildId, 'B', 'the run followed the current version');
    for (const intent of summary.intents)
      assert.ok(intent.continuedAsNew >= 1, `${intent.intent} continued as new onto B`);
    assertDataset(await readDialogues(outDir), {
      count: INTENTS.length * PER_INTENT,
      turns: 2,
      intents: INTENTS,
    });
    assert.deepEqual(await readFailures(outDir), []);
    const text = await readFile(join(outDir, 'dialogs.jsonl'), 'utf8');
    assert.ok(!text.includes(API_KEY));
  } finally {
    llm.configure({ hold: false });
    await stopWorkers();
  }
});

test('versioning: intents stranded on a stopped build are moved to the current one with update-options', async () => {
  llm.configure({ latency: { meanMs: 700, jitter: 0.2 } });
  const { taskQueue, deploymentName, runId, outDir, intentIds, startWorker, stopWorkers } =
    await upgradeScenario();
  const workerA = startWorker('A');
  try {
    await waitFor(async () => (await deployment(deploymentName)).current === 'A', 180_000, 'A to be current');
    const handle = await client.workflow.start('consistentChatRun', {
      taskQueue,
      workflowId: runId,
      args: [
        {
          outDir,
          model: 'test-model',
          intents: INTENTS,
          numDialogsPerIntent: PER_INTENT,
          numTurnsPerDialog: 2,
        },
      ],
    });
    await waitFor(async () => (await readDialogues(outDir)).length >= 3, 180_000, 'records written on A');
    // The mistake: A is stopped before anything moved off it.
    workerA.child.kill('SIGTERM');
    await workerA.done;
    llm.configure({ latency: { meanMs: 5 } });
    startWorker('B');
    await waitFor(async () => (await deployment(deploymentName)).versions.includes('B'), 180_000, 'B listed');
    await temporalCli(
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      deploymentName,
      '--build-id',
      'B',
      '--yes',
    );
    // Without a worker of A no intent can learn that B is current: they stay pinned where they are.
    await sleep(3_000);
    const stranded = await Promise.all(intentIds.map(versionOf));
    assert.ok(
      stranded.every((v) => v.buildId === 'A' && v.behavior === 'PINNED'),
      `stranded on A: ${JSON.stringify(stranded)}`,
    );
    const writtenWhileStranded = (await readDialogues(outDir)).length;
    assert.ok(writtenWhileStranded < INTENTS.length * PER_INTENT);
    // The README's recovery: everything still on A follows the current version from its next task.
    await temporalCli(
      'workflow',
      'update-options',
      '--query',
      `TemporalWorkerDeploymentVersion='${deploymentName}:A' AND ExecutionStatus='Running'`,
      '--versioning-override-behavior',
      'auto_upgrade',
      '--yes',
    );
    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.written, INTENTS.length * PER_INTENT);
    assert.equal(summary.failed, 0);
    assertDataset(await readDialogues(outDir), {
      count: INTENTS.length * PER_INTENT,
      turns: 2,
      intents: INTENTS,
    });
    for (const id of intentIds) assert.equal((await versionOf(id)).buildId, 'B', `${id} finished on B`);
  } finally {
    await stopWorkers();
  }
});
