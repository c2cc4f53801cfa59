/** Dialogue metrics: values counted by hand on small dialogues (the counts are in the comments). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  METRICS_VERSION,
  METRIC_FIELDS,
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
