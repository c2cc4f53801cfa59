/**
 * Operating a live run from the CLI: status, pause, resume, a second `generate` on the same run,
 * cancellation that aborts LLM calls in flight, and a worker that drains on SIGTERM.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import type { RunInput } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { runCli, spawnCli, generateArgs } from '../helpers/cli';
import { readDialogues, readFailures } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { loadScaled, pendingActivities, sleep, waitFor } from '../helpers/wait';

const API_KEY = 'sk-control-key';
let llm: LlmServer;
let temporal: TestDevServer;

before(async () => {
  llm = await startLlmServer({ apiKey: API_KEY, latency: { meanMs: 600, jitter: 0.2 } });
  temporal = await devServer();
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

const env = () => ({ OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: temporal.address });
async function lines(file: string): Promise<number> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

describe('control', () => {
  test('control: status, pause, resume and a second generate that attaches instead of duplicating work', async () => {
    const out = await tempDir('cc-control-');
    const args = generateArgs(out, {
      dialogs: 8,
      turns: 2,
      intents: 'transaction,educational',
      concurrency: 2,
    });
    const first = spawnCli(args, env());
    try {
      await waitFor(async () => (await lines(join(out, 'dialogs.jsonl'))) >= 1, 180_000, 'a first dialogue');
      const { runId } = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { runId: string };
      // Replies are held until the pause is acknowledged: a loaded machine cannot finish the run first.
      llm.configure({ hold: true });

      const pause = await runCli(['pause', runId], env());
      assert.equal(pause.code, 0, pause.stderr);
      // The run's acknowledged state, not just that a message was sent.
      assert.match(pause.stdout, /^paused \S+: paused, concurrency 2 over [12] running intents? \(/);
      const status = await runCli(['status', runId], env());
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /RUNNING/);
      assert.match(
        status.stdout,
        /transaction .* written, \d+ failed, \d+ in flight, tokens \d+\+\d+, paused/,
      );
      llm.configure({ hold: false });
      // Quiet means no call at the endpoint and none scheduled at the server that a worker could still
      // pick up (a loaded machine can hand out a task scheduled before the pause late).
      const connection = await Connection.connect({ address: temporal.address });
      try {
        const intents = ['transaction', 'educational'].map((i) => `${runId}.${i}`);
        await waitFor(
          async () =>
            llm.stats().inFlight === 0 &&
            (await pendingActivities(new Client({ connection }), intents)) === 0,
          180_000,
          'calls in flight to finish',
        );
      } finally {
        await connection.close();
      }
      const calls = llm.stats().requests;
      await sleep(2_000);
      assert.equal(llm.stats().requests, calls, 'no new LLM call while paused');
      assert.ok((await lines(join(out, 'dialogs.jsonl'))) < 16, 'the run was still going when paused');

      // A second generate on the same directory attaches to the run and ends with the same summary.
      const second = spawnCli(args, env());
      let secondErr = '';
      second.child.stderr!.on('data', (d: Buffer) => (secondErr += d.toString()));
      await waitFor(() => secondErr.includes('attached to run'), 180_000, 'the second generate to attach');
      await runCli(['resume', runId], env());
      const [a, b] = await Promise.all([first.done, second.done]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, /16\/16 dialogues written/);
      const records = await readDialogues(out);
      assert.equal(records.length, 16);
      assert.equal(new Set(records.map((r) => r.id)).size, 16);

      const finished = await runCli(['status', runId], env());
      assert.match(finished.stdout, /COMPLETED/);
      assert.match(finished.stdout, /16\/16 dialogues written/);
    } finally {
      llm.configure({ hold: false });
      first.child.kill('SIGKILL');
    }
  });

  test('control: cancel aborts LLM calls in flight and leaves valid output; the same command again says the run cannot be resumed and what to do', async () => {
    const out = await tempDir('cc-cancel-');
    llm.configure({ latency: { meanMs: 600, tokensPerSecond: 20 } });
    const args = generateArgs(out, { dialogs: 20, turns: 4, concurrency: 9 });
    const run = { ...spawnCli(args, env()), args };
    try {
      await waitFor(async () => (await lines(join(out, 'dialogs.jsonl'))) >= 2, 180_000, 'two dialogues');
      const { runId } = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { runId: string };
      await waitFor(() => llm.stats().inFlight > 0, 180_000, 'calls in flight');
      const abortedBefore = llm.stats().aborted;
      const cancel = await runCli(['cancel', runId], env());
      assert.equal(cancel.code, 0, cancel.stderr);
      const result = await run.done;
      assert.equal(result.code, 3, 'a cancelled run exits 3');
      assert.match(result.stderr, /cancelled/);
      await waitFor(() => llm.stats().inFlight === 0, loadScaled(5_000), 'in-flight calls to be aborted');
      assert.ok(llm.stats().aborted > abortedBefore, 'calls in flight were aborted, not left to finish');
      const records = await readDialogues(out); // throws on a partial or invalid line
      assert.ok(records.length >= 2 && records.length < 180);
      assert.deepEqual(await readFailures(out), []);

      // The same command again cannot resume a cancelled run: it says so and what to do instead.
      const calls = llm.stats().requests;
      const again = await runCli(run.args, env());
      assert.equal(again.code, 3, again.stderr);
      assert.doesNotMatch(again.stderr, /resuming|written, \d+ failed/, 'no resume, no stale counts');
      assert.match(again.stderr, new RegExp(`run ${runId} was cancelled earlier and cannot be resumed`));
      assert.match(again.stderr, /start a new run in another directory: the same command with another --out/);
      assert.equal(llm.stats().requests, calls, 'no LLM call');
      assert.equal((await readDialogues(out)).length, records.length, 'the records stay');
    } finally {
      run.child.kill('SIGKILL');
      llm.configure({ latency: { meanMs: 600, jitter: 0.2 } });
    }
  });

  test('control: pause, resume, then cancel ends the run without an unhandled CancelledFailure or a failed workflow task in its log', async () => {
    const out = await tempDir('cc-pause-cancel-');
    const args = generateArgs(out, {
      dialogs: 100,
      turns: 1,
      intents: 'transaction,educational',
      concurrency: 4,
    });
    // The SDK's warnings go to DIR/consistent-chat.log (the worker runs inside generate).
    const run = spawnCli(args, { ...env(), LOG_LEVEL: 'WARN' });
    try {
      const written = () => lines(join(out, 'dialogs.jsonl'));
      await waitFor(async () => (await written()) >= 2, 180_000, 'two dialogues');
      const { runId } = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { runId: string };
      assert.equal((await runCli(['pause', runId], env())).code, 0);
      const resume = await runCli(['resume', runId], env());
      assert.equal(resume.code, 0, resume.stderr);
      // Cancelled while dialogues are going again, some of them waiting in a storage batch.
      const before = await written();
      await waitFor(async () => (await written()) > before, 180_000, 'a dialogue after the resume');
      const cancel = await runCli(['cancel', runId], env());
      assert.equal(cancel.code, 0, cancel.stderr);
      const result = await run.done;
      assert.equal(result.code, 3, result.stderr);
      const log = await readFile(join(out, 'consistent-chat.log'), 'utf8').catch(() => '');
      assert.doesNotMatch(log, /Failing workflow task|Unhandled Promise rejection/, log.slice(0, 2_000));
      assert.ok((await written()) < 200, 'the run was cancelled before it finished');
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  test('control: a worker stops taking work on SIGTERM and lets calls in flight finish', async () => {
    const taskQueue = unique('drain');
    const runId = unique('drain');
    const outDir = await tempDir('cc-drain-');
    llm.configure({ latency: { meanMs: 1_500 } });
    const worker = spawnCli(['worker', '--task-queue', taskQueue, '--out-root', outDir], env());
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const input: RunInput = {
        runId,
        outDir,
        model: 'test-model',
        intents: ['simulation'],
        numDialogsPerIntent: 6,
        numTurnsPerDialog: 2,
        concurrency: 3,
      };
      const handle = await new Client({ connection }).workflow.start(WORKFLOW_TYPES.run, {
        workflowId: runId,
        taskQueue,
        args: [input],
      });
      llm.resetStats();
      await waitFor(() => llm.stats().inFlight >= 3, 180_000, 'three calls in flight');
      worker.child.kill('SIGTERM');
      const exit = await worker.done;
      assert.equal(exit.code, 143, `stopped by SIGTERM: ${exit.stderr}`);
      const stats = llm.stats();
      assert.equal(stats.aborted, 0, 'no call was cut');
      assert.ok(stats.completed >= 3, `${stats.completed} calls completed during the drain`);
      const replacement = spawnCli(['worker', '--task-queue', taskQueue, '--out-root', outDir], env());
      try {
        await handle.result();
      } finally {
        replacement.child.kill('SIGTERM');
        await replacement.done;
      }
      assert.equal((await readDialogues(outDir)).length, 6);
    } finally {
      worker.child.kill('SIGKILL');
      await connection.close();
      llm.configure({ latency: { meanMs: 600, jitter: 0.2 } });
    }
  });
});

describe('hostile input', () => {
  test('hostile input: option files that are oversized, malformed, not UTF-8 or unknown are refused in one line', async () => {
    const dir = await tempDir('cc-config-');
    const files: [string, string | Buffer, RegExp][] = [
      ['big.yaml', `# ${'x'.repeat(1024 * 1024 + 10)}\n`, /--config: .*bytes; the limit/],
      ['broken.yaml', 'numTurnsPerDialog: [1, 2\n', /--config: .*not valid YAML/],
      [
        'latin1.yaml',
        Buffer.from([0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x3a, 0x20, 0xe9, 0x0a]),
        /--config: .*not valid UTF-8/,
      ],
      ['unknown.yaml', 'apiKey: sk-nope\n', /--config: unknown setting "apiKey"/],
      ['list.yaml', '- 1\n- 2\n', /--config: .*mapping/],
      ['absurd.yaml', 'numDialogsPerIntent: 1e15\n', /--config numDialogsPerIntent: /],
    ];
    for (const [name, content, pattern] of files) {
      await writeFile(join(dir, name), content);
      const result = await runCli(
        ['generate', '--out', join(dir, `out-${name}`), '--model', 'test-model', '--config', join(dir, name)],
        env(),
      );
      assert.equal(result.code, 2, `${name}: ${result.stderr}`);
      assert.match(result.stderr, pattern, name);
      assert.equal(result.stderr.trim().split('\n').length, 1, name);
    }
    await writeFile(
      join(dir, 'good.yaml'),
      'numDialogsPerIntent: 1\nnumTurnsPerDialog: 2\nintents: [transaction]\n',
    );
    const good = await runCli(
      [
        'generate',
        '--out',
        join(dir, 'out-good'),
        '--model',
        'test-model',
        '--config',
        join(dir, 'good.yaml'),
      ],
      env(),
    );
    assert.equal(good.code, 0, good.stderr);
    assert.equal((await readDialogues(join(dir, 'out-good'))).length, 1);
  });

  test('hostile input: a base URL that is not an LLM endpoint, or a refused key, stops before any work', async () => {
    const web = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not here</html>');
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    try {
      const dir = await tempDir('cc-url-');
      const notLlm = await runCli(
        [
          'generate',
          '--out',
          join(dir, 'a'),
          '--model',
          'test-model',
          '--base-url',
          `http://127.0.0.1:${(web.address() as AddressInfo).port}/v1`,
        ],
        env(),
      );
      assert.equal(notLlm.code, 2, notLlm.stderr);
      assert.match(notLlm.stderr, /--base-url: .*does not answer like an OpenAI-compatible endpoint/);
      const refused = await runCli(['generate', '--out', join(dir, 'b'), '--model', 'test-model'], {
        ...env(),
        OPENAI_API_KEY: 'sk-wrong',
      });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /OPENAI_API_KEY: .*refused the key \(401\)/);
      const closed = await runCli(
        ['generate', '--out', join(dir, 'c'), '--model', 'test-model', '--base-url', 'http://127.0.0.1:9/v1'],
        env(),
      );
      assert.equal(closed.code, 2);
      assert.match(closed.stderr, /--base-url: cannot reach/);
    } finally {
      web.close();
    }
  });
});
