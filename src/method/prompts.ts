/**
 * The two prompts of the method. Stage 1 writes the skeleton (only the user's queries, following the
 * info flow); stage 2 writes one assistant response per query while seeing the whole skeleton.
 * Both are templates (templates.ts): the built-in ones below, or a run's own from `--prompts DIR`.
 * The reply shape is appended by the package rather than left to the template, because the reply
 * parser depends on it; it is also sent as a JSON schema where the endpoint takes one.
 */
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { DialoguePlan, Skeleton } from './types';
import { BUILTIN_TAXONOMY, taxonomyFlow, taxonomyIntent, type InfoFlow, type Taxonomy } from './taxonomy';
import { describeAttributes } from './attributes';
import {
  placeholdersOf,
  renderTemplate,
  type GenerationStage,
  type PromptTemplates,
  type StageTemplate,
} from './templates';

const SKELETON_SYSTEM = [
  'You write the user side of conversations between a person and an AI assistant, for training chat models.',
  'You write only what the user types, never the assistant.',
  'You reply with a single JSON object and nothing else.',
].join(' ');

const SKELETON_USER = `Interaction intent: {{intent}}
Information flow: {{info_flow}}
Steps of the flow, in order:
{{info_flow_steps}}
Topic seed: {{topic}}
Number of user queries: {{num_turns}}

Write the messages the user sends in this conversation, in order, one per turn.
- Across the queries the user moves through the steps of the information flow, first to last. With fewer queries than steps, combine steps; with more, stay on a step for several turns.
- Make the topic seed the user's own situation with concrete details (who, where, what went wrong, what they want). Do not quote the seed or name the intent or the flow.
- Sound like a real person typing to an assistant: mostly one or two short sentences (about 10 to 30 words), sometimes vague or casual, with small typos allowed only rarely.
- From the second query on, react to the answer the user has just read: refer back to it ("that second option", "you said earlier"), add details as they come to mind, change course a little when it is natural.
- No greetings or thanks in every turn, no numbering, no role labels, no quotation marks around whole queries.
- "category" is a short label of the core topic, two to four words in Title Case (for example "Travel Planning").`;

const RESPONSES_SYSTEM = [
  'You are a knowledgeable, warm and direct AI assistant writing your side of a multi-turn conversation.',
  'You see every message the user will send, so each reply fits what came before and what comes next.',
  'You reply with a single JSON object and nothing else.',
].join(' ');

const RESPONSES_USER = `The conversation is a {{intent}} about "{{category}}"; the user moves through the information flow {{info_flow}}.
These are all the user's queries, in order:
{{queries}}
Number of responses: {{num_responses}}

Write the assistant's reply to each query: response i answers query i.
- Each reply builds on the earlier turns, stays consistent with what you already said, and leaves the next query natural. Never answer a later query early.
- Be concrete and useful: facts, steps, options or comfort as the query needs. Usually 40 to 120 words; longer only when the question truly needs it.
- Do not ask questions that the user's next query already answers; ask only when a real choice depends on it.
- No role labels, no "As an AI", no greeting in every reply.`;

/** The package's own prompt templates, used when a run gives none. */
export const BUILTIN_PROMPTS: PromptTemplates = {
  skeleton: { system: SKELETON_SYSTEM, user: SKELETON_USER },
  responses: { system: RESPONSES_SYSTEM, user: RESPONSES_USER },
};

/**
 * What an LLM activity needs to build one stage's prompt: the names from the run's taxonomy and the
 * stage's template. It travels in the activity's input; when absent the built-in ones are used.
 */
export interface PromptContext {
  intent: string;
  infoFlow: InfoFlow;
  template: StageTemplate;
}

/** The prompt context of `plan` for `stage`, from a run's taxonomy and templates (built-in when absent). */
export function promptContext(
  stage: GenerationStage,
  plan: DialoguePlan,
  taxonomy: Taxonomy = BUILTIN_TAXONOMY,
  prompts: PromptTemplates = BUILTIN_PROMPTS,
): PromptContext {
  return {
    intent: taxonomyIntent(taxonomy, plan.intent).name,
    infoFlow: taxonomyFlow(taxonomy, plan.infoFlow),
    template: prompts[stage],
  };
}

const messages = (template: StageTemplate, values: Record<string, string>, reply: string, extra = '') =>
  [
    { role: 'system', content: renderTemplate(template.system, values) },
    { role: 'user', content: `${renderTemplate(template.user, values)}${extra}\n\n${reply}` },
  ] satisfies ChatCompletionMessageParam[];

const planValues = (plan: DialoguePlan, context: PromptContext) => ({
  intent: context.intent,
  intent_id: plan.intent,
  info_flow: context.infoFlow.name,
  info_flow_steps: context.infoFlow.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n'),
  topic: plan.topic,
  user_profile: plan.attributes ? describeAttributes(plan.attributes) : '',
});

/**
 * The user attributes, for a template that does not place `{{user_profile}}` itself: the built-in one
 * (its text stays that of runs planned without attributes) and older custom templates.
 */
const profileSection = (plan: DialoguePlan, template: StageTemplate) =>
  plan.attributes && !placeholdersOf(template.user).includes('user_profile')
    ? `\n\nThe user, in the background (let it shape what they ask and how they write; never state it as a list):\n${describeAttributes(plan.attributes)}`
    : '';

export function skeletonMessages(
  plan: DialoguePlan,
  numTurns: number,
  context: PromptContext = promptContext('skeleton', plan),
): ChatCompletionMessageParam[] {
  return messages(
    context.template,
    { ...planValues(plan, context), num_turns: String(numTurns) },
    `Return only this JSON object: {"category": string, "queries": [exactly ${numTurns} strings]}`,
    profileSection(plan, context.template),
  );
}

export function responsesMessages(
  plan: DialoguePlan,
  skeleton: Skeleton,
  context: PromptContext = promptContext('responses', plan),
): ChatCompletionMessageParam[] {
  const n = skeleton.queries.length;
  return messages(
    context.template,
    {
      ...planValues(plan, context),
      category: skeleton.category,
      queries: JSON.stringify(skeleton.queries, null, 2),
      num_responses: String(n),
    },
    `Return only this JSON object: {"responses": [exactly ${n} strings]}`,
  );
}

/**
 * Completion token limits, scaled with the number of turns. The authors used 800 and 1,200 tokens for
 * 6 to 8 turns; these leave headroom for JSON and longer answers.
 */
export function defaultMaxTokens(numTurns: number): { skeleton: number; responses: number } {
  return { skeleton: 200 + 100 * numTurns, responses: 400 + 320 * numTurns };
}
