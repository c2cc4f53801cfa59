import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkSubtopics,
  expandSettingsSchema,
  expansionAim,
  leavesNeeded,
  subtopicsToAsk,
  screenSubtopics,
  TopicDedup,
  topicsReplySchema,
} from '../../src/method/expansion';

const defaults = expandSettingsSchema.parse({});

test('expansion: leaves needed grow with the run and stay within the taxonomy bound', () => {
  assert.equal(leavesNeeded(200, defaults), 32, '200 dialogues: fewer than 40 seeds need no expansion');
  assert.equal(leavesNeeded(10_000, defaults), 1_563);
  assert.equal(leavesNeeded(1_000_000, defaults), 2_000);
  for (const dialogues of [257, 300, 1_000, 10_000, 100_000, 1_000_000]) {
    const aim = expansionAim(40, dialogues, defaults)!;
    assert.ok(
      aim.leaves >= Math.min(2_000, leavesNeeded(dialogues, defaults)),
      `${dialogues}: ${aim.leaves} leaves`,
    );
    assert.ok(
      aim.calls * 50 < dialogues,
      `${dialogues} dialogues: ${aim.calls} calls, well under one per 50`,
    );
  }
  assert.equal(expansionAim(40, 256, defaults), undefined, 'the seeds suffice');
});

test('expansion: a smaller run spreads its missing leaves over several seeds instead of growing one 20-fold', () => {
  // 300 dialogues need 47 leaves of 40 seeds: three seeds asked for four subtopics each, not one for 20.
  assert.equal(subtopicsToAsk(47 - 40, 40, 3, defaults), 4);
  assert.deepEqual(expansionAim(40, 300, defaults), { leaves: 49, calls: 3 });
  // 1,000 need 157: eight seeds asked for 13, then two for 12, where full calls grew seven 20-fold.
  assert.equal(subtopicsToAsk(157 - 40, 40, 10, defaults), 13);
  assert.deepEqual(expansionAim(40, 1_000, defaults), { leaves: 158, calls: 10 });
  // Past the budget (failed calls used it), or with more missing than the seeds can give, calls are full.
  assert.equal(subtopicsToAsk(100, 40, 0, defaults), defaults.subtopicsPerCall);
  assert.equal(subtopicsToAsk(2_000, 40, 100, defaults), defaults.subtopicsPerCall);
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
