/** Dialogue metrics: values counted by hand on small dialogues (the counts are in the comments). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  METRICS_VERSION,
  METRIC_FIELDS,
  MetricsAccumulator,
  dialogueMetrics,
  distinctN,
  metricsOf,
  restatedQueries,
  selfRepetition,
} from '../../src/method/metrics';
import { textWords } from '../../src/method/replies';

const turns = (...pairs: [string, string][]) =>
  pairs.flatMap(([user, assistant]) => [
    { role: 'user' as const, value: user },
    { role: 'assistant' as const, value: assistant },
  ]);

// Queries: 7 + 6 words, 13 distinct; bigrams 6 + 5, 11 distinct.
// Responses: 10 + 8 words, 12 distinct (the, hole, is repeated); bigrams 9 + 7 = 16, 14 distinct
// ("the hole" three times). Trigrams: response 2's six share none with response 1's eight.
const TYRE = turns(
  ['How do I fix a flat tyre?', 'Remove the wheel, find the hole, and patch the hole.'],
  ['What if the hole is big?', 'If the hole is big, replace the tube.'],
);

test('dialogueMetrics: counts distinct-1/2, words and repetition of a two-turn dialogue as by hand', () => {
  assert.deepEqual(dialogueMetrics(TYRE), {
    version: METRICS_VERSION,
    distinct_1: { user: 1, assistant: 0.6667 },
    distinct_2: { user: 1, assistant: 0.875 },
    words_per_query: 6.5,
    words_per_response: 9,
    self_repetition: 0,
    self_repetition_max: 0,
    restated_queries: 0,
  });
});

test('distinctN: n-grams never span two texts, and nothing to count is null', () => {
  // "a b" + "b a": bigrams "a b", "b a" (2 of 2); joined they would add "b b".
  assert.equal(distinctN([textWords('a b'), textWords('b a')], 2), 1);
  assert.equal(distinctN([textWords('yes'), textWords('no')], 2), null);
  assert.equal(distinctN([textWords('yes yes yes yes')], 1), 0.25);
});

test('selfRepetition: pools reused trigrams over responses 2..n and keeps the worst one', () => {
  const responses = ['one two three four five', 'one two three four six', 'seven eight nine'].map(textWords);
  // Response 2 reuses 2 of its 3 trigrams, response 3 none of its 1: pooled 2/4, worst 2/3.
  assert.deepEqual(selfRepetition(responses), { pooled: 0.5, max: 0.6667 });
  assert.deepEqual(selfRepetition([textWords('only one response here')]), { pooled: null, max: null });
});

test('restatedQueries: counts later queries that repeat half of an earlier one, or its exact words', () => {
  const base = 'please tell me about the tides in the bay'; // 7 trigrams
  const q = (s: string) => textWords(s);
  // Holds all of base's trigrams (7/7).
  assert.equal(restatedQueries([q(base), q(`${base} and the moon`)]), 1);
  // 4 of its 6 trigrams are base's: 0.67.
  assert.equal(restatedQueries([q(base), q('what about the tides in the bay today')]), 1);
  // 3 of 6: exactly at the 0.5 limit.
  assert.equal(restatedQueries([q(base), q('where do the tides in the bay go')]), 1);
  // 2 of 5: 0.4, below.
  assert.equal(restatedQueries([q(base), q('when do tides in the bay turn')]), 0);
  // Short queries count only when their words are the same (case and punctuation aside).
  assert.equal(restatedQueries([q('Ok, thanks!'), q('ok thanks'), q('thanks ok')]), 1);
});

test('metricsOf: uses stored metrics of the current version and recomputes missing or older ones', () => {
  const fresh = dialogueMetrics(TYRE);
  const planted = { ...fresh, restated_queries: 5 };
  assert.deepEqual(metricsOf({ conversation: TYRE, metrics: planted }), { metrics: planted, stored: true });
  assert.deepEqual(metricsOf({ conversation: TYRE }), { metrics: fresh, stored: false });
  assert.deepEqual(metricsOf({ conversation: TYRE, metrics: { ...planted, version: 0 } }), {
    metrics: fresh,
    stored: false,
  });
});

test('METRIC_FIELDS: reads each named metric out of a record', () => {
  const m = dialogueMetrics(TYRE);
  assert.equal(METRIC_FIELDS['distinct_2.assistant'](m), 0.875);
  assert.equal(METRIC_FIELDS.words_per_query(m), 6.5);
  assert.equal(METRIC_FIELDS.restated_queries(m), 0);
});

test('MetricsAccumulator: means, bin-start quantiles, exact extremes, pooled words and the paper band', () => {
  const acc = new MetricsAccumulator();
  const base = dialogueMetrics(TYRE);
  // Words per query 19 (in the 18.7-20.8 band), 10 and 30; 2, 1 and 1 queries: pooled (38+10+30)/4.
  const values = [
    { q: 19, turns: 2, d2: 0.29 },
    { q: 10, turns: 1, d2: 0.5 },
    { q: 30, turns: 1, d2: 0.91 },
  ];
  for (const [i, v] of values.entries())
    acc.add({ ...base, words_per_query: v.q, distinct_2: { user: null, assistant: v.d2 } }, v.turns, i === 0);
  const s = acc.summary();
  assert.equal(s.dialogues, 3);
  assert.equal(s.stored, 1);
  assert.equal(s.pooled.wordsPerQuery, 19.5);
  assert.equal(s.pooled.queries, 4);
  assert.equal(s.inBand.query, 1);
  const d2 = s.metrics['distinct_2.assistant'];
  assert.deepEqual([d2.n, d2.nulls, d2.mean, d2.min, d2.max], [3, 0, 0.5667, 0.29, 0.91]);
  // 0.29 lands in the 0.29 bin, not 0.28; the median of three is the second.
  assert.deepEqual(d2.bins, [
    [0.29, 1],
    [0.5, 1],
    [0.91, 1],
  ]);
  assert.deepEqual([d2.p10, d2.p50, d2.p90], [0.29, 0.5, 0.91]);
  assert.equal(s.metrics['distinct_2.user'].nulls, 3);
});
