/**
 * Exit codes and signals (issue 9 §4): SIGTERM ends `generate` in every state within its drain time plus a
 * few seconds, a second signal ends it at once, and `status` of a run that failed says why and exits 3.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { runCli, spawnCli, type CliResult, generateArgs } from '../helpers/cli';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { alive } from '../../src/shared/process';

let slow: LlmServer;
let silent: Server;
const sockets = new Set<Socket>();
let temporal: TestDevServer;
before(async () => {
  // Calls that never answer (no timer keeps this process alive): the second signal ends the drain.
  slow = await startLlmServer({ faults: { hang: 1 } });
  // Accepts and never answers: `generate` waits in its start-up check of the endpoint.
  silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  temporal = await devServer();
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent?.close(r));
  await slow?.close();
  await temporal?.dispose();
});

async function until(condition: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(condition(), 'condition reached in time');
}

/** Sends `signal` and returns the result with the time from the signal to the exit. */
async function signalAndWait(run: ReturnType<typeof spawnCli>, signal: NodeJS.Signals) {
  const sent = Date.now();
  run.child.kill(signal);
  const result: CliResult = await run.done;
  return { ...result, ms: Date.now() - sent };
}

describe('exit codes', () => {
  test('exit codes: SIGTERM during the start-up checks exits 143 at once and writes nothing', async () => {
    const out = join(await tempDir('cc-term-start-'), 'run');
    const port = (silent.address() as { port: number }).port;
    const run = spawnCli(
      ['generate', '--out', out, '--model', 'm', '--base-url', `http://127.0.0.1:${port}/v1`],
      {
        OPENAI_API_KEY: 'sk-x',
        TEMPORAL_ADDRESS: '',
      },
    );
    await until(() => sockets.size > 0);
    const result = await signalAndWait(run, 'SIGTERM');
    assert.equal(result.code, 143, result.stderr);
    assert.ok(result.ms < 5_000, `exited ${result.ms} ms after SIGTERM`);
    assert.equal(existsSync(out), false, 'nothing written');
  });

  test('exit codes: a second SIGTERM while calls drain exits 143 at once, and the embedded server goes with it', async () => {
    const out = await tempDir('cc-term-twice-');
    const run = spawnCli(generateArgs(out, { dialogs: 1, intents: 'transaction' }), {
      OPENAI_API_KEY: 'sk-x',
      OPENAI_BASE_URL: slow.url,
      TEMPORAL_ADDRESS: '',
    });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await until(() => slow.stats().inFlight > 0);
    const server = JSON.parse(await readFile(join(out, '.temporal', 'server.json'), 'utf8')) as {
      pid: number;
    };
    run.child.kill('SIGTERM');
    await until(() => /SIGTERM: stopping/.test(stderr), 10_000);
    assert.equal(run.child.exitCode, null, 'still draining the call in flight');
    const result = await signalAndWait(run, 'SIGTERM');
    assert.equal(result.code, 143, result.stderr);
    assert.ok(result.ms < 5_000, `exited ${result.ms} ms after the second SIGTERM`);
    await until(() => !alive(server.pid), 5_000);
  });

  test('exit codes: status of a run that ended badly prints why and exits 3; an unknown run is 2', async () => {
    const client = new Client({
      connection: await Connection.connect({ address: temporal.address }),
    });
    const runId = unique('cc-status-failed');
    const handle = await client.workflow.start('consistentChatRun', {
      workflowId: runId,
      taskQueue: unique('q'),
      args: [{}],
    });
    await handle.terminate('stopped by the operator for the test');
    await client.connection.close();
    const [failed, unknown] = await Promise.all([
      runCli(['status', runId, '--temporal-address', temporal.address]),
      runCli(['status', unique('no-such-run'), '--temporal-address', temporal.address]),
    ]);
    assert.equal(failed.code, 3, failed.stderr);
    assert.match(failed.stdout, /TERMINATED/);
    assert.match(failed.stdout, /why: .*stopped by the operator for the test/);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /^error: <run-id>: no run /);
  });
});
