import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUILTIN_ATTRIBUTES,
  attributeAxesSchema,
  attributeSpaceSize,
  resolveAttributes,
} from '../../src/method/attributes';
import { toDialogueRecord } from '../../src/method/dialogue';
import { planDialogue, seededIndexPermutation } from '../../src/method/plan';
import { skeletonMessages } from '../../src/method/prompts';
import { runInputSchema } from '../../src/run/schemas';

test('plan: the index permutation is a bijection of 0..n-1 for any size', () => {
  for (const n of [1, 2, 3, 7, 64, 1_000, 3_840, 100_003]) {
    const permute = seededIndexPermutation(n, `seed-${n}`);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const j = permute(i);
      assert.ok(Number.isInteger(j) && j >= 0 && j < n, `${j} out of 0..${n - 1}`);
      assert.equal(seen[j], 0, `${j} hit twice for n = ${n}`);
      seen[j] = 1;
    }
  }
  // Another seed, another order.
  const a = seededIndexPermutation(1_000, 'a');
  const b = seededIndexPermutation(1_000, 'b');
  assert.ok(Array.from({ length: 50 }, (_, i) => a(i) !== b(i)).filter(Boolean).length > 40);
});

test('plan: attributes leave intent, flow and topic as a run without them plans them', () => {
  for (let index = 0; index < 200; index++) {
    const args = { runId: 'r', seed: 's', intent: 'transaction' as const, index };
    const plain = planDialogue(args);
    const varied = planDialogue({ ...args, attributes: BUILTIN_ATTRIBUTES });
    assert.equal(plain.attributes, undefined);
    assert.deepEqual({ ...varied, attributes: undefined }, { ...plain, attributes: undefined });
    assert.deepEqual(Object.keys(varied.attributes!), ['user', 'expertise', 'tone', 'situation']);
  }
});

test('plan: no (topic, attributes) pair repeats until the whole space of an intent is used', () => {
  const size = attributeSpaceSize(BUILTIN_ATTRIBUTES);
  assert.equal(size, 3_840);
  const topics = 40;
  const seen = new Set<string>();
  const first = topics * size;
  for (let index = 0; index < first; index++) {
    const plan = planDialogue({
      runId: 'r',
      seed: 'x',
      intent: 'educational',
      index,
      attributes: BUILTIN_ATTRIBUTES,
    });
    const key = `${plan.topic}|${JSON.stringify(plan.attributes)}`;
    assert.ok(!seen.has(key), `dialogue ${index} repeats ${key}`);
    seen.add(key);
  }
  // The next cycle starts over: the first dialogue past the space repeats an earlier pair.
  const next = planDialogue({
    runId: 'r',
    seed: 'x',
    intent: 'educational',
    index: first,
    attributes: BUILTIN_ATTRIBUTES,
  });
  assert.ok(seen.has(`${next.topic}|${JSON.stringify(next.attributes)}`));
});

test('plan: each attribute axis is evenly spread over a run’s first dialogues', () => {
  const n = 4_000;
  for (const axis of BUILTIN_ATTRIBUTES) {
    const counts = new Map<string, number>();
    for (let index = 0; index < n; index++) {
      const value = planDialogue({
        runId: 'r',
        seed: 'even',
        intent: 'exploratory',
        index,
        attributes: BUILTIN_ATTRIBUTES,
      }).attributes![axis.name]!;
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    const expected = n / axis.values.length;
    assert.equal(counts.size, axis.values.length, `${axis.name}: every value used`);
    for (const [value, count] of counts)
      assert.ok(
        Math.abs(count - expected) < expected * 0.35,
        `${axis.name}=${value}: ${count}, expected ${expected}`,
      );
  }
});

test('plan: the skeleton prompt carries the planned user, and the record keeps it', () => {
  const plan = planDialogue({
    runId: 'r',
    seed: 's',
    intent: 'transaction',
    index: 3,
    attributes: BUILTIN_ATTRIBUTES,
  });
  const user = skeletonMessages(plan, 4)[1]!.content as string;
  for (const [name, value] of Object.entries(plan.attributes!))
    assert.ok(user.includes(`- ${name}: ${value}`), user);
  const plain = skeletonMessages({ ...plan, attributes: undefined }, 4)[1]!.content as string;
  assert.ok(!plain.includes('in the background'), 'a run without attributes sends the prompt it always did');
  const record = toDialogueRecord({
    plan,
    skeleton: { category: 'Tickets', queries: ['a', 'b'] },
    responses: ['c', 'd'],
    model: 'm',
  });
  assert.deepEqual(record.attributes, plan.attributes);
});

test('plan: run inputs take builtin, none or axes, and refuse bad axes naming the field', () => {
  const base = { runId: 'r', outDir: '/tmp/x', model: 'm' };
  assert.equal(
    resolveAttributes(runInputSchema.parse({ ...base }).attributes),
    undefined,
    'older inputs: none',
  );
  assert.equal(
    resolveAttributes(runInputSchema.parse({ ...base, attributes: 'builtin' }).attributes),
    BUILTIN_ATTRIBUTES,
  );
  assert.equal(
    resolveAttributes(runInputSchema.parse({ ...base, attributes: 'none' }).attributes),
    undefined,
  );
  const own = [{ name: 'mood', values: ['calm', 'upset'] }];
  assert.deepEqual(runInputSchema.parse({ ...base, attributes: own }).attributes, own);
  for (const bad of [
    [{ name: 'Mood', values: ['x'] }],
    [{ name: 'mood', values: ['x', 'x'] }],
    [{ name: 'mood', values: [] }],
    Array.from({ length: 6 }, (_, i) => ({
      name: `a${i}`,
      values: Array.from({ length: 40 }, (_, j) => `v${j}`),
    })),
  ]) {
    const parsed = runInputSchema.safeParse({ ...base, attributes: bad });
    assert.equal(parsed.success, false, JSON.stringify(bad).slice(0, 80));
    assert.equal(parsed.error.issues[0]!.path[0], 'attributes');
  }
  assert.equal(attributeAxesSchema.safeParse(BUILTIN_ATTRIBUTES).success, true);
});
