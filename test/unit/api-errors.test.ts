/** The library API's errors name its own options, never the CLI's flags. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConsistentChatGenerator } from '../../src/client/api';
import { ConfigError } from '../../src/shared/errors';
import { tempDir } from '../helpers/temporal';
import { withEnv } from '../helpers/env';

test('api errors: a bad option is named as the API spells it, before anything starts', async (t) => {
  // An endpoint that is never reached: the input is refused first.
  withEnv(t, {
    OPENAI_API_KEY: 'sk-api-errors',
    OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
    TEMPORAL_ADDRESS: undefined,
  });
  const root = await tempDir('cc-api-errors-');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ numDialogsPerIntent: 0 }, /^numDialogsPerIntent: /],
    [{ numTurnsPerDialog: 21 }, /^numTurnsPerDialog: /],
    [{ temperature: 3 }, /^temperature: /],
    [{ concurrency: 0 }, /^concurrency: /],
    [{ runId: 'no spaces allowed' }, /^runId: /],
    [{ temporal: { address: 'not an address' } }, /^temporal\.address: /],
  ];
  for (const [options, pattern] of cases) {
    const generator = new ConsistentChatGenerator({ llmServing: { model: 'm' }, ...options });
    const error = await generator.run(join(root, 'run')).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ConfigError, `${JSON.stringify(options)}: ${String(error)}`);
    assert.match(error.message, pattern, JSON.stringify(options));
    assert.doesNotMatch(
      error.message,
      /--[a-z]/,
      `${JSON.stringify(options)}: no CLI flag in "${error.message}"`,
    );
  }
});
