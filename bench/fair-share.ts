/**
 * Does a small urgent run get ahead of a large one on one worker pool? A dev server with or without
 * the new matcher (`--fair` sets matching.useNewMatcher and matching.enableFairness), one worker with 2
 * activity slots, a large run (backlog of LLM tasks), then a small run with priority 1. Prints the small
 * run's wall time. `node --import tsx bench/fair-share.ts [--fair]`
 */
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../src/client/dev-server';
import { WORKFLOW_TYPES } from '../src/shared/constants';
import type { RunInput } from '../src/run/schemas';
import { spawnCli } from '../test/helpers/cli';
import { tempDir } from '../test/helpers/temporal';
import { startLlmServer } from '../test/llm-server/server';

async function main() {
  const fair = process.argv.includes('--fair');
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
  const big = await client.workflow.start(WORKFLOW_TYPES.run, {
    workflowId: 'big',
    taskQueue: 'fair',
    args: [run('big', 80, 64)],
    priority: { priorityKey: 3, fairnessKey: 'big' },
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const started = Date.now();
  await client.workflow.execute(WORKFLOW_TYPES.run, {
    workflowId: 'small',
    taskQueue: 'fair',
    args: [run('small', 2, 2)],
    priority: { priorityKey: 1, fairnessKey: 'small' },
  });
  const smallMs = Date.now() - started;
  await big.result();
  console.log(JSON.stringify({ fair, smallRunMs: smallMs, bigRunMs: Date.now() - started + 3_000 }));
  worker.child.kill('SIGTERM');
  await worker.done;
  await client.connection.close();
  await llm.close();
  await server.stop();
}
void main();
