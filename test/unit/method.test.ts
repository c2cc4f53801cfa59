import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  INFO_FLOWS,
  INTENT_IDS,
  INTENTS,
  TOPICS,
  defaultMaxTokens,
  extractJson,
  planDialogue,
  resolveIntent,
  responsesJsonSchema,
  responsesMessages,
  responsesReplySchema,
  seededPermutation,
  skeletonJsonSchema,
  skeletonMessages,
  skeletonReplySchema,
  toDialogueRecord,
} from '../../src/method';
import { dialogueRecordSchema } from '../../src/run/schemas';

const plans = (seed: string, intent: (typeof INTENT_IDS)[number], n: number) =>
  Array.from({ length: n }, (_, index) => planDialogue({ runId: 'r', seed, intent, index }));

test('plan: the same seed gives the same plan and another seed another', () => {
  for (const intent of INTENT_IDS) {
    assert.deepEqual(plans('s1', intent, 50), plans('s1', intent, 50));
  }
  assert.notDeepEqual(plans('s1', 'educational', 50), plans('s2', 'educational', 50));
});

test('plan: no topic repeats while unused topics remain, and every topic is used each cycle', () => {
  for (const intent of INTENT_IDS) {
    const topics = TOPICS[intent];
    const drawn = plans('spread', intent, topics.length * 2).map((p) => p.topic);
    const firstCycle = drawn.slice(0, topics.length);
    assert.equal(
      new Set(firstCycle).size,
      topics.length,
      `${intent}: a topic repeated within the first cycle`,
    );
    assert.equal(new Set(drawn.slice(topics.length)).size, topics.length);
    // Cycles are permuted afresh, not replayed in the same order.
    assert.notDeepEqual(firstCycle, drawn.slice(topics.length));
  }
});

test('plan: every intent uses only its own info flows, and all of them, evenly', () => {
  for (const intent of INTENT_IDS) {
    const flows = INTENTS[intent].infoFlows;
    const counts = new Map<string, number>();
    for (const p of plans('flows', intent, 40)) counts.set(p.infoFlow, (counts.get(p.infoFlow) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [...flows].sort());
    for (const c of counts.values()) assert.equal(c, 40 / flows.length);
  }
});

test('plan: dialogue ids are unique and name the run, intent and index', () => {
  const ids = INTENT_IDS.flatMap((intent) => plans('ids', intent, 30).map((p) => p.id));
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(
    planDialogue({ runId: 'run-1', seed: 'x', intent: 'transaction', index: 7 }).id,
    'run-1.transaction.7',
  );
});

test('plan: seeded permutations are permutations', () => {
  for (const n of [1, 2, 7, 40]) {
    assert.deepEqual(
      [...seededPermutation(n, 'p')].sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
    );
  }
});

test('intents: names, slugs and case all resolve; unknown names do not', () => {
  assert.equal(resolveIntent('Problem Solving Interaction'), 'problem_solving');
  assert.equal(resolveIntent('emotional-support'), 'emotional_support');
  assert.equal(resolveIntent(' TRANSACTION '), 'transaction');
  assert.equal(resolveIntent('gossip'), undefined);
  assert.equal(INTENT_IDS.length, 9);
  for (const intent of INTENT_IDS) for (const flow of INTENTS[intent].infoFlows) assert.ok(INFO_FLOWS[flow]);
});

test('prompts: the skeleton prompt states the intent, flow steps, topic and exact count', () => {
  const plan = planDialogue({ runId: 'r', seed: 's', intent: 'health_consultation', index: 0 });
  const [system, user] = skeletonMessages(plan, 7);
  assert.equal(system?.role, 'system');
  const text = user?.content as string;
  assert.match(text, /Health Consultation Interaction/);
  assert.match(text, new RegExp(INFO_FLOWS[plan.infoFlow]!.name));
  for (const step of INFO_FLOWS[plan.infoFlow]!.steps) assert.ok(text.includes(step));
  assert.ok(text.includes(plan.topic));
  assert.match(text, /Number of user queries: 7/);
  assert.match(text, /exactly 7 strings/);
});

test('prompts: the responses prompt shows the whole skeleton and asks for one response per query', () => {
  const plan = planDialogue({ runId: 'r', seed: 's', intent: 'educational', index: 3 });
  const skeleton = {
    category: 'Photosynthesis Basics',
    queries: ['what is chlorophyll', 'why green though', 'and at night?'],
  };
  const text = responsesMessages(plan, skeleton)[1]?.content as string;
  for (const q of skeleton.queries) assert.ok(text.includes(q));
  assert.match(text, /Number of responses: 3/);
  assert.match(text, /Photosynthesis Basics/);
});

test('prompts: token limits grow with the number of turns', () => {
  assert.ok(defaultMaxTokens(12).responses > defaultMaxTokens(6).responses);
  assert.ok(defaultMaxTokens(6).skeleton >= 800);
});

test('replies: exact counts and non-empty strings are enforced', () => {
  const schema = skeletonReplySchema(3);
  assert.ok(schema.safeParse({ category: 'A B', queries: ['a', 'b', 'c'] }).success);
  assert.equal(schema.safeParse({ category: 'A B', queries: ['a', 'b'] }).success, false);
  assert.equal(schema.safeParse({ category: 'A B', queries: ['a', '  ', 'c'] }).success, false);
  assert.equal(schema.safeParse({ category: '', queries: ['a', 'b', 'c'] }).success, false);
  assert.equal(responsesReplySchema(2).safeParse({ responses: ['x', 'y', 'z'] }).success, false);
  assert.ok(responsesReplySchema(2).safeParse({ responses: ['x', 'y'] }).success);
});

test('replies: control characters are stripped and oversized strings rejected', () => {
  const parsed = responsesReplySchema(1).parse({ responses: ['he\u0000llo\u0007 there\r\nfriend'] });
  assert.deepEqual(parsed.responses, ['hello there\nfriend']);
  assert.equal(responsesReplySchema(1).safeParse({ responses: ['x'.repeat(20_000)] }).success, false);
});

test('replies: wrapped items are unwrapped', () => {
  const parsed = responsesReplySchema(2).parse({ responses: [{ content: 'a' }, { response: 'b' }] });
  assert.deepEqual(parsed.responses, ['a', 'b']);
});

test('replies: JSON is found in fences, prose, and plain text; garbage is a SyntaxError', () => {
  const value = { responses: ['a {curly} "quoted" one', 'b'] };
  const json = JSON.stringify(value);
  assert.deepEqual(extractJson(json), value);
  assert.deepEqual(extractJson('```json\n' + json + '\n```'), value);
  assert.deepEqual(extractJson('Sure! Here it is:\n' + json + '\nAnything else?'), value);
  assert.throws(() => extractJson('{"responses": ["a", '), SyntaxError);
  assert.throws(() => extractJson('no json here'), SyntaxError);
});

test('replies: JSON schemas are strict-mode shaped with exact counts', () => {
  for (const schema of [skeletonJsonSchema(4), responsesJsonSchema(4)]) {
    assert.equal(schema.additionalProperties, false);
    const props = schema.properties as Record<string, { minItems?: number; maxItems?: number }>;
    assert.deepEqual(schema.required, Object.keys(props));
    const array = Object.values(props).find((p) => p.minItems !== undefined)!;
    assert.equal(array.minItems, 4);
    assert.equal(array.maxItems, 4);
  }
});

test('dialogue: records interleave queries and responses in the seed format', () => {
  const plan = planDialogue({ runId: 'r', seed: 's', intent: 'transaction', index: 0 });
  const record = toDialogueRecord({
    plan,
    skeleton: { category: 'Flight Booking', queries: ['q1', 'q2'] },
    responses: ['r1', 'r2'],
    model: 'm',
  });
  assert.deepEqual(record.conversation, [
    { role: 'user', value: 'q1' },
    { role: 'assistant', value: 'r1' },
    { role: 'user', value: 'q2' },
    { role: 'assistant', value: 'r2' },
  ]);
  assert.equal(record.category, 'Flight Booking');
  assert.equal(record.intent, 'Transaction Interaction');
  assert.equal(record.info_flow, INFO_FLOWS[plan.infoFlow]!.name);
  assert.deepEqual(Object.keys(record), [
    'id',
    'category',
    'conversation',
    'intent',
    'info_flow',
    'topic',
    'model',
  ]);
  assert.ok(dialogueRecordSchema.safeParse(record).success);
  assert.throws(() =>
    toDialogueRecord({ plan, skeleton: { category: 'x', queries: ['q1'] }, responses: [], model: 'm' }),
  );
});

test('topics: every intent has at least 30 short, distinct, single-line topics', () => {
  const seen = new Set<string>();
  for (const intent of INTENT_IDS) {
    assert.ok(TOPICS[intent].length >= 30, intent);
    for (const topic of TOPICS[intent]) {
      assert.ok(
        topic.length >= 10 && topic.length <= 100 && !topic.includes('\n') && !topic.endsWith('.'),
        topic,
      );
      assert.ok(!seen.has(topic.toLowerCase()), `repeated topic: ${topic}`);
      seen.add(topic.toLowerCase());
    }
  }
});
