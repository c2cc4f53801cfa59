/**
 * The library as a consuming project gets it: `npm pack`, installed from the tarball into a fresh
 * `npm init -y` project, each README snippet run as written against the test LLM server; and the
 * README's set-up commands, followed as written from a fresh `git clone`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { DEFAULT_DIALOGS_PER_INTENT, DEFAULT_TURNS_PER_DIALOG } from '../../src/shared/constants';
import { INTENT_IDS } from '../../src/method/intents';
import { assertDataset, readDialogues } from '../helpers/output';
import { tempDir } from '../helpers/temporal';

const exec = promisify(execFile);
const ROOT = join(__dirname, '..', '..');

let llm: LlmServer;
before(async () => {
  // Serves the model the README names, so the snippets run unchanged.
  llm = await startLlmServer({ latency: { meanMs: 5 }, models: ['gpt-4o-mini', 'test-model'] });
});
after(async () => {
  await llm?.close();
});

/** The README's programmatic snippets: code blocks whose first line names their file. */
export async function readmeSnippets(): Promise<{ file: string; code: string }[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```js\n\/\/ (index\.m?js)\n([\s\S]*?)```/g)].map((m) => ({
    file: m[1]!,
    code: `// ${m[1]}\n${m[2]}`,
  }));
}

test('package: the README snippets run as written from the packed tarball in a fresh project, quietly', async () => {
  assert.ok(existsSync(join(ROOT, 'dist', 'workflow-bundle.js')), 'run `npm run build` first');
  const snippets = await readmeSnippets();
  assert.deepEqual(
    snippets.map((s) => s.file),
    ['index.js', 'index.mjs'],
  );
  const work = await tempDir('cc-pack-');
  const { stdout: packed } = await exec('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: ROOT,
  });
  const project = join(work, 'project');
  await exec('mkdir', [project]);
  await exec('npm', ['init', '-y'], { cwd: project });
  const install = await exec(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.trim().split('\n').at(-1)!)],
    { cwd: project, timeout: 300_000 },
  );
  assert.doesNotMatch(install.stderr, /ERR!/, install.stderr);
  const env = {
    ...process.env,
    OPENAI_API_KEY: 'sk-package-test',
    OPENAI_BASE_URL: llm.url,
    TEMPORAL_ADDRESS: '',
    LOG_LEVEL: '',
  };
  for (const [i, snippet] of snippets.entries()) {
    await writeFile(join(project, snippet.file), snippet.code);
    const result = await exec('node', [snippet.file], { cwd: project, env, timeout: 180_000 });
    assert.equal(result.stdout.trim(), '6 written, 0 failed', `${snippet.file}: ${result.stderr}`);
    assert.equal(result.stderr, '', `${snippet.file} is quiet: no SDK lines on stderr`);
    const out = join(project, 'out', `run${i + 1}`);
    assert.equal((await readDialogues(out)).length, 6);
    assert.match(await readFile(join(out, 'consistent-chat.log'), 'utf8'), /Worker state changed/);
  }

  // A `logger` receives the SDK's lines instead of the log file.
  await writeFile(
    join(project, 'logger.js'),
    `const { ConsistentChatGenerator } = require('consistent-chat');
const lines = [];
const logger = { log: (level, message) => lines.push(level + ' ' + message) };
for (const level of ['trace', 'debug', 'info', 'warn', 'error'])
  logger[level] = (message, meta) => logger.log(level.toUpperCase(), message, meta);
new ConsistentChatGenerator({ llmServing: { model: 'test-model' }, numDialogsPerIntent: 1, numTurnsPerDialog: 1, intents: ['transaction'], logger })
  .run('out/logged')
  .then(() => console.log(lines.filter((l) => l.includes('Worker state changed')).length));
`,
  );
  const logged = await exec('node', ['logger.js'], { cwd: project, env, timeout: 180_000 });
  assert.ok(Number(logged.stdout.trim()) > 0, logged.stdout + logged.stderr);
  assert.equal(logged.stderr, '');
  assert.ok(!(await readdir(join(project, 'out', 'logged'))).includes('consistent-chat.log'));
});

/**
 * The command lines of the README's "Set-up" section, in order: each bash block's lines that are not
 * comments, plus an alternative a comment gives as `# or …:  COMMAND`.
 */
export async function setupCommands(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Set-up'));
  assert.ok(section, 'the README has a Set-up section');
  const commands: string[] = [];
  for (const [, block] of section.matchAll(/```bash\n([\s\S]*?)```/g))
    for (const line of block!.split('\n')) {
      const alternative = /^#\s*or [^:]*:\s+(\S.*)$/.exec(line.trim());
      if (alternative) commands.push(alternative[1]!.trim());
      else if (line.trim() && !line.trim().startsWith('#')) commands.push(line.replace(/\s+#.*$/, '').trim());
    }
  return commands;
}

/** Set-up commands this test does not run, each with the reason; each must still be in the README. */
const NOT_RUN: Record<string, string> = {
  'bash scripts/run.sh generate --out out/demo --intents problem_solving --dialogs-per-intent 1 --turns 2':
    'the embedded model takes minutes of a shared CPU per dialogue (test/integration/local-model.test.ts runs it)',
  'npm test': 'the suite this test is part of',
  'npm link': 'the other way onto PATH; this test takes the packed copy the README gives as its alternative',
};

test("package: the README's set-up commands, followed as written from a fresh git clone, generate a run and put consistent-chat on PATH", async (t) => {
  const commands = await setupCommands();
  for (const skipped of Object.keys(NOT_RUN))
    assert.ok(commands.includes(skipped), `the README still says \`${skipped}\` (or NOT_RUN is stale)`);
  const work = await tempDir('cc-clone-');
  // A clone with its node_modules, a build and a global install is about 1 GB.
  t.after(() => rm(work, { recursive: true, force: true }));
  const clone = join(work, 'consistent-chat');
  // What a newcomer gets: the committed tree, with no node_modules, dist/ or model of this checkout.
  await exec('git', ['clone', '--quiet', ROOT, clone]);
  const prefix = join(work, 'npm-global');
  const elsewhere = join(work, 'elsewhere');
  await exec('mkdir', ['-p', prefix, elsewhere]);
  const env = {
    ...process.env,
    // `npm install -g` and `npm link` go to a prefix of this test's, whose bin is on PATH.
    PATH: `${join(prefix, 'bin')}:${process.env.PATH}`,
    npm_config_prefix: prefix,
    npm_config_prefer_offline: 'true',
    // The commands that run use an endpoint (the test server): no model needed.
    CONSISTENT_CHAT_SKIP_MODEL: '1',
    OPENAI_API_KEY: 'sk-package-test',
    OPENAI_BASE_URL: llm.url,
    OPENAI_MODEL: '',
    TEMPORAL_ADDRESS: '',
    LOG_LEVEL: '',
  };
  const ran: { command: string; stdout: string }[] = [];
  for (const command of commands) {
    if (NOT_RUN[command]) continue;
    // The installed command is run outside the checkout, as from anywhere on the machine.
    const cwd = command.startsWith('consistent-chat') ? elsewhere : clone;
    const result = await exec('bash', ['-c', command], {
      cwd,
      env,
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { code?: number; stderr?: string }) =>
      assert.fail(`\`${command}\` exited ${error.code}: ${error.stderr?.slice(-2_000)}`),
    );
    ran.push({ command, stdout: result.stdout });
  }
  assert.ok(ran.length >= 4, `ran ${ran.map((r) => r.command).join('; ')}`);
  // The run for real data: the defaults, against the endpoint the environment names.
  const run1 = join(clone, 'out', 'run1');
  const records = await readDialogues(run1);
  if (records.length !== DEFAULT_DIALOGS_PER_INTENT * INTENT_IDS.length) {
    // Evidence for a run that says it finished yet holds fewer records: its summary and its log's end.
    const generated = ran.find((r) => r.command.includes('--out out/run1'))?.stdout ?? '';
    const log = await readFile(join(run1, 'consistent-chat.log'), 'utf8').catch(() => '');
    const failures = await readFile(join(run1, 'failures.jsonl'), 'utf8').catch(() => '');
    assert.fail(
      `${records.length} records in out/run1; generate said:\n${generated}\nfailures.jsonl:\n${failures.slice(0, 2_000)}\nlog:\n${log.slice(-4_000)}`,
    );
  }
  assertDataset(records, {
    count: DEFAULT_DIALOGS_PER_INTENT * INTENT_IDS.length,
    turns: DEFAULT_TURNS_PER_DIALOG,
    intents: INTENT_IDS,
  });
  // On PATH from the packed copy, not from the checkout.
  const { stdout: which } = await exec('bash', ['-c', 'command -v consistent-chat'], { cwd: elsewhere, env });
  assert.ok(which.trim().startsWith(prefix), which);
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(ran.find((r) => r.command === 'consistent-chat --version')?.stdout.trim(), pkg.version);
  assert.match(ran.find((r) => r.command.startsWith('consistent-chat plan'))?.stdout ?? '', /\S/);
});
