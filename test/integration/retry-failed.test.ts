/**
 * `generate --retry-failed` (issue 27 item 10) against the fault-injecting test server: it retries
 * exactly the dialogues failures.jsonl records, once each, books them in the summary, and leaves
 * failures.jsonl holding only what failed again.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, spawnCli, generateArgs, type GenerateSettings } from '../helpers/cli';
import { waitFor } from '../helpers/wait';
import { readDialogues, readFailures } from '../helpers/output';
import { tempDir } from '../helpers/temporal';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { CALIBRATION_SET } from '../../src/method/calibration';
import type { RunSummary } from '../../src/run/schemas';

let llm: LlmServer;
before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 5 }, seed: 27 });
});
after(async () => {
  await llm?.close();
});

const env = () => ({ OPENAI_API_KEY: 'sk-retry', OPENAI_BASE_URL: llm.url, TEMPORAL_ADDRESS: '' });
const summaryOf = async (out: string) =>
  JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as RunSummary;

/** A run in which every chat call fails, so each of its dialogues is recorded in failures.jsonl. */
async function failedRun(
  prefix: string,
  shape: GenerateSettings & { dialogs: number },
  ...extra: string[]
): Promise<{ out: string; args: string[]; failedIds: string[] }> {
  const out = await tempDir(prefix);
  const args = generateArgs(out, shape, ...extra);
  llm.configure({ alwaysFail: 'serverError', faults: {}, hold: false });
  const first = await runCli(args, env());
  assert.equal(first.code, 1, first.stderr);
  const failedIds = (await readFailures(out)).map((f) => f.id).sort();
  assert.equal(failedIds.length, shape.dialogs);
  return { out, args, failedIds };
}

describe('retry failed', () => {
  test('retry failed: only the recorded failures are retried, once each, booked, and failures.jsonl keeps what failed again', async () => {
    const { out, args, failedIds } = await failedRun(
      'cc-retry-',
      { dialogs: 4, turns: 1, intents: 'transaction', concurrency: 2 },
      '--max-attempts',
      '1',
    );

    // First retry: half the calls fail; each failed dialogue gets exactly one skeleton call.
    llm.configure({ alwaysFail: undefined, faults: { serverError: 0.5 } });
    llm.resetStats();
    const retry = await runCli([...args, '--retry-failed'], env());
    assert.ok(retry.code === 0 || retry.code === 1, retry.stderr);
    assert.match(retry.stderr, /retried 4 failed dialogues once each/);
    assert.equal(llm.stats().stages.skeleton, 4, 'one skeleton call per recorded failure');
    const written = (await readDialogues(out)).map((r) => r.id);
    const failedAgain = (await readFailures(out)).map((f) => f.id);
    assert.deepEqual(
      [...written, ...failedAgain].sort(),
      failedIds,
      'each failure ends written or failed again, once',
    );
    assert.equal(new Set(failedAgain).size, failedAgain.length);
    assert.equal(retry.code, failedAgain.length > 0 ? 1 : 0);
    const booked = await summaryOf(out);
    assert.equal(booked.written, written.length);
    assert.equal(booked.failed, failedAgain.length);

    // Second retry, no faults: what failed again is written, and nothing else is called.
    llm.configure({ faults: {} });
    llm.resetStats();
    const second = await runCli([...args, '--retry-failed'], env());
    if (failedAgain.length > 0) {
      assert.equal(second.code, 0, second.stderr);
      assert.equal(llm.stats().stages.skeleton, failedAgain.length);
    } else {
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, /--retry-failed: .*nothing to retry/);
    }
    const all = (await readDialogues(out)).map((r) => r.id).sort();
    assert.deepEqual(all, failedIds, 'every dialogue written once');
    assert.deepEqual(await readFailures(out), []);
    assert.deepEqual(await summaryOf(out).then((s) => [s.written, s.failed]), [4, 0]);

    const nothing = await runCli([...args, '--retry-failed'], env());
    assert.equal(nothing.code, 2, nothing.stderr);
    assert.match(nothing.stderr, /^error: --retry-failed: .*nothing to retry\n$/);
  });

  test("retry failed: a run with a judge keeps the judge's verdicts, tokens and calibration in its books after a retry", async () => {
    // Every call of the first run fails: the calibration goes unscored, every dialogue fails.
    const { out, args } = await failedRun(
      'cc-retry-judge-',
      { dialogs: 3, turns: 1, intents: 'transaction', concurrency: 2 },
      '--max-attempts',
      '1',
      '--judge',
    );
    const before = await summaryOf(out);
    assert.equal(before.calibration?.unscored, CALIBRATION_SET.length);

    llm.configure({ alwaysFail: undefined });
    llm.resetStats();
    const retry = await runCli([...args, '--retry-failed'], env());
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(llm.stats().stages.judge, 3, 'the retried dialogues judged; no calibration again');
    const summary = await summaryOf(out);
    assert.equal(summary.written, 3);
    assert.equal(summary.judge?.judged, 3, JSON.stringify(summary.judge));
    assert.ok((summary.stageTokens?.judge?.prompt ?? 0) > 0, JSON.stringify(summary.stageTokens));
    assert.deepEqual(summary.calibration, before.calibration, 'the calibration kept');
    assert.ok(
      (summary.failedAttempts?.judge?.calls ?? 0) >= (before.failedAttempts?.judge?.calls ?? 0),
      "the calibration's failed attempts kept",
    );
    assert.equal(
      summary.llmCalls,
      before.llmCalls + 3 * 3,
      'skeleton, responses and judge per retried dialogue',
    );
    assert.match(retry.stdout, /judge \(test-model\): 3 scored/);
  });

  test('retry failed: a retry killed mid-way resumes as the same retry, and each dialogue ends written once', async () => {
    const { out, args, failedIds } = await failedRun(
      'cc-retry-crash-',
      { dialogs: 3, turns: 1, intents: 'educational', concurrency: 3 },
      '--max-attempts',
      '2',
    );

    // The retry's calls are held at the endpoint; the process is killed while they wait.
    llm.configure({ alwaysFail: undefined, hold: true });
    llm.resetStats();
    const killed = spawnCli([...args, '--retry-failed'], env());
    let stderr = '';
    killed.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => llm.stats().inFlight > 0, 120_000, 'a retried call in flight');
    killed.child.kill('SIGKILL');
    await killed.done;
    const retryId = /retrying failed dialogues in (\S+)/.exec(stderr)?.[1];
    assert.ok(retryId, stderr);
    assert.deepEqual(
      (await readFailures(out)).map((f) => f.id).sort(),
      failedIds,
      'failures.jsonl untouched mid-retry',
    );

    llm.configure({ hold: false });
    const resumed = await runCli([...args, '--retry-failed'], env());
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      new RegExp(`retrying failed dialogues in ${retryId.replace(/\./g, '\\.')} `),
    );
    assert.match(resumed.stderr, /retried 3 failed dialogues once each; 0 in failures.jsonl now/);
    assert.deepEqual((await readDialogues(out)).map((r) => r.id).sort(), failedIds);
    assert.deepEqual(await readFailures(out), []);
  });
});
