import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunConfig } from '../../src/run/schemas';
import {
  abortedFailures,
  countCall,
  countFailedAttempts,
  failureRecord,
  finishedDialogues,
  openBooks,
  planNext,
  progressOf,
  SYSTEMIC_FAILURE_LIMIT,
  SystemicWatch,
} from '../../src/workflows/intent/books';

// Only the fields the books read: the plan's seed and the run id.
const config = { runId: 'run-1', seed: 'seed-1' } as RunConfig;

test('books: a fresh intent starts at zero with the run paused or not', () => {
  const books = openBooks(undefined, true);
  assert.equal(books.nextIndex, 0);
  assert.equal(books.paused, true);
  assert.equal(finishedDialogues(books), 0);
  assert.deepEqual(books.stageTokens.responses, { prompt: 0, completion: 0 });
  assert.deepEqual(books.failedAttempts.skeleton, { calls: 0, prompt: 0, completion: 0 });
});

test('books: a state carried over from before the newer fields keeps its totals and gains the fields', () => {
  const carried = {
    nextIndex: 7,
    written: 5,
    failed: 1,
    llmCalls: 12,
    promptTokens: 900,
    completionTokens: 300,
    paused: false,
    continuedAsNew: 1,
  };
  const books = openBooks(carried, true);
  assert.equal(books, carried, 'the carried state is the one the intent keeps counting in');
  assert.equal(books.paused, false, 'the carried pause state wins over the run config');
  assert.equal(books.duplicates, 0);
  assert.equal(finishedDialogues(books), 6);
  assert.deepEqual(books.stageTokens.skeleton, { prompt: 0, completion: 0 });
});

test('books: calls count in the totals and by stage, failed attempts apart', () => {
  const books = openBooks(undefined, false);
  countCall(books, 'skeleton', { promptTokens: 10, completionTokens: 4 });
  countCall(books, 'responses', { promptTokens: 20, completionTokens: 8 });
  countFailedAttempts(books, 'responses', { calls: 2, promptTokens: 30, completionTokens: 0 });
  countFailedAttempts(books, 'skeleton', undefined);
  assert.equal(books.llmCalls, 2);
  assert.equal(books.promptTokens, 30);
  assert.equal(books.completionTokens, 12);
  assert.deepEqual(books.stageTokens.responses, { prompt: 20, completion: 8 });
  assert.deepEqual(books.failedAttempts.responses, { calls: 2, prompt: 30, completion: 0 });
  assert.deepEqual(books.failedAttempts.skeleton, { calls: 0, prompt: 0, completion: 0 });
});

test('books: the plan advances one dialogue at a time, the same for the same seed', () => {
  const a = openBooks(undefined, false);
  const b = openBooks(undefined, false);
  const first = planNext(a, config, 'educational');
  assert.equal(a.nextIndex, 1);
  assert.deepEqual(planNext(b, config, 'educational'), first);
  assert.notEqual(planNext(a, config, 'educational').id, first.id);
});

test('books: systemic failures in a row stop the intent, a success between resets the count', () => {
  const books = openBooks(undefined, false);
  const watch = new SystemicWatch();
  watch.failed(books, 'Llm.Auth', 'bad key');
  watch.failed(books, 'Llm.Auth', 'bad key');
  watch.succeeded();
  for (let i = 1; i < SYSTEMIC_FAILURE_LIMIT; i++) watch.failed(books, 'Llm.Auth', 'bad key');
  watch.failed(books, 'Llm.RateLimit', 'not systemic');
  assert.equal(books.abortReason, undefined);
  watch.failed(books, 'Llm.BadRequest', 'no such model');
  assert.deepEqual(books.abortReason, { type: 'Llm.BadRequest', message: 'no such model' });
  watch.failed(books, 'Llm.Auth', 'later');
  assert.deepEqual(
    books.abortReason,
    { type: 'Llm.BadRequest', message: 'no such model' },
    'the first reason is kept',
  );
});

test('books: after an abort the rest of the plan becomes failures, a batch at a time', () => {
  const books = openBooks(undefined, false);
  planNext(books, config, 'transaction');
  assert.deepEqual(abortedFailures(books, config, 'transaction', 5, 3), [], 'nothing without an abort');
  books.abortReason = { type: 'Llm.Auth', message: 'bad key' };
  const first = abortedFailures(books, config, 'transaction', 5, 3);
  const second = abortedFailures(books, config, 'transaction', 5, 3);
  assert.deepEqual([first.length, second.length, books.nextIndex], [3, 1, 5]);
  assert.ok(first.every((f) => f.stage === 'skeleton' && f.type === 'Llm.Auth'));
  assert.match(first[0]!.reason, /not attempted: .* Llm\.Auth: bad key/);
});

test('books: a failure record names the plan, the stage and the reason', () => {
  const plan = planNext(openBooks(undefined, false), config, 'educational');
  const record = failureRecord(config, plan, 'responses', 'Llm.InvalidOutput', 'no JSON');
  assert.equal(record.id, plan.id);
  assert.equal(record.topic, plan.topic);
  assert.equal(record.stage, 'responses');
  assert.ok(!Number.isNaN(Date.parse(record.failed_at)));
});

test('books: progress shows the books beside the live window', () => {
  const books = openBooks(undefined, false);
  books.written = 3;
  books.duplicates = 1;
  const p = progressOf(books, 'educational', 10, { inFlight: 2, concurrency: 4 }, 'running');
  assert.equal(p.written, 3);
  assert.equal(p.duplicates, 1);
  assert.equal(p.inFlight, 2);
  assert.equal(p.concurrency, 4);
  assert.equal(p.planned, 10);
  assert.equal(p.status, 'running');
});
