/**
 * Does a small urgent run get ahead of a large one on one worker pool? A dev server with or without
 * the new matcher (`--fair` sets matching.useNewMatcher and matching.enableFairness), one worker with 2
 * activity slots, a large run (backlog of LLM tasks), then a small run with priority 1. Prints the small
 * run's wall time. `node --import tsx bench/fair-share.ts [--fair] [--no-priority]` (the control: no
 * priority or fairness key on either run)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../src/client/dev-server';
import { WORKFLOW_TYPES } from '../src/shared/constants';
import type { RunInput } from '../src/run/schemas';
import { spawnCli } from '../test/helpers/cli';
import { tempDir } from '../test/helpers/temporal';
import { startLlmServer } from '../test/llm-server/server';

async function main() {
  const fair = process.argv.includes('--fair');
  // The control: neither run carries a priority or a fairness key, so the server has no reason to
  // hand the small run's tasks out before the large run's backlog.
  const plain = process.argv.includes('--no-priority');
  const root = await tempDir('cc-fair-bench-');
  const server = await startDevServer({
    dbFile: `${root}/t.db`,
    stateFile: `${root}/s.json`,
    logFile: `${root}/l.log`,
    dynamicConfig: fair ? { 'matching.useNewMatcher': true, 'matching.enableFairness': true } : undefined,
  });
  const llm = await startLlmServer({ apiKey: 'sk-bench-0123456789abcdef', latency: { meanMs: 500 } });
  const worker = spawnCli(
    ['worker', '--task-queue', 'fair', '--out-root', root, '--max-concurrent-calls', '2'],
    {
      TEMPORAL_ADDRESS: server.address,
      OPENAI_API_KEY: 'sk-bench-0123456789abcdef',
      OPENAI_BASE_URL: llm.url,
    },
  );
  let err = '';
  worker.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  while (!err.includes('worker on ')) await new Promise((r) => setTimeout(r, 200));
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const run = (runId: string, n: number, concurrency: number): RunInput => ({
    runId,
    outDir: `${root}/${runId}`,
    model: 'test-model',
    intents: ['transaction'],
    numDialogsPerIntent: n,
    numTurnsPerDialog: 1,
    concurrency,
  });
  if (process.argv.includes('--weights')) await weightedShare(client, run);
  else await urgentBehindLarge(client, run, fair, plain);
  worker.child.kill('SIGTERM');
  await worker.done;
  await client.connection.close();
  await llm.close();
  await server.stop();
}
type RunOf = (runId: string, n: number, concurrency: number) => RunInput;

/** A 2-dialogue run with priority 1 started 3 s after an 80-dialogue run: the small run's wall time. */
async function urgentBehindLarge(client: Client, run: RunOf, fair: boolean, plain: boolean): Promise<void> {
  const big = await client.workflow.start(WORKFLOW_TYPES.run, {
    workflowId: 'big',
    taskQueue: 'fair',
    args: [run('big', 80, 64)],
    ...(plain ? {} : { priority: { priorityKey: 3, fairnessKey: 'big' } }),
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const started = Date.now();
  await client.workflow.execute(WORKFLOW_TYPES.run, {
    workflowId: 'small',
    taskQueue: 'fair',
    args: [run('small', 2, 2)],
    ...(plain ? {} : { priority: { priorityKey: 1, fairnessKey: 'small' } }),
  });
  const smallMs = Date.now() - started;
  await big.result();
  console.log(
    JSON.stringify({ fair, priority: !plain, smallRunMs: smallMs, bigRunMs: Date.now() - started + 3_000 }),
  );
}

/**
 * Two runs of 80 dialogues started together with fairness keys of weight 3 and 1: the share of the
 * workers each had, as dialogues written when the first of them finished.
 */
async function weightedShare(client: Client, run: RunOf): Promise<void> {
  const start = (id: string, weight: number) =>
    client.workflow.start(WORKFLOW_TYPES.run, {
      workflowId: id,
      taskQueue: 'fair',
      args: [run(id, 80, 64)],
      priority: { priorityKey: 3, fairnessKey: id, fairnessWeight: weight },
    });
  const heavy = await start('heavy', 3);
  const light = await start('light', 1);
  const first = await Promise.race([heavy.result().then(() => 'heavy'), light.result().then(() => 'light')]);
  const written = async (id: string) =>
    (await readFile(join(root(run), id, 'dialogs.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
      .length;
  const shares = { heavy: await written('heavy'), light: await written('light') };
  await Promise.all([heavy.result(), light.result()]);
  console.log(JSON.stringify({ weights: { heavy: 3, light: 1 }, firstDone: first, writtenThen: shares }));
}

/** The directory the runs write under (their outDir's parent). */
const root = (run: RunOf) => join(run('x', 1, 1).outDir, '..');

void main();
