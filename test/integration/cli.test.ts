import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { runCli, generateArgs } from '../helpers/cli';
import { assertDataset, readDialogues } from '../helpers/output';
import { tempDir } from '../helpers/temporal';

let llm: LlmServer;
before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 5 } });
});
after(async () => {
  await llm?.close();
});

const endpointEnv = () => ({ OPENAI_API_KEY: 'sk-cli-test', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' });

describe('cli', () => {
  test('cli: bad input exits 2 with one line naming the field, before any work starts', async () => {
    const out = await tempDir('cc-bad-');
    const blocker = join(out, 'a-file');
    await writeFile(blocker, 'not a directory');
    const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
      [['--turns', '0'], /--turns/],
      [['--turns', '21'], /--turns/],
      [['--turns', 'six'], /--turns/],
      [['--temperature', '2.5'], /--temperature/],
      [['--dialogs-per-intent', '0'], /--dialogs-per-intent/],
      [['--dialogs-per-intent', '2000000'], /--dialogs-per-intent/],
      [['--concurrency', '0'], /--concurrency/],
      [['--intents', 'transaction,gossip'], /--intents.*gossip/],
      [['--run-id', 'no spaces allowed'], /--run-id/],
      [['--temporal-address', '127.0.0.1:1'], /--temporal-address/],
      [[], /OPENAI_API_KEY/, { OPENAI_API_KEY: '', OPENAI_BASE_URL: '' }],
      [['--base-url', 'ftp://example'], /--base-url/],
    ];
    for (const [args, pattern, env] of cases) {
      const dir = join(out, `run-${cases.indexOf([args, pattern, env] as never) + Math.random()}`);
      const result = await runCli(['generate', '--out', dir, '--model', 'test-model', ...args], {
        ...endpointEnv(),
        ...env,
      });
      assert.equal(result.code, 2, `${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(' '));
      assert.equal(
        result.stderr.trim().split('\n').length,
        1,
        `one line for ${args.join(' ')}: ${result.stderr}`,
      );
      assert.equal(existsSync(join(dir, '.temporal')), false, 'no server was started');
    }
    const unwritable = await runCli(
      ['generate', '--out', join(blocker, 'sub'), '--model', 'm'],
      endpointEnv(),
    );
    assert.equal(unwritable.code, 2);
    assert.match(unwritable.stderr, /--out/);
    const noModel = await runCli(['generate', '--out', join(out, 'no-model')], {
      ...endpointEnv(),
      OPENAI_MODEL: '',
    });
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /--model/);
  });

  test('cli: generate with the embedded server writes the dataset, and a second run reports it finished', async () => {
    const out = await tempDir('cc-cli-');
    const args = generateArgs(out, { dialogs: 2, turns: 2, intents: 'transaction,Educational Interaction' });
    const first = await runCli(args, endpointEnv());
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /4\/4 dialogues written, 0 failed/);
    assertDataset(await readDialogues(out), { count: 4, turns: 2, intents: ['transaction', 'educational'] });
    assert.ok(existsSync(join(out, 'run.json')));

    const second = await runCli(args, endpointEnv());
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /already finished/);
    assert.equal((await readDialogues(out)).length, 4);

    const conflicting = await runCli([...args.slice(0, 5), '--turns', '3'], endpointEnv());
    assert.equal(conflicting.code, 2);
    assert.match(conflicting.stderr, /--turns/);
  });
});
