import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkVersionPart, deploymentOptions, workflowBuildId } from '../../src/deployment';
import { runCli } from '../helpers/cli';
import { tempDir } from '../helpers/temporal';

test('deployment: the build id names the workflow bundle, from a file or from code alike', async () => {
  const dir = await tempDir();
  const file = join(dir, 'workflow-bundle.js');
  await writeFile(file, 'exports.a = 1;\n');
  const fromFile = await workflowBuildId({ codePath: file });
  assert.match(fromFile, /^wf-[0-9a-f]{16}$/);
  assert.equal(await workflowBuildId({ code: 'exports.a = 1;\n' }), fromFile);
  assert.notEqual(await workflowBuildId({ code: 'exports.a = 2;\n' }), fromFile);
  assert.equal(checkVersionPart(fromFile), undefined, 'a derived build id passes the check');
});

test('deployment: workers default to AUTO_UPGRADE; names with separators are refused', () => {
  assert.deepEqual(deploymentOptions({ deploymentName: 'consistent-chat', buildId: 'b1' }), {
    version: { deploymentName: 'consistent-chat', buildId: 'b1' },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'AUTO_UPGRADE',
  });
  for (const bad of ['', 'a.b', 'a:b', 'a b', 'x'.repeat(256)]) assert.ok(checkVersionPart(bad), bad);
  for (const good of ['A', 'consistent-chat', 'v1_2-3'])
    assert.equal(checkVersionPart(good), undefined, good);
});

test('deployment: worker refuses a bad --build-id or deployment name with exit 2, naming the field', async () => {
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', OPENAI_API_KEY: 'sk-unused' };
  const badBuild = await runCli(['worker', '--no-storage', '--build-id', 'a:b'], env);
  assert.equal(badBuild.code, 2, badBuild.stderr);
  assert.match(badBuild.stderr, /^error: --build-id: /m);
  const badName = await runCli(['worker', '--no-storage'], {
    ...env,
    CONSISTENT_CHAT_DEPLOYMENT_NAME: 'my.deploy',
  });
  assert.equal(badName.code, 2, badName.stderr);
  assert.match(badName.stderr, /^error: --deployment-name: /m);
});
