import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { METRIC_NAMES } from '../../src/activities/metrics';

test('package metrics: the README documents every metric the package exports', async () => {
  const readme = await readFile(join(__dirname, '..', '..', 'README.md'), 'utf8');
  for (const name of Object.values(METRIC_NAMES)) assert.ok(readme.includes(`| \`${name}\` |`), name);
});
