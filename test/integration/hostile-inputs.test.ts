/**
 * Issue 9 §5: hostile inputs through the CLI, the config file, the programmatic API and the Temporal CLI.
 * Each is refused with exit code 2 (the API: a ConfigError; the Temporal CLI: a non-retryable workflow
 * failure) and one line naming the field, fast, leaving no process running and nothing written outside
 * the output directory. The CLI is the built one (`npm run build`), as users run it.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApplicationFailure, Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { ConsistentChatGenerator } from '../../src/client/api';
import { findTemporalCli } from '../../src/client/dev-server';
import { ConfigError, createGenerationWorker, createOpenAiClient, NativeConnection } from '../../src/worker';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { loadScaled } from '../helpers/wait';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'consistent-chat.js');
/** 2 s on an idle machine; scaled by the load of the machine the tests share. */
const LIMIT_MS = loadScaled(2_000);

let llm: LlmServer;
let temporal: TestDevServer;
let sandbox: string;
before(async () => {
  for (const file of ['client/cli.js', 'workflow-bundle.js']) {
    const built = await stat(join(ROOT, 'dist', file)).catch(() => undefined);
    assert.ok(built, `dist/${file} missing: run \`npm run build\` first`);
  }
  llm = await startLlmServer({ latency: { meanMs: 5 } });
  temporal = await devServer();
  sandbox = await tempDir('cc-hostile-');
});
after(async () => {
  await llm?.close();
  await temporal?.dispose();
});

interface CliCase {
  name: string;
  args: (dir: string) => string[];
  field: RegExp;
  /** Prepares the case's directory (a config file, an earlier run). */
  setup?: (dir: string) => Promise<void>;
  env?: NodeJS.ProcessEnv;
}

const gen = (out: string, ...rest: string[]) => ['generate', '--out', out, '--model', 'test-model', ...rest];
const outIn = (dir: string, ...rest: string[]) => gen(join(dir, 'out'), ...rest);
const config = (text: string) => async (dir: string) => writeFile(join(dir, 'run.yaml'), text);
const withConfig = (dir: string) => outIn(dir, '--config', join(dir, 'run.yaml'));
const earlierRun = async (dir: string) => {
  await mkdir(join(dir, 'out'));
  const input = {
    runId: 'cc-earlier',
    outDir: join(dir, 'out'),
    model: 'test-model',
    intents: ['transaction'],
  };
  const record = { runId: 'cc-earlier', createdAt: new Date().toISOString() };
  Object.assign(input, {
    numDialogsPerIntent: 2,
    numTurnsPerDialog: 2,
    temperature: 0.9,
    seed: 'cc-earlier',
  });
  await writeFile(join(dir, 'out', 'run.json'), JSON.stringify({ ...record, input }));
};
const EXISTING_RUN = unique('cc-hostile-existing');
const ANCHOR_BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
  'seed: *i',
].join('\n');

const CLI_CASES: CliCase[] = [
  { name: 'output under /proc', args: () => gen('/proc/cc-hostile/x'), field: /--out/ },
  {
    name: 'output is a file',
    args: (d) => gen(join(d, 'file')),
    field: /--out/,
    setup: (d) => writeFile(join(d, 'file'), 'x'),
  },
  { name: 'output is /dev/null', args: () => gen('/dev/null'), field: /--out/ },
  {
    name: 'output in a read-only directory',
    args: (d) => gen(join(d, 'ro', 'out')),
    field: /--out/,
    setup: async (d) => {
      await mkdir(join(d, 'ro'));
      await chmod(join(d, 'ro'), 0o555);
    },
  },
  { name: 'output path with a newline', args: (d) => gen(join(d, 'a\nb')), field: /--out/ },
  { name: 'count 0', args: (d) => outIn(d, '--dialogs-per-intent', '0'), field: /--dialogs-per-intent/ },
  { name: 'count -1', args: (d) => outIn(d, '--dialogs-per-intent', '-1'), field: /--dialogs-per-intent/ },
  { name: 'count 1e9', args: (d) => outIn(d, '--dialogs-per-intent', '1e9'), field: /--dialogs-per-intent/ },
  { name: 'count NaN', args: (d) => outIn(d, '--dialogs-per-intent', 'NaN'), field: /--dialogs-per-intent/ },
  {
    name: 'count Infinity',
    args: (d) => outIn(d, '--dialogs-per-intent', 'Infinity'),
    field: /--dialogs-per-intent/,
  },
  {
    name: 'count 0x10',
    args: (d) => outIn(d, '--dialogs-per-intent', '0x10'),
    field: /--dialogs-per-intent/,
  },
  { name: 'turns 0', args: (d) => outIn(d, '--turns', '0'), field: /--turns/ },
  { name: 'turns 2.5', args: (d) => outIn(d, '--turns', '2.5'), field: /--turns/ },
  { name: 'concurrency 1e9', args: (d) => outIn(d, '--concurrency', '1e9'), field: /--concurrency/ },
  { name: 'temperature "hot"', args: (d) => outIn(d, '--temperature', 'hot'), field: /--temperature/ },
  { name: 'temperature -0.1', args: (d) => outIn(d, '--temperature', '-0.1'), field: /--temperature/ },
  { name: 'unknown intent', args: (d) => outIn(d, '--intents', 'transaction,gossip'), field: /--intents/ },
  { name: 'rpm -5', args: (d) => outIn(d, '--rpm', '-5'), field: /--rpm/ },
  {
    name: 'base URL not HTTP',
    args: (d) => outIn(d, '--base-url', 'file:///etc/passwd'),
    field: /--base-url/,
  },
  {
    name: 'Temporal address with no port',
    args: (d) => outIn(d, '--temporal-address', 'localhost'),
    field: /--temporal-address/,
  },
  {
    name: 'task queue with spaces',
    args: (d) => outIn(d, '--task-queue', 'my queue'),
    field: /--task-queue/,
  },
  { name: 'run id with spaces', args: (d) => outIn(d, '--run-id', 'a run'), field: /--run-id/ },
  {
    name: 'run id reused with other settings',
    args: (d) => outIn(d, '--run-id', 'cc-earlier', '--turns', '3'),
    field: /--turns/,
    setup: earlierRun,
  },
  {
    name: 'run id of another run on the Temporal server',
    args: (d) => outIn(d, '--run-id', EXISTING_RUN, '--temporal-address', temporal.address),
    field: /--run-id/,
  },
  {
    name: 'empty OPENAI_API_KEY',
    args: (d) => outIn(d),
    field: /OPENAI_API_KEY/,
    env: { OPENAI_API_KEY: '' },
  },
  {
    name: 'config: unknown key',
    args: withConfig,
    field: /--config: unknown setting "colour"/,
    setup: config('colour: blue\n'),
  },
  { name: 'config: YAML anchor bomb', args: withConfig, field: /--config/, setup: config(ANCHOR_BOMB) },
  {
    name: 'config: JSON of the wrong types',
    args: withConfig,
    field: /--config (numDialogsPerIntent|intents)/,
    setup: config('{"numDialogsPerIntent": "ten", "intents": "transaction"}'),
  },
  {
    name: 'config: temperature "hot"',
    args: withConfig,
    field: /--config temperature/,
    setup: config('temperature: hot\n'),
  },
  { name: 'config: not a mapping', args: withConfig, field: /--config/, setup: config('- 1\n- 2\n') },
  {
    name: 'config: unknown intent',
    args: withConfig,
    field: /--config intents/,
    setup: config('intents: [gossip]\n'),
  },
  { name: 'config: missing file', args: withConfig, field: /--config/ },
];

async function runBuiltCli(args: string[], env: NodeJS.ProcessEnv) {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: sandbox,
    env: { ...process.env, HOME: sandbox, LOG_LEVEL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const ms = Date.now() - started;
  let groupAlive = true;
  try {
    process.kill(-child.pid!, 0);
  } catch {
    groupAlive = false;
  }
  return { code, stdout, stderr, ms, groupAlive };
}

async function pool<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}

describe('hostile inputs', () => {
  test('hostile inputs: the CLI and the config file refuse each with exit 2 and one line naming the field', async (t) => {
    const env = { OPENAI_API_KEY: 'sk-hostile', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' };
    const before = await readdir(sandbox);
    const connection = await Connection.connect({ address: temporal.address });
    await new Client({ connection }).workflow.start('consistentChatRun', {
      workflowId: EXISTING_RUN,
      taskQueue: unique('nobody-polls'),
      args: [{ outDir: '/elsewhere', model: 'test-model' }],
      memo: { outDir: '/elsewhere' },
    });
    await connection.close();
    // One case per core: the 2 s limit is about each command, not about cases sharing a core.
    const results = await pool(CLI_CASES, Math.max(1, cpus().length), async (c, i = CLI_CASES.indexOf(c)) => {
      const dir = join(sandbox, `case-${i}`);
      await mkdir(dir);
      await c.setup?.(dir);
      const entries = await readdir(dir);
      const result = await runBuiltCli(c.args(dir), { ...env, ...c.env });
      return { c, dir, entries, result, after: await readdir(dir) };
    });
    const problems: string[] = [];
    for (const { c, entries, result, after: left } of results) {
      const lines = result.stderr.trim().split('\n');
      if (result.code !== 2) problems.push(`${c.name}: exit ${result.code}: ${result.stderr}`);
      else if (lines.length !== 1 || !c.field.test(lines[0]!))
        problems.push(`${c.name}: want one line naming ${c.field}, got: ${result.stderr}`);
      if (result.stdout !== '') problems.push(`${c.name}: stdout ${result.stdout}`);
      if (result.ms > LIMIT_MS) problems.push(`${c.name}: took ${result.ms} ms (limit ${LIMIT_MS})`);
      if (result.groupAlive) problems.push(`${c.name}: a process of its group is still running`);
      if (left.join() !== entries.join())
        problems.push(`${c.name}: wrote ${left.join()} (had ${entries.join()})`);
    }
    const slowest = Math.max(...results.map((r) => r.result.ms));
    t.diagnostic(
      `${CLI_CASES.length} cases, slowest ${slowest} ms, limit ${Math.round(LIMIT_MS)} ms, load ${loadavg()[0]!.toFixed(1)}`,
    );
    assert.deepEqual(problems, []);
    assert.ok(CLI_CASES.length >= 30);
    assert.deepEqual(
      (await readdir(sandbox)).filter((e) => !before.includes(e) && !e.startsWith('case-')),
      [],
      'nothing written beside the cases',
    );
  });

  test('hostile inputs: the programmatic API rejects each with a ConfigError naming the option as the API spells it, writing nothing', async () => {
    const dir = await tempDir('cc-hostile-api-');
    const env = { OPENAI_API_KEY: 'sk-hostile', OPENAI_BASE_URL: llm.url };
    const saved = { key: process.env.OPENAI_API_KEY, url: process.env.OPENAI_BASE_URL };
    Object.assign(process.env, env);
    const model = { model: 'test-model' };
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      [
        'empty model',
        () => Promise.resolve().then(() => new ConsistentChatGenerator({ llmServing: { model: '' } })),
        /llmServing\.model/,
      ],
      [
        'count NaN',
        () =>
          new ConsistentChatGenerator({ llmServing: model, numDialogsPerIntent: NaN }).run(join(dir, 'a')),
        /^numDialogsPerIntent: /,
      ],
      [
        'temperature "hot"',
        () =>
          new ConsistentChatGenerator({ llmServing: model, temperature: 'hot' as unknown as number }).run(
            join(dir, 'b'),
          ),
        /^temperature: /,
      ],
      [
        'unknown intent',
        () => new ConsistentChatGenerator({ llmServing: model, intents: ['gossip'] }).run(join(dir, 'c')),
        /^intents: /,
      ],
      [
        'output under /proc',
        () => new ConsistentChatGenerator({ llmServing: model }).run('/proc/cc/x'),
        /^storage: /,
      ],
      [
        'task queue with spaces',
        () =>
          new ConsistentChatGenerator({ llmServing: model, temporal: { taskQueue: 'a b' } }).run(
            join(dir, 'd'),
          ),
        /^temporal\.taskQueue: /,
      ],
      [
        'base URL not HTTP',
        () =>
          Promise.resolve().then(
            () => new ConsistentChatGenerator({ llmServing: { model: 'm', baseURL: 'ftp://x' } }),
          ),
        /llmServing\.baseURL/,
      ],
    ];
    try {
      for (const [name, run, field] of cases) {
        const started = Date.now();
        await assert.rejects(
          run,
          (error: Error) => {
            assert.ok(error instanceof ConfigError, `${name}: ${error.message}`);
            assert.match(error.message, field, name);
            assert.equal(error.message.split('\n').length, 1, name);
            return true;
          },
          name,
        );
        assert.ok(Date.now() - started < LIMIT_MS, `${name}: ${Date.now() - started} ms`);
      }
    } finally {
      process.env.OPENAI_API_KEY = saved.key;
      process.env.OPENAI_BASE_URL = saved.url;
      if (saved.key === undefined) delete process.env.OPENAI_API_KEY;
      if (saved.url === undefined) delete process.env.OPENAI_BASE_URL;
    }
    assert.deepEqual(await readdir(dir), [], 'nothing written');
  });

  test('hostile inputs: through the Temporal CLI the run fails at once, non-retryably, naming the field', async () => {
    const taskQueue = unique('hostile');
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    let worker: Worker | undefined;
    const connection = await Connection.connect({ address: temporal.address });
    try {
      worker = await createGenerationWorker({
        connection: nativeConnection,
        taskQueue,
        openai: createOpenAiClient({ baseURL: llm.url, apiKey: 'sk-hostile' }),
      });
      const running = worker.run();
      const client = new Client({ connection });
      const base = { outDir: join(sandbox, 'temporal-cli'), model: 'test-model' };
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['count -1', { ...base, numDialogsPerIntent: -1 }, /numDialogsPerIntent/],
        ['count 1e9', { ...base, numDialogsPerIntent: 1e9 }, /numDialogsPerIntent/],
        ['relative output', { ...base, outDir: 'out' }, /outDir/],
        ['temperature "hot"', { ...base, temperature: 'hot' }, /temperature/],
        ['unknown intent', { ...base, intents: ['gossip'] }, /intents/],
      ];
      const cli = findTemporalCli()!;
      await Promise.all(
        cases.map(async ([name, input, field]) => {
          const workflowId = unique('hostile-run');
          const started = Date.now();
          await promisify(execFile)(cli, [
            'workflow',
            'start',
            '--address',
            temporal.address,
            '--type',
            'consistentChatRun',
            '--task-queue',
            taskQueue,
            '--workflow-id',
            workflowId,
            '--input',
            JSON.stringify(input),
          ]);
          await assert.rejects(client.workflow.getHandle(workflowId).result(), (error: Error) => {
            assert.ok(error instanceof WorkflowFailedError, `${name}: ${error.message}`);
            const cause = error.cause;
            assert.ok(cause instanceof ApplicationFailure && cause.nonRetryable, name);
            assert.match(cause.message, field, name);
            assert.equal(cause.message.split('\n').length, 1, name);
            return true;
          });
          assert.ok(Date.now() - started < 2 * LIMIT_MS, `${name}: ${Date.now() - started} ms`);
        }),
      );
      worker.shutdown();
      await running;
    } finally {
      if (worker?.getState() === 'RUNNING') worker.shutdown();
      await connection.close();
      await nativeConnection.close();
    }
    assert.deepEqual(
      (await readdir(sandbox)).filter((e) => e === 'temporal-cli'),
      [],
      'nothing written',
    );
  });
});
