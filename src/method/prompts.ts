/**
 * The two prompts of the method. Stage 1 writes the skeleton (only the user's queries, following the
 * info flow); stage 2 writes one assistant response per query while seeing the whole skeleton.
 * The reply shape is stated in the prompt as well as sent as a JSON schema, so endpoints without
 * structured output still know what to return.
 */
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { DialoguePlan, Skeleton } from '../shared/schemas';
import { INFO_FLOWS, INTENTS } from './intents';

const SKELETON_SYSTEM = [
  'You write the user side of conversations between a person and an AI assistant, for training chat models.',
  'You write only what the user types, never the assistant.',
  'You reply with a single JSON object and nothing else.',
].join(' ');

const RESPONSES_SYSTEM = [
  'You are a knowledgeable, warm and direct AI assistant writing your side of a multi-turn conversation.',
  'You see every message the user will send, so each reply fits what came before and what comes next.',
  'You reply with a single JSON object and nothing else.',
].join(' ');

export function skeletonMessages(plan: DialoguePlan, numTurns: number): ChatCompletionMessageParam[] {
  const intent = INTENTS[plan.intent];
  const flow = INFO_FLOWS[plan.infoFlow];
  const steps = flow.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n');
  const user = `Interaction intent: ${intent.name}
Information flow: ${flow.name}
Steps of the flow, in order:
${steps}
Topic seed: ${plan.topic}
Number of user queries: ${numTurns}

Write the ${numTurns === 1 ? 'single message' : `${numTurns} messages`} the user sends in this conversation, in order, one per turn.
- Across the queries the user moves through the steps of the information flow, first to last. With fewer queries than steps, combine steps; with more, stay on a step for several turns.
- Make the topic seed the user's own situation with concrete details (who, where, what went wrong, what they want). Do not quote the seed or name the intent or the flow.
- Sound like a real person typing to an assistant: mostly one or two short sentences (about 10 to 30 words), sometimes vague or casual, with small typos allowed only rarely.
- From the second query on, react to the answer the user has just read: refer back to it ("that second option", "you said earlier"), add details as they come to mind, change course a little when it is natural.
- No greetings or thanks in every turn, no numbering, no role labels, no quotation marks around whole queries.
- "category" is a short label of the core topic, two to four words in Title Case (for example "Travel Planning").

Return only this JSON object: {"category": string, "queries": [exactly ${numTurns} strings]}`;
  return [
    { role: 'system', content: SKELETON_SYSTEM },
    { role: 'user', content: user },
  ];
}

export function responsesMessages(plan: DialoguePlan, skeleton: Skeleton): ChatCompletionMessageParam[] {
  const n = skeleton.queries.length;
  const intent = INTENTS[plan.intent];
  const flow = INFO_FLOWS[plan.infoFlow];
  const user = `The conversation is a ${intent.name.toLowerCase()} about "${skeleton.category}"; the user moves from ${flow.name.replace(' → ', ' to ')}.
These are all the user's queries, in order:
${JSON.stringify(skeleton.queries, null, 2)}
Number of responses: ${n}

Write the assistant's reply to each query: response i answers query i.
- Each reply builds on the earlier turns, stays consistent with what you already said, and leaves the next query natural. Never answer a later query early.
- Be concrete and useful: facts, steps, options or comfort as the query needs. Usually 40 to 120 words; longer only when the question truly needs it.
- Do not ask questions that the user's next query already answers; ask only when a real choice depends on it.
- No role labels, no "As an AI", no greeting in every reply.

Return only this JSON object: {"responses": [exactly ${n} strings]}`;
  return [
    { role: 'system', content: RESPONSES_SYSTEM },
    { role: 'user', content: user },
  ];
}

/**
 * Completion token limits, scaled with the number of turns. The authors used 800 and 1,200 tokens for
 * 6 to 8 turns; these leave headroom for JSON and longer answers.
 */
export function defaultMaxTokens(numTurns: number): { skeleton: number; responses: number } {
  return { skeleton: 200 + 100 * numTurns, responses: 400 + 320 * numTurns };
}
