import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INTENT_IDS } from '../../src/method/intents';
import { TOPICS } from '../../src/method/topics';

const STOP_WORDS = new Set([
  'a',
  'an',
  'the',
  'of',
  'to',
  'in',
  'on',
  'for',
  'and',
  'or',
  'with',
  'at',
  'by',
]);

/** A topic reduced to its sorted content words, so reworded copies of one topic collide. */
const contentKey = (topic: string): string =>
  [
    ...new Set(
      topic
        .toLowerCase()
        .replace(/[^a-z0-9\s]/g, ' ')
        .split(/\s+/)
        .filter((word) => word && !STOP_WORDS.has(word)),
    ),
  ]
    .sort()
    .join(' ');

const allTopics = () => INTENT_IDS.flatMap((intent) => TOPICS[intent].map((topic) => ({ intent, topic })));

test('topics: there is a topic list for exactly the nine intents', () => {
  assert.equal(INTENT_IDS.length, 9);
  assert.deepEqual(Object.keys(TOPICS).sort(), [...INTENT_IDS].sort());
});

test('topics: every intent has at least 30 topics', () => {
  for (const intent of INTENT_IDS) {
    assert.ok(TOPICS[intent].length >= 30, `${intent} has only ${TOPICS[intent].length} topics`);
  }
});

test('topics: no topic repeats within or across intents (case-insensitive)', () => {
  const seen = new Map<string, string>();
  for (const { intent, topic } of allTopics()) {
    const key = topic.trim().toLowerCase();
    assert.ok(!seen.has(key), `"${topic}" in ${intent} repeats a topic from ${seen.get(key)}`);
    seen.set(key, intent);
  }
});

test('topics: no two topics are rewordings with the same content words', () => {
  const seen = new Map<string, string>();
  for (const { topic } of allTopics()) {
    const key = contentKey(topic);
    assert.ok(!seen.has(key), `"${topic}" has the same content words as "${seen.get(key)}"`);
    seen.set(key, topic);
  }
});

test('topics: topics are short single-line ASCII phrases', () => {
  for (const { intent, topic } of allTopics()) {
    const where = `${intent}: "${topic}"`;
    assert.ok(topic.length >= 10 && topic.length <= 100, `length out of 10..100: ${where}`);
    assert.ok(!/[\r\n]/.test(topic), `contains a line break: ${where}`);
    assert.ok(/^[\x20-\x7e]+$/.test(topic), `not plain printable ASCII: ${where}`);
    assert.equal(topic, topic.trim(), `leading or trailing space: ${where}`);
    assert.ok(!/[.!?;:,]$/.test(topic), `ends with punctuation: ${where}`);
    assert.ok(/^[A-Z0-9]/.test(topic), `not sentence case: ${where}`);
    const words = topic.split(/\s+/).length;
    assert.ok(words >= 3 && words <= 10, `${words} words, expected 3..10: ${where}`);
  }
});
