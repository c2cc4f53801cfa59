/**
 * Records the histories that `replay.test.ts` replays: real runs on a real `temporal server start-dev`
 * with the real worker, against `test/llm-server`. Run it with the workflow code a release ships:
 *
 *   node --import tsx test/replay/record.ts [scenario ...]
 *
 * Each scenario writes one JSON file per workflow execution (the run, every intent, every run of a
 * continue-as-new chain) to `test/replay/histories/<scenario>/`. Keep scenarios small: a few
 * dialogues, 1–2 turns, so the files stay reviewable.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { generate, type GenerateOptions } from '../../src/client/generate';
import {
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  setConcurrencySignal,
  setConcurrencyUpdate,
} from '../../src/run/messages';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { CUSTOM_TAXONOMY } from '../helpers/taxonomy';
import { devServer, tempDir, type TestDevServer } from '../helpers/temporal';
import { HISTORIES_DIR, historyToJson, type RecordedHistory } from './histories';

const API_KEY = 'sk-replay-recorder-key';

interface Scenario {
  /** Lowers the server's continue-as-new suggestion so a small run continues as new. */
  lowHistoryLimit?: boolean;
  run: Partial<GenerateOptions['run']>;
  /** Sets up the LLM server before the run starts. */
  llm?: (llm: LlmServer) => void;
  /** Acts on the run while it goes (signals). */
  during?: (client: Client, runId: string, llm: LlmServer) => Promise<void>;
  /** After the run: sets up the LLM server and runs `generate --retry-failed` on it, recording the retry too. */
  retryFailed?: (llm: LlmServer) => void;
  /** Keeps the run workflow's history only: its intents' are large and hold nothing the scenario is about. */
  runOnly?: boolean;
  /** After the run: sets up the LLM server and runs `judge DIR` on it with this judge, recording the judge too. */
  judgeRecords?: { llm: (llm: LlmServer) => void; judge: NonNullable<GenerateOptions['run']['judge']> };
}

const retry = { maximumAttempts: 3, initialIntervalMs: 50, backoffCoefficient: 1, maximumIntervalMs: 50 };

/** Pauses the run once its calls have begun, and resumes it 1.5 s later. */
async function pauseMidRun(client: Client, runId: string): Promise<void> {
  await waitForCalls(client, runId);
  await client.workflow.getHandle(runId).signal(pauseSignal);
  await sleep(1_500);
  await client.workflow.getHandle(runId).signal(resumeSignal);
}

const BATCH_RUN: Scenario = {
  run: {
    intents: ['transaction'],
    numDialogsPerIntent: 3,
    numTurnsPerDialog: 1,
    mode: 'batch',
    batch: { pollInitialMs: 50, pollMaxMs: 200, maxAttempts: 4 },
  },
  llm: (llm) =>
    llm.configure({
      faults: {},
      alwaysFail: undefined,
      latency: { meanMs: 10 },
      batch: { failLines: 0.3, expireBatches: 0, failValidationBatches: 0, hold: false, stepMs: 10 },
    }),
};

const SCENARIOS: Record<string, Scenario> = {
  normal: {
    run: { intents: ['transaction', 'educational'], numDialogsPerIntent: 2, numTurnsPerDialog: 2 },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 20 } }),
  },
  'continue-as-new': {
    lowHistoryLimit: true,
    run: { intents: ['exploratory'], numDialogsPerIntent: 10, numTurnsPerDialog: 1, concurrency: 2 },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 10 } }),
  },
  'pause-resume': {
    run: {
      intents: ['transaction', 'simulation'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 1,
      concurrency: 2,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 300 } }),
    during: pauseMidRun,
  },
  // Recorded after the run's control moved to updates (patches late-child-gets-pause,
  // run-waits-for-handlers, ignore-bad-concurrency-signal).
  updates: {
    run: {
      intents: ['transaction', 'simulation'],
      numDialogsPerIntent: 3,
      numTurnsPerDialog: 1,
      concurrency: 2,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 200 } }),
    async during(client, runId) {
      const handle = client.workflow.getHandle(runId);
      await handle.executeUpdate(pauseUpdate);
      await handle.signal(setConcurrencySignal, 'bad' as unknown as number);
      await handle.executeUpdate(setConcurrencyUpdate, { args: [3] });
      await sleep(500);
      await handle.executeUpdate(resumeUpdate);
    },
  },
  // Recorded after intents began reporting progress to the run (patches intent-reports-progress,
  // run-memo-paused) and storage activities got summaries.
  'live-progress': {
    run: {
      intents: ['educational', 'exploratory'],
      numDialogsPerIntent: 3,
      numTurnsPerDialog: 1,
      concurrency: 2,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 150 } }),
    async during(client, runId) {
      await waitForCalls(client, runId);
      await client.workflow.getHandle(runId).executeUpdate(pauseUpdate);
      await sleep(300);
      await client.workflow.getHandle(runId).executeUpdate(resumeUpdate);
    },
  },
  // Recorded after intents began scheduling ahead of their share for the worker's gate (patch
  // worker-gate): the run tells its intents a lowered bound; an unusable reply is retried.
  'worker-gate': {
    run: {
      intents: ['transaction', 'health_consultation'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 1,
      concurrency: 4,
    },
    llm: (llm) =>
      llm.configure({ faults: { malformedJson: 0.15 }, alwaysFail: undefined, latency: { meanMs: 150 } }),
    async during(client, runId) {
      await waitForCalls(client, runId);
      await client.workflow.getHandle(runId).executeUpdate(setConcurrencyUpdate, { args: [2] });
    },
  },
  // Recorded after storage batches began waiting for more records while calls finish (patch
  // store-group-window): several dialogues finish within one window and are stored together.
  'store-group': {
    run: {
      intents: ['entertainment'],
      numDialogsPerIntent: 8,
      numTurnsPerDialog: 1,
      concurrency: 4,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 200, jitter: 0.5 } }),
  },
  // Recorded after intents began reporting their last start and the run stopped sharing with them
  // (patch finishing-intents), and reports went to one per 5 s (report-interval-5s): two intents, so
  // the first to finish gives its share to the other.
  'finishing-intents': {
    run: {
      intents: ['transaction', 'educational'],
      numDialogsPerIntent: 6,
      numTurnsPerDialog: 1,
      concurrency: 4,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 100, jitter: 0.8 } }),
  },
  // Recorded after intents stopped awaiting conditions that already hold (patch lean-dialogue-loop):
  // a pause mid-run takes the waiting path, the rest the direct one.
  'lean-loop': {
    run: {
      intents: ['information_retrieval', 'health_consultation'],
      numDialogsPerIntent: 5,
      numTurnsPerDialog: 1,
      concurrency: 3,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 300, jitter: 0.5 } }),
    during: pauseMidRun,
  },
  // Recorded for patch late-child-gets-pause: a pause that reaches the run while it is still starting
  // its children, so each child started unpaused is told afterwards.
  'late-child-pause': {
    run: {
      intents: ['transaction', 'educational', 'exploratory'],
      numDialogsPerIntent: 2,
      numTurnsPerDialog: 1,
      concurrency: 3,
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 50 } }),
    async during(client, runId) {
      await client.workflow.getHandle(runId).signal(pauseSignal);
      await sleep(1_000);
      await client.workflow.getHandle(runId).signal(resumeSignal);
    },
  },
  // Recorded when dialogues gained the judge stage (runs with `judge` only): a seeded sample judged,
  // some calls failing, so both a verdict and a judge kept as an error are in the history.
  judge: {
    run: {
      intents: ['transaction', 'educational'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 2,
      concurrency: 2,
      judge: { sample: 0.75 },
      retry: { ...retry, maximumAttempts: 1 },
    },
    llm: (llm) =>
      llm.configure({ faults: { serverError: 0.15 }, alwaysFail: undefined, latency: { meanMs: 20 } }),
  },
  // Recorded after a run with a judge began scoring the calibration set with it before its intents
  // (patch judge-calibration), some calls failing (the committed recording has one calibration dialogue
  // left unscored and one dialogue failed).
  'judge-calibration': {
    run: {
      intents: ['transaction'],
      numDialogsPerIntent: 2,
      numTurnsPerDialog: 1,
      concurrency: 2,
      judge: { sample: 1 },
      retry: { ...retry, maximumAttempts: 1 },
    },
    llm: (llm) =>
      llm.configure({ faults: { serverError: 0.1 }, alwaysFail: undefined, latency: { meanMs: 10 } }),
  },
  // Recorded after the run began asking the storage queue for its directory before any intent
  // (patch storage-check-first).
  'storage-check': {
    run: { intents: ['transaction'], numDialogsPerIntent: 2, numTurnsPerDialog: 1, concurrency: 2 },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 20 } }),
  },
  failures: {
    run: {
      intents: ['problem_solving'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 1,
      concurrency: 2,
      retry: { ...retry, maximumAttempts: 1 },
    },
    llm: (llm) =>
      llm.configure({ faults: { serverError: 0.4 }, alwaysFail: undefined, latency: { meanMs: 10 } }),
  },
  // Recorded after a finished run's last step began writing summary.json and run.json through the
  // storage queue (patch run-writes-files).
  'run-files': {
    run: { intents: ['transaction'], numDialogsPerIntent: 2, numTurnsPerDialog: 1, concurrency: 2 },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 20 } }),
  },
  // Recorded for the consistentChatRetry workflow (generate --retry-failed): a run whose every chat call
  // fails, then its retry with some calls failing, so the retry writes dialogues and fails some again.
  'retry-failed': {
    run: {
      intents: ['transaction'],
      numDialogsPerIntent: 4,
      numTurnsPerDialog: 1,
      concurrency: 2,
      retry: { ...retry, maximumAttempts: 1 },
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: 'serverError', latency: { meanMs: 10 } }),
    retryFailed: (llm) =>
      llm.configure({ faults: { serverError: 0.4 }, alwaysFail: undefined, latency: { meanMs: 10 } }),
  },
  // A run that grows its topics before its intent starts (patch topic-expansion): 3 dialogues of a
  // two-topic intent at one leaf each (4 with the margin), one `topics` call.
  'topic-expansion': {
    run: {
      intents: ['garden_club'],
      taxonomy: CUSTOM_TAXONOMY,
      numDialogsPerIntent: 3,
      numTurnsPerDialog: 1,
      concurrency: 2,
      expand: { dialoguesPerLeaf: 1, subtopicsPerCall: 4 },
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 20 } }),
  },
  // `expansion-full-calls/` holds this scenario recorded by the code before the patch (8f2eef0): one
  // call of 10, the old path where it differs in commands. Recording it again would take the new path.
  // The spread path (patch expansion-spread): 101 dialogues at 25 a leaf want 4 more leaves of the two
  // seeds and allow two calls, so both seeds are asked for 4 subtopics where the old path made one call
  // of 10: the paths differ in commands, not only in inputs. The run's history is the one concerned.
  'expansion-spread': {
    run: {
      intents: ['garden_club'],
      taxonomy: CUSTOM_TAXONOMY,
      numDialogsPerIntent: 101,
      numTurnsPerDialog: 1,
      concurrency: 32,
      expand: { dialoguesPerLeaf: 25, subtopicsPerCall: 10 },
    },
    runOnly: true,
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 5 } }),
  },
  // A batch-mode run (workflow type consistentChatBatchIntent): skeletons and responses through the
  // test server's Batch API, some lines failing so a later batch carries them.
  batch: BATCH_RUN,
  // The same run on the batch intent's patched paths (bounded retries, a failed batch cancelling the
  // wave's others, staged files cleared): every batch marker is asked for at the intent's start.
  'batch-patched': BATCH_RUN,
  // The same run with the server suggesting continue-as-new past 60 events and each step of the
  // provider's lifecycle taking 300 ms: the intent looks at its batches often enough to continue as new
  // with batches open (patch batch-continue-as-new), and carries them.
  'batch-continue-as-new': {
    lowHistoryLimit: true,
    run: BATCH_RUN.run,
    llm: (llm) => {
      BATCH_RUN.llm?.(llm);
      llm.configure({ batch: { stepMs: 300 } });
    },
  },
  // Recorded for the consistentChatJudgeRecords workflow (`judge DIR`): a run without a judge, then
  // its records judged afterwards with a seeded sample, some judge calls failing (kept unjudged).
  'judge-records': {
    run: {
      intents: ['transaction', 'educational'],
      numDialogsPerIntent: 3,
      numTurnsPerDialog: 2,
      concurrency: 2,
      retry: { ...retry, maximumAttempts: 1 },
    },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 10 } }),
    judgeRecords: {
      llm: (llm) =>
        llm.configure({ faults: { serverError: 0.2 }, alwaysFail: undefined, latency: { meanMs: 10 } }),
      judge: { sample: 0.8 },
    },
  },
  'systemic-stop': {
    run: { intents: ['emotional_support'], numDialogsPerIntent: 6, numTurnsPerDialog: 1, concurrency: 1 },
    llm: (llm) => llm.configure({ faults: {}, alwaysFail: undefined, latency: { meanMs: 10 } }),
    // After the start-up check (which the 401 would fail), every chat call is refused.
    async during(_client, _runId, llm) {
      llm.configure({ alwaysFail: 'auth' });
      await Promise.resolve();
    },
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the run's workflow exists and has children, so a signal reaches them mid-run. */
async function waitForCalls(client: Client, runId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const d = await client.workflow.getHandle(runId).describe();
      if (d.historyLength > 10) return;
    } catch {
      // not started yet
    }
    await sleep(100);
  }
}

async function recordScenario(name: string, scenario: Scenario, llm: LlmServer, temporal: TestDevServer) {
  const outDir = await tempDir('cc-replay-out-');
  const runId = `replay-${name}`;
  scenario.llm?.(llm);
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  try {
    let during: Promise<void> = Promise.resolve();
    const options: GenerateOptions = {
      run: { outDir, runId, model: 'test-model', retry, ...scenario.run },
      temporal: { address: temporal.address, taskQueue: `replay-${name}-${process.pid}` },
      llm: { baseURL: llm.url },
      env: { ...process.env, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: undefined },
      onStarted: () => void (during = scenario.during?.(client, runId, llm) ?? Promise.resolve()),
    };
    const { summary } = await generate(options);
    await during;
    console.log(`${name}: written ${summary.written}, failed ${summary.failed}`);
    const ids = [runId, ...(scenario.runOnly ? [] : summary.intents.map((i) => `${runId}.${i.intent}`))];
    if (scenario.retryFailed) {
      scenario.retryFailed(llm);
      const retried = await generate({
        ...options,
        retryFailed: true,
        onStarted: ({ runId: retryId }) => void ids.push(retryId),
      });
      console.log(`${name} retry: written ${retried.summary.written}, failed ${retried.summary.failed}`);
    }
    if (scenario.judgeRecords) {
      scenario.judgeRecords.llm(llm);
      const { judged } = await generate({
        ...options,
        run: { outDir, judge: scenario.judgeRecords.judge },
        judgeRecords: true,
        onStarted: ({ runId: judgeId }) => void ids.push(judgeId),
      });
      console.log(`${name} judge: judged ${judged?.judged}, failed ${judged?.failed}`);
    }

    const dir = join(HISTORIES_DIR, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const workflowId of ids) {
      const executions = [];
      for await (const e of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        executions.push(e);
      executions.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
      for (const [n, execution] of executions.entries()) {
        const history = await client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
        const recorded: RecordedHistory = {
          workflowId,
          workflowType: execution.type,
          history: historyToJson(history),
        };
        // The retry's id is `<runId>.retry-<hash of failures.jsonl>`: its file is `retry.N.json`; the
        // judge's `<runId>.judge`: `judge.N.json`.
        const part = workflowId.slice(runId.length + 1).replace(/^retry-.*/, 'retry');
        const file = `${workflowId === runId ? 'run' : part}.${n}.json`;
        await writeFile(join(dir, file), `${JSON.stringify(recorded, null, 1)}\n`);
        console.log(`  ${file}: ${history.events?.length ?? 0} events`);
      }
    }
  } finally {
    await client.connection.close();
    await rm(outDir, { recursive: true, force: true });
  }
}

async function main() {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(SCENARIOS);
  for (const name of names) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}`);
  const llm = await startLlmServer({ apiKey: API_KEY });
  const servers: TestDevServer[] = [];
  try {
    for (const name of names) {
      const scenario = SCENARIOS[name]!;
      // A fresh server per scenario: list queries see only this scenario's executions.
      const temporal = await devServer(
        scenario.lowHistoryLimit ? { 'limit.historyCount.suggestContinueAsNew': 60 } : undefined,
      );
      servers.push(temporal);
      try {
        await recordScenario(name, scenario, llm, temporal);
      } finally {
        await temporal.dispose();
      }
    }
  } finally {
    await llm.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
