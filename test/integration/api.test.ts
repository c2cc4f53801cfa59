/** The library API leaves the same files as the CLI: a finished `generator.run` writes summary.json. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConsistentChatGenerator } from '../../src/client/api';
import { startLlmServer } from '../llm-server/server';
import { tempDir } from '../helpers/temporal';
import { withEnv } from '../helpers/env';

test('api: generator.run writes summary.json beside the records, as generate does', async (t) => {
  const llm = await startLlmServer({ latency: { meanMs: 5 } });
  t.after(() => llm.close());
  withEnv(t, { OPENAI_API_KEY: 'sk-api-test', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: undefined });
  const out = join(await tempDir('cc-api-'), 'run');
  const generator = new ConsistentChatGenerator({
    llmServing: { model: 'test-model' },
    numDialogsPerIntent: 1,
    numTurnsPerDialog: 1,
    intents: ['transaction'],
  });
  const summary = await generator.run(out);
  assert.equal(summary.written, 1);
  const file = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as {
    runId: string;
    tokens: { prompt: number };
  };
  assert.equal(file.runId, summary.runId);
  assert.ok(file.tokens.prompt > 0, 'tokens recorded for report');
});
