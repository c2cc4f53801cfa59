import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');

test('run.sh: builds like `npm run build`, prebuilt workflow bundle included, then runs the CLI', async () => {
  const started = Date.now() - 1_000;
  const { stdout } = await promisify(execFile)('bash', [join(ROOT, 'scripts', 'run.sh'), '--version'], {
    cwd: ROOT,
    timeout: 180_000,
  });
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(stdout.trim(), pkg.version);
  // Without it every run bundles the workflows with webpack at start.
  const bundle = await stat(join(ROOT, 'dist', 'workflow-bundle.js'));
  assert.ok(bundle.mtimeMs >= started, 'the workflow bundle was rebuilt by run.sh');
});
