import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkSubtopics,
  expandSettingsSchema,
  leavesNeeded,
  screenSubtopics,
  TopicDedup,
  topicsReplySchema,
} from '../../src/method/expansion';

const defaults = expandSettingsSchema.parse({});

test('expansion: leaves needed grow with the run and stay within the taxonomy bound', () => {
  assert.equal(leavesNeeded(200, defaults), 32, '200 dialogues: fewer than 40 seeds need no expansion');
  assert.equal(leavesNeeded(10_000, defaults), 1_563);
  assert.equal(leavesNeeded(1_000_000, defaults), 2_000);
  // Calls: each adds subtopicsPerCall - 1 leaves over the 40 seeds: well under one per 50 dialogues.
  const calls = Math.ceil((leavesNeeded(10_000, defaults) - 40) / (defaults.subtopicsPerCall - 1));
  assert.ok(calls * 50 < 10_000, `${calls} calls for 10,000 dialogues`);
});

test('expansion: a reply holds between half and all of the subtopics asked, each a short line', () => {
  const schema = topicsReplySchema(4);
  assert.ok(
    schema.safeParse({ subtopics: ['Slugs under the rhubarb leaves', 'Slugs in a raised bed'] }).success,
  );
  assert.ok(!schema.safeParse({ subtopics: ['Slugs under the rhubarb leaves'] }).success, 'too few');
  assert.ok(!schema.safeParse({ subtopics: ['short', 'Slugs in a raised bed'] }).success, 'too short');
  assert.ok(!schema.safeParse({ subtopics: ['x'.repeat(200), 'Slugs in a raised bed'] }).success, 'too long');
});

test('expansion: subtopics that restate their parent or change script are dropped; too many drops fail the reply', () => {
  const path = ['Slugs eating young lettuce'];
  const screened = screenSubtopics(path, [
    'Slugs eating young lettuce',
    'young lettuce, slugs eating',
    'Copper tape around a raised lettuce bed',
    'Слизни едят молодой салат на грядке у дачи',
  ]);
  assert.deepEqual(screened, {
    kept: ['Copper tape around a raised lettuce bed'],
    restatements: 2,
    language: 1,
  });
  assert.equal(
    checkSubtopics(path, 4)({ subtopics: ['Slugs eating young lettuce', 'x y z'] })?.check,
    'echo',
  );
  assert.equal(
    checkSubtopics(
      path,
      2,
    )({ subtopics: ['Copper tape around a raised lettuce bed', 'Beer traps by the door'] }),
    undefined,
  );
});

test('expansion: the dedup drops exact and near-duplicate leaves and keeps distinct ones', () => {
  const dedup = new TopicDedup();
  assert.equal(dedup.add('Booking a cheap flight to Rome for a family of four'), undefined);
  assert.equal(dedup.add('booking a cheap flight to rome, for a family of four!'), 'exact');
  assert.equal(dedup.add('Booking a cheap flight to Rome for a family of five'), 'near');
  assert.equal(dedup.add('Renewing a passport in a hurry before a trip'), undefined);
});
