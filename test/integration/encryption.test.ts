/**
 * Encrypted payloads end to end: a real `generate` with a key set, against the test LLM server and the
 * embedded dev server. Nothing the run generated is readable in raw history or in the server's database
 * files; the key reads everything back; a wrong key is one clear line; the embedded UI shows decoded
 * payloads through the codec endpoint.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { createClient } from '../../src/client/connection';
import { startDevServer } from '../../src/client/dev-server';
import { connectTemporal } from '../../src/client/generate';
import { parseEncryptionKeys } from '../../src/shared/encryption/codec';
import { pauseSignal, resumeSignal } from '../../src/run/messages';
import type { RunSummary } from '../../src/run/schemas';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { launchChromium } from '../helpers/browser';
import { runCli, spawnCli, generateArgs } from '../helpers/cli';
import { readDialogues, readFailures } from '../helpers/output';
import { tempDir, unique } from '../helpers/temporal';

let llm: LlmServer;
before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 150 } });
});
after(async () => {
  await llm?.close();
});

const KEY = `t1:${randomBytes(32).toString('base64')}`;
const keys = parseEncryptionKeys(KEY, 'test');
const env = () => ({
  OPENAI_API_KEY: 'sk-enc-test',
  OPENAI_BASE_URL: llm.url,
  TEMPORAL_ADDRESS: '',
  CONSISTENT_CHAT_ENCRYPTION_KEY: KEY,
});

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Every event of every workflow execution of the run, fetched raw: no data converter, no codec. */
async function rawHistories(connection: Connection, runId: string): Promise<HistoryEvent[]> {
  const { executions } = await connection.workflowService.listWorkflowExecutions({
    namespace: 'default',
    query: `WorkflowId STARTS_WITH "${runId}"`,
  });
  const events: HistoryEvent[] = [];
  for (const { execution } of executions) {
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await connection.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution,
        nextPageToken,
      });
      events.push(...(page.history?.events ?? []));
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
  }
  return events;
}

describe('encryption', () => {
  test('encryption: a bad key is one line naming its variable or flag, exit 2, before anything starts', async () => {
    const out = await tempDir('cc-enc-bad-');
    const short = randomBytes(16).toString('base64');
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ['generate', '--out', join(out, 'a'), '--model', 'm'],
        { CONSISTENT_CHAT_ENCRYPTION_KEY: short },
        /^error: CONSISTENT_CHAT_ENCRYPTION_KEY: the key decodes to 16 bytes/,
      ],
      [
        ['generate', '--out', join(out, 'b'), '--model', 'm', '--encryption-key-file', join(out, 'nope')],
        {},
        /^error: --encryption-key-file: cannot read .*ENOENT/,
      ],
      [
        ['codec-server'],
        { CONSISTENT_CHAT_ENCRYPTION_KEY: undefined },
        /^error: CONSISTENT_CHAT_ENCRYPTION_KEY: a codec server needs the keys/,
      ],
    ];
    for (const [args, extra, pattern] of cases) {
      const result = await runCli(args, { ...env(), ...extra });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.ok(!result.stderr.includes(short));
    }
    assert.deepEqual(await readdir(out), [], 'nothing was written');
  });

  test('encryption: failure messages are sealed too; failures.jsonl still gets the decoded reason', async () => {
    const out = await tempDir('cc-enc-fail-');
    const args = ['generate', '--out', out, '--model', 'no-such-model', '--dialogs-per-intent', '2'];
    const result = await runCli([...args, '--turns', '1', '--intents', 'transaction'], env());
    assert.equal(result.code, 1, result.stderr);
    const failures = await readFailures(out);
    assert.equal(failures.length, 2);
    assert.match(failures[0]!.reason, /LLM endpoint rejected the request \(404\).*no-such-model/);
    const stateDir = join(out, '.temporal');
    const dbFiles = (await readdir(stateDir)).filter((f) => f.startsWith('temporal.db'));
    const db = Buffer.concat(await Promise.all(dbFiles.map((f) => readFile(join(stateDir, f)))));
    assert.ok(db.includes('Llm.BadRequest'), 'failure types stay readable');
    for (const text of ['LLM endpoint rejected the request', 'does not exist', failures[0]!.topic])
      assert.ok(!db.includes(text), `database holds "${text}"`);
  });

  test('encryption: history and database hold no generated text; the key reads it back, a wrong key fails clearly, the UI decodes it', async (t) => {
    const out = await tempDir('cc-enc-');
    const runId = unique('enc');
    const args = generateArgs(out, {
      runId: runId,
      dialogs: 3,
      turns: 2,
      concurrency: 2,
      intents: 'transaction,educational',
    });
    const running = spawnCli(args, env());
    let stderr = '';
    running.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const started = async () => {
      for (let i = 0; i < 600; i++) {
        const m = /on Temporal (\S+), UI (\S+)/.exec(stderr);
        if (m) return { address: m[1]!, uiUrl: m[2]! };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`generate did not start: ${stderr}`);
    };
    const { address, uiUrl } = await started();
    const connection = await connectTemporal(address, 'default');
    const client = createClient(connection, 'default', keys);
    try {
      // Pause once a dialogue is in its second stage, so the UI can be looked at while the server runs.
      // Storage goes in groups while calls are in flight; paused, the calls finish and it writes them.
      const handle = client.workflow.getHandle(runId);
      for (let i = 0; llm.stats().stages.responses === 0; i++) {
        assert.ok(i < 1200, 'a dialogue reaches its responses within two minutes');
        await new Promise((r) => setTimeout(r, 100));
      }
      await handle.signal(pauseSignal);
      for (let i = 0; (await readDialogues(out)).length === 0; i++) {
        assert.ok(i < 1200, 'a dialogue is written within two minutes');
        await new Promise((r) => setTimeout(r, 100));
      }
      const written = await readDialogues(out);
      const response = written[0]!.conversation.find((turn) => turn.role === 'assistant')!.value;

      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const decodeCalls: string[] = [];
        page.on('request', (r) => {
          if (new URL(r.url()).pathname.endsWith('/decode')) decodeCalls.push(r.url());
        });
        const intent = written[0]!.id.includes('.transaction.') ? 'transaction' : 'educational';
        const description = await client.workflow.getHandle(`${runId}.${intent}`).describe();
        await page.goto(
          `${uiUrl}/namespaces/default/workflows/${description.workflowId}/${description.runId}/history`,
        );
        // The completed responses activities (others may have finished too): each row shows the start
        // of its decoded result and links to the event's own page. Replies of the test server share
        // their first words ("For point 1: ..."), so every candidate's page is opened until one shows
        // this dialogue's reply.
        const rows = page
          .locator('tr', { hasText: 'Activity Task Completed' })
          .filter({ hasText: '"responses"' })
          .filter({ hasText: response.slice(0, 15) });
        await rows.first().waitFor({ timeout: 60_000 });
        const hrefs: string[] = [];
        for (const row of await rows.all()) {
          const href = (await row.locator('a').first().getAttribute('href')) ?? '';
          assert.match(href, /\/history\/events\/\d+$/);
          hrefs.push(href);
        }
        const probe = response.slice(0, 40);
        let found = false;
        for (const href of hrefs) {
          await page.goto(`${uiUrl}${href}`);
          // Decoded once any reply shows; then this page either holds this reply or does not.
          const decoded = await page
            .getByText(/For point \d+: /)
            .first()
            .waitFor({ timeout: 60_000 })
            .then(() => true)
            .catch(() => false);
          found = decoded && (await page.getByText(probe).count()) > 0;
          if (found) break;
        }
        await page.screenshot({ path: join(out, 'ui-activity-decoded.png'), fullPage: true });
        t.diagnostic(`screenshot: ${join(out, 'ui-activity-decoded.png')}`);
        assert.ok(decodeCalls.length > 0, 'the UI called the codec endpoint');
        assert.ok(
          decodeCalls.every((u) => /^\/[^/]{16,}\/decode$/.test(new URL(u).pathname)),
          `the UI presents the codec server's token in the endpoint's path: ${decodeCalls[0]}`,
        );
        assert.ok(found, `decoded response text "${probe}" shown in the UI`);
      } finally {
        await browser.close();
      }
      await handle.signal(resumeSignal);
      const result = await running.done;
      assert.equal(result.code, 0, `${result.stderr}`);
    } finally {
      running.child.kill('SIGTERM');
      await connection.close();
    }

    const dialogues = await readDialogues(out);
    assert.equal(dialogues.length, 6);
    const secrets = new Set<string>();
    for (const d of dialogues) {
      secrets.add(d.topic);
      for (const turn of d.conversation) secrets.add(turn.value);
    }
    assert.ok(secrets.size >= 12, 'topics, queries and responses to look for');

    // The database files, as the server left them.
    const stateDir = join(out, '.temporal');
    const dbFiles = (await readdir(stateDir)).filter((f) => f.startsWith('temporal.db'));
    const db = Buffer.concat(await Promise.all(dbFiles.map((f) => readFile(join(stateDir, f)))));
    assert.ok(db.includes(runId), 'workflow ids stay readable (the files are the right ones)');
    for (const secret of secrets) assert.ok(!db.includes(secret), `database holds "${secret.slice(0, 60)}"`);

    // Raw history, on the same database, read without the codec.
    const restarted = await startDevServer({
      dbFile: join(stateDir, 'temporal.db'),
      stateFile: join(stateDir, 'server.json'),
      logFile: join(stateDir, 'server.log'),
    });
    const raw = await connectTemporal(restarted.address, 'default');
    try {
      const events = await rawHistories(raw, runId);
      assert.ok(events.length > 20, `history of the run and its intents (${events.length} events)`);
      const bytes = JSON.stringify(events, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
      );
      for (const secret of secrets)
        assert.ok(!bytes.includes(secret), `raw history holds "${secret.slice(0, 60)}"`);
      const summaries = events
        .map((e) => e.userMetadata?.summary)
        .filter((s): s is temporal.api.common.v1.IPayload => Boolean(s));
      assert.ok(summaries.length > 0, 'activities carry summaries');
      for (const s of summaries)
        assert.equal(
          Buffer.from(s.metadata!.encoding!).toString(),
          'binary/encrypted',
          'summaries are sealed',
        );

      // With the key, the client reads everything back.
      const keyed = createClient(raw, 'default', keys);
      const summary = (await keyed.workflow.getHandle(runId).result()) as RunSummary;
      assert.equal(summary.written, 6);
      const staticSummary = await (await keyed.workflow.getHandle(runId).describe()).staticSummary();
      assert.match(staticSummary ?? '', /test-model/);

      // A wrong key, or none, is one line naming the variable, exit code 2.
      const wrong = await runCli(['status', runId, '--temporal-address', restarted.address], {
        ...env(),
        CONSISTENT_CHAT_ENCRYPTION_KEY: `t1:${randomBytes(32).toString('base64')}`,
      });
      assert.equal(wrong.code, 2, wrong.stderr);
      assert.match(wrong.stderr, /^error: CONSISTENT_CHAT_ENCRYPTION_KEY: .*cannot decrypt .*key id "t1"/);
      assert.equal(wrong.stderr.trim().split('\n').length, 1);
      const none = await runCli(['status', runId, '--temporal-address', restarted.address], {
        ...env(),
        CONSISTENT_CHAT_ENCRYPTION_KEY: undefined,
      });
      assert.equal(none.code, 2, none.stderr);
      assert.match(none.stderr, /encrypted .*no key is configured: set CONSISTENT_CHAT_ENCRYPTION_KEY/);
      const right = await runCli(['status', runId, '--temporal-address', restarted.address], env());
      assert.equal(right.code, 0, right.stderr);
      assert.match(right.stdout, /COMPLETED/);
    } finally {
      await raw.close();
      await restarted.stop();
    }
  });
});

/** Starts `ui DIR` and waits for its run's URL; the caller stops it with SIGINT. */
async function startUi(args: string[], environment: NodeJS.ProcessEnv) {
  const ui = spawnCli(['ui', ...args], environment);
  let stdout = '';
  ui.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  for (let i = 0; i < 600 && !/Ctrl-C stops it/.test(stdout); i++)
    await new Promise((r) => setTimeout(r, 100));
  const url = /(http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/\S+)/.exec(stdout)?.[1];
  return { ui, url, stdout: () => stdout };
}

describe('encryption: ui DIR', () => {
  test('encryption: `ui DIR` decodes an encrypted run with the key from --encryption-key-file, and says what is missing without it', async () => {
    const out = await tempDir('cc-enc-ui-');
    const keyDir = await tempDir('cc-enc-key-');
    const keyFile = join(keyDir, 'key');
    await writeFile(keyFile, `${KEY}\n`);
    const args = ['generate', '--out', out, '--model', 'test-model', '--dialogs-per-intent', '1'];
    const finished = await runCli([...args, '--turns', '1', '--intents', 'transaction'], env());
    assert.equal(finished.code, 0, finished.stderr);
    const { CONSISTENT_CHAT_ENCRYPTION_KEY: _unused, ...noKey } = env();

    const blind = await startUi([out], noKey);
    try {
      assert.ok(blind.url, blind.stdout());
      assert.match(blind.stdout(), /warning: .*encrypted.*--encryption-key-file/);
    } finally {
      blind.ui.child.kill('SIGINT');
      await blind.ui.done;
    }

    const seeing = await startUi([out, '--encryption-key-file', keyFile], noKey);
    const browser = await launchChromium();
    try {
      assert.ok(seeing.url, seeing.stdout());
      assert.doesNotMatch(seeing.stdout(), /warning/);
      const page = await browser.newPage();
      const decodeCalls: string[] = [];
      page.on('response', (r) => {
        if (new URL(r.url()).pathname.endsWith('/decode') && r.status() === 200) decodeCalls.push(r.url());
      });
      await page.goto(seeing.url);
      // The run's input names its output directory: readable only once decoded.
      const found = await page
        .getByText(out)
        .first()
        .waitFor({ timeout: 60_000 })
        .then(() => true)
        .catch(() => false);
      await page.screenshot({ path: join(out, 'ui-dir-decoded.png'), fullPage: true });
      assert.ok(
        decodeCalls.length > 0,
        'the UI got answers from the codec endpoint (CORS allowed its origin)',
      );
      assert.ok(found, `the decoded input (${out}) is shown`);
    } finally {
      await browser.close();
      seeing.ui.child.kill('SIGINT');
      await seeing.ui.done;
    }
  });
});
