/**
 * What a user sees in a terminal: Ctrl-C sent to the whole process group, start-up checks that write
 * nothing, an empty key, a closed stdout, --version and help texts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { buildProgram } from '../../src/client/cli';
import { runCli, spawnCli } from '../helpers/cli';
import { assertDataset, readDialogues } from '../helpers/output';
import { tempDir } from '../helpers/temporal';
import { alive } from '../../src/shared/process';

let llm: LlmServer;
before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 1_500 } });
});
after(async () => {
  await llm?.close();
});

const env = () => ({ OPENAI_API_KEY: 'sk-terminal', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' });
const SDK_NOISE = /\[(WARN|INFO)\]|Network error|retried|Worker state changed/;

describe('terminal', () => {
  test('terminal: SIGINT to the process group drains the worker before the server stops, without SDK noise, and the run resumes with the reply checks of both processes counted', async () => {
    const out = await tempDir('cc-sigint-');
    const args = ['generate', '--out', out, '--model', 'test-model', '--dialogs-per-intent', '3'];
    args.push('--turns', '1', '--intents', 'transaction,educational');
    // No LOG_LEVEL: what a user gets by default.
    const run = spawnCli(args, { ...env(), LOG_LEVEL: '' }, { detached: true });
    let stderr = '';
    run.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/started run/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr, /started run/);
    const server = JSON.parse(await readFile(join(out, '.temporal', 'server.json'), 'utf8')) as {
      pid: number;
    };
    await new Promise((r) => setTimeout(r, 1_000)); // LLM calls (1.5 s each) in flight
    process.kill(-run.child.pid!, 'SIGINT');
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    assert.doesNotMatch(result.stderr, SDK_NOISE);
    assert.ok(result.stderr.trim().split('\n').length <= 5, result.stderr);
    assert.equal(alive(server.pid), false, 'the embedded server stopped with the command');
    const log = await readFile(join(out, 'consistent-chat.log'), 'utf8');
    assert.match(log, /Worker state changed/, 'SDK lines went to the log file');
    assert.doesNotMatch(log, /Network error|No workflows registered/, 'the server outlived the drain');

    const resumed = await runCli(args, env());
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming run/);
    assertDataset(await readDialogues(out), { count: 6, turns: 1, intents: ['transaction', 'educational'] });
    // The calls drained before the stop were checked by the first process: the count covers them too.
    const calls = /(\d+) LLM calls/.exec(resumed.stdout)?.[1];
    assert.ok(calls, resumed.stdout);
    assert.match(resumed.stdout, new RegExp(`reply checks: 0 of ${calls} replies`));
  });

  test('terminal: a failed start-up check writes nothing, and the corrected command is then accepted', async () => {
    const root = await tempDir('cc-checks-');
    const out = join(root, 'run');
    const base = ['generate', '--out', out, '--model', 'test-model', '--dialogs-per-intent', '1'];
    base.push('--turns', '1', '--intents', 'transaction');
    const [noTemporal, noEndpoint, emptyKey] = await Promise.all([
      runCli([...base, '--temporal-address', '127.0.0.1:1'], env()),
      runCli([...base, '--base-url', 'http://127.0.0.1:1/v1'], env()),
      runCli(base, { ...env(), OPENAI_API_KEY: '' }),
    ]);
    for (const [result, field] of [
      [noTemporal, '--temporal-address'],
      [noEndpoint, '--base-url'],
      [emptyKey, 'OPENAI_API_KEY'],
    ] as const) {
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^error: ${field}: `));
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
    assert.deepEqual(await readdir(root), [], 'no directory, no run.json');
    const corrected = await runCli([...base, '--turns', '2'], { ...env(), OPENAI_API_KEY: 'sk-terminal' });
    assert.equal(corrected.code, 0, corrected.stderr);
    assert.equal((await readDialogues(out)).length, 1);
  });

  test("terminal: `ui DIR` serves a finished run's embedded history until Ctrl-C", async () => {
    const out = await tempDir('cc-ui-');
    const args = ['generate', '--out', out, '--model', 'test-model', '--dialogs-per-intent', '1'];
    const finished = await runCli([...args, '--turns', '1', '--intents', 'transaction'], env());
    assert.equal(finished.code, 0, finished.stderr);
    assert.equal(existsSync(join(out, '.temporal', 'server.json')), false, 'its server stopped');
    const runId = (JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { runId: string }).runId;

    const ui = spawnCli(['ui', out], env());
    let stdout = '';
    ui.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/Ctrl-C stops it/.test(stdout) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    try {
      const url = /(http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/\S+)/.exec(stdout)?.[1];
      assert.ok(url?.endsWith(`/workflows/${runId}`), stdout);
      assert.equal((await fetch(url!)).status, 200, 'the UI answers');
      const state = JSON.parse(await readFile(join(out, '.temporal', 'server.json'), 'utf8')) as {
        address: string;
      };
      const connection = await Connection.connect({ address: state.address });
      try {
        const description = await new Client({ connection }).workflow.getHandle(runId).describe();
        assert.equal(description.status.name, 'COMPLETED');
      } finally {
        await connection.close();
      }
    } finally {
      ui.child.kill('SIGINT');
    }
    const stopped = await ui.done;
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(existsSync(join(out, '.temporal', 'server.json')), false, 'the server stopped with ui');
  });

  test('terminal: a closed stdout ends each command quietly, --version and help say what the commands do', async () => {
    const commands = [['--help'], ['status', 'x', '--out', '/nonexistent']];
    const results = await Promise.all(
      commands.map((args) => {
        const run = spawnCli(args, env());
        run.child.stdout!.destroy(); // the reader went away, as `| head -1` does
        return run.done;
      }),
    );
    for (const [i, result] of results.entries()) {
      assert.doesNotMatch(
        result.stderr,
        /EPIPE|at .*\(.*:\d+:\d+\)/,
        `${commands[i]!.join(' ')}: ${result.stderr}`,
      );
      assert.notEqual(result.code, null, 'exited, not killed');
    }
    const version = await runCli(['--version'], env());
    const pkg = JSON.parse(await readFile(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(version.stdout.trim(), pkg.version);
    const program = buildProgram();
    const help = (name: string) => program.commands.find((c) => c.name() === name)!.helpInformation();
    assert.match(help('generate'), /--out <dir>\s+output directory of the run \(required\)/);
    for (const name of ['worker', 'status', 'pause', 'resume', 'cancel'])
      assert.match(help(name), /starts no server/);
    for (const name of ['status', 'pause', 'resume', 'cancel'])
      assert.match(help(name), /--out <dir>\s+output directory of a run/);
    assert.equal(existsSync('/nonexistent'), false);
  });
});
