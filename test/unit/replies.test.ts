/** The reply checks catch what real models get wrong, and pass what the test server and good replies say. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import {
  REPLY_CHECKS,
  checkResponses,
  checkSkeleton,
  extractJson,
  responsesJsonSchema,
  responsesReplySchema,
  similarity,
  skeletonJsonSchema,
  skeletonReplySchema,
  type ReplyCheck,
} from '../../src/method/replies';
import { startLlmServer } from '../llm-server/server';

const QUERIES = [
  'My front door swells and sticks every time it rains, what could be causing that?',
  'You mentioned sealing the wood, which product would you use on an old oak door?',
];
const RESPONSES = [
  'Wood absorbs moisture from humid air, so an unsealed or worn edge lets the door swell until it rubs the frame. Check the top and bottom edges: bare wood there is the usual culprit, along with hinges that sag and shift the door toward the latch side.',
  'For old oak, a penetrating oil finish followed by an exterior varnish works well. Sand the bare edges lightly, wipe off the dust, then brush on two thin coats and let each dry fully. Do the top and bottom edges too, since that is where most water gets in.',
];
const skeleton = (queries: string[]) => ({ category: 'Home Repair', queries });

function expect(check: ReplyCheck, problem: ReturnType<typeof checkResponses>) {
  assert.ok(problem, `expected a ${check} problem`);
  assert.equal(problem.check, check, problem.message);
}

test('reply checks: a well-formed English dialogue passes', () => {
  assert.equal(checkSkeleton(skeleton(QUERIES)), undefined);
  assert.equal(checkResponses(QUERIES, RESPONSES), undefined);
});

test('reply checks: a reply that repeats its query, exactly or nearly, is an echo', () => {
  expect(REPLY_CHECKS.echo, checkResponses(QUERIES, [QUERIES[0]!, RESPONSES[1]!]));
  const near = QUERIES[1]!.replace('old oak door', 'old oak front door');
  expect(REPLY_CHECKS.echo, checkResponses(QUERIES, [RESPONSES[0]!, near]));
  // Repeating the other query is an echo too.
  expect(REPLY_CHECKS.echo, checkResponses(QUERIES, [RESPONSES[0]!, QUERIES[0]!]));
});

test('reply checks: a reply that opens by restating its query, or a query that restates an earlier one, is caught', () => {
  // Both seen with the embedded 1.5B model.
  const queries = [
    'I noticed a cloudy film on my glasses after every wash.',
    'I noticed a cloudy film on my glasses after every wash. I narrowed it down to the dishwasher.',
  ];
  expect(REPLY_CHECKS.repeatedQuery, checkSkeleton(skeleton(queries)));
  const parrot = `${queries[0]!.replace(/\.$/, '')}, which is often a sign of hard water and a detergent that does not suit it.`;
  expect(REPLY_CHECKS.echo, checkResponses([queries[0]!, QUERIES[1]!], [parrot, RESPONSES[1]!]));
});

test("reply checks: a query in the information flow's own words is an echo; one on the step's subject is not", () => {
  const steps = ['describe the symptom or problem as first noticed', 'narrow down what is causing it'];
  // Sent by the embedded 1.5B model as the user's queries: 10 of 800 in issue 22's runs.
  const parroted = ['Describe the symptom or problem as first noticed.', QUERIES[1]!];
  expect(REPLY_CHECKS.echo, checkSkeleton(skeleton(parroted), steps));
  expect(REPLY_CHECKS.echo, checkSkeleton(skeleton([QUERIES[0]!, 'Narrow down what is causing it']), steps));
  assert.equal(checkSkeleton(skeleton(QUERIES), steps), undefined);
  const onTheStep = [
    'The lawn went brown in patches after the dry summer; what could be causing it?',
    'Could it be grubs rather than the drought, and how would I tell?',
  ];
  assert.equal(checkSkeleton(skeleton(onTheStep), steps), undefined);
});

test('reply checks: a reply that repeats another reply of the dialogue is a duplicate', () => {
  const copy = `${RESPONSES[0]!} `.replace('usual culprit', 'usual cause');
  expect(REPLY_CHECKS.duplicateReply, checkResponses(QUERIES, [RESPONSES[0]!, copy]));
  assert.ok(similarity(RESPONSES[0]!, copy) >= 0.8);
  assert.ok(similarity(RESPONSES[0]!, RESPONSES[1]!) < 0.2);
});

test('reply checks: a repeated query in the skeleton is rejected', () => {
  const problem = checkSkeleton(skeleton([QUERIES[0]!, QUERIES[0]!.toUpperCase()]));
  expect(REPLY_CHECKS.repeatedQuery, problem);
});

test('reply checks: replies far shorter than the method asks for are rejected', () => {
  expect(REPLY_CHECKS.tooShort, checkResponses(QUERIES, [RESPONSES[0]!, 'Use oil.']));
  expect(
    REPLY_CHECKS.tooShort,
    checkResponses(QUERIES, ['It is moisture in the wood, mostly.', 'An oil finish and then varnish on it.']),
  );
});

test('reply checks: a reply in another language than the queries is rejected', () => {
  const french =
    "Le bois absorbe l'humidité de l'air, donc un chant non scellé laisse la porte gonfler jusqu'à frotter contre le cadre. Vérifiez les chants du haut et du bas.";
  expect(REPLY_CHECKS.language, checkResponses(QUERIES, [RESPONSES[0]!, french]));
  const chinese =
    '木材会从潮湿的空气中吸收水分，所以未密封的边缘会让门膨胀，直到它摩擦门框。请检查门的上下边缘，那里裸露的木材通常是原因。';
  const problem = checkResponses(QUERIES, [chinese, RESPONSES[1]!]);
  expect(REPLY_CHECKS.language, problem);
  assert.match(problem!.message, /Han script/);
  const russian = 'Почему моя входная дверь разбухает и заедает каждый раз, когда идёт дождь?';
  expect(REPLY_CHECKS.language, checkSkeleton(skeleton([QUERIES[0]!, russian])));
});

test('reply checks: leftover role labels and chat-template tokens are rejected', () => {
  for (const leftover of [
    `Assistant: ${RESPONSES[1]!}`,
    `${RESPONSES[1]!}\nUser: thanks!`,
    `${RESPONSES[1]!}<|im_end|>`,
    `<|im_start|>assistant\n${RESPONSES[1]!}`,
  ])
    expect(REPLY_CHECKS.roleLabel, checkResponses(QUERIES, [RESPONSES[0]!, leftover]));
  expect(REPLY_CHECKS.roleLabel, checkSkeleton(skeleton([`User: ${QUERIES[0]!}`, QUERIES[1]!])));
});

test('reply checks: JSON fragments inside a value are rejected', () => {
  expect(
    REPLY_CHECKS.jsonFragment,
    checkResponses(QUERIES, [RESPONSES[0]!, `${RESPONSES[1]!}", "responses": ["Another one`]),
  );
  expect(
    REPLY_CHECKS.jsonFragment,
    checkResponses(QUERIES, [RESPONSES[0]!, `{"content": "${RESPONSES[1]!}"}`]),
  );
  expect(REPLY_CHECKS.jsonFragment, checkSkeleton(skeleton([QUERIES[0]!, `${QUERIES[1]!}"]`])));
});

test("reply checks: the test LLM server's normal replies all pass", async () => {
  const server = await startLlmServer({ seed: 7 });
  const client = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  try {
    for (let i = 0; i < 60; i++) {
      const n = 1 + (i % 20);
      const sk = await client.chat.completions.create({
        model: 'test-model',
        messages: [{ role: 'user', content: `Number of user queries: ${n}` }],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'dialogue_skeleton', strict: true, schema: skeletonJsonSchema(n) },
        },
      });
      const s = skeletonReplySchema(n).parse(extractJson(sk.choices[0]!.message.content!));
      assert.equal(checkSkeleton(s), undefined, JSON.stringify(s));
      const rs = await client.chat.completions.create({
        model: 'test-model',
        messages: [{ role: 'user', content: `Number of responses: ${n}` }],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'dialogue_responses', strict: true, schema: responsesJsonSchema(n) },
        },
      });
      const r = responsesReplySchema(n).parse(extractJson(rs.choices[0]!.message.content!));
      assert.equal(checkResponses(s.queries, r.responses), undefined, JSON.stringify(r));
    }
  } finally {
    await server.close();
  }
});
