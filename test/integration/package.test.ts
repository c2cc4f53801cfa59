/**
 * The library as a consuming project gets it: `npm pack`, installed from the tarball into a fresh
 * `npm init -y` project, each README snippet run as written against the test LLM server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { readDialogues } from '../helpers/output';
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
