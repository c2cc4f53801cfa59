/**
 * The judge (stage 3, optional): a rubric that scores how consistent the assistant stays across a
 * dialogue. It asks for the user's facts and constraints first and then checks each reply against
 * them and against the assistant's earlier answers: a small model asked only "score 1-10" gives every
 * dialogue a 10, while a list of facts to check each reply against gives it something to compare.
 */
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { z } from 'zod';
import {
  JUDGE_FLAGS,
  type DialoguePlan,
  type JudgeFlag,
  type JudgeTally,
  type JudgeVerdict,
  type Skeleton,
} from './types';
import { seededRandom } from './plan';
import { cleanText } from './replies';
import { renderTemplate, type StageTemplate } from './templates';
import { BUILTIN_TAXONOMY, taxonomyFlow, taxonomyIntent, type InfoFlow, type Taxonomy } from './taxonomy';

export const JUDGE_SCHEMA_NAME = 'dialogue_judgment';

/** What each flag means, as the judge reads it. */
export const JUDGE_FLAG_MEANINGS: Record<JudgeFlag, string> = {
  contradiction: 'the reply states the opposite of a fact the user gave or of an earlier assistant answer',
  forgotten_constraint:
    'the reply ignores a constraint the user stated (a budget, an allergy, a deadline, something ruled out)',
  off_question: "the reply answers something other than this turn's query",
  persona_drift: 'the assistant changes role or voice, or speaks as the user',
  skeleton_not_followed: "the user's queries do not move through the steps of the information flow",
};

const JUDGE_SYSTEM = [
  'You audit conversations between a user and an AI assistant for consistency, to decide which ones are fit to train a chat model.',
  "You are strict: a reply that breaks a fact the user gave or the assistant's own earlier answer scores low even when it is otherwise helpful.",
  'You reply with a single JSON object and nothing else.',
].join(' ');

const JUDGE_USER = `The conversation was planned as a {{intent}}; the user should move through the information flow "{{info_flow}}":
{{info_flow_steps}}

The conversation:
{{transcript}}

Number of assistant turns: {{num_responses}}

Judge it in this order.
1. "facts": every fact, constraint or preference the user states (who they are, budget, allergy, deadline, place, what they ruled out), each with the turn it first appears in, like "turn 2: travels with a wheelchair". An empty list if there are none.
2. "turns": one entry per assistant reply, in order, exactly {{num_responses}}:
   - "check": one short sentence naming the facts above and the earlier answers this reply has to respect, and whether it does.
   - "flags": the failures this reply shows, from:
{{judge_flags}}
   - "score": 1 to 10. 9-10: answers its query and respects every fact and earlier answer. 6-8: small lapses. 3-5: a lapse that would mislead the user. 1-2: contradicts or ignores a stated fact outright.
3. "score": the whole conversation, 1 to 10, at most two above its lowest turn score.
4. "reason": one sentence: the main problem, or why the conversation is consistent.`;

/**
 * The built-in rubric as a template: `--prompts DIR` with `judge.txt` (and optionally
 * `judge.system.txt`) replaces it. The reply shape is appended by the package, as for the other stages.
 */
export const BUILTIN_JUDGE_PROMPT: StageTemplate = { system: JUDGE_SYSTEM, user: JUDGE_USER };

/** The transcript as the judge sees it: numbered turns, each side labelled. */
function transcript(queries: readonly string[], responses: readonly string[]): string {
  return queries
    .map((query, i) => `[User, turn ${i + 1}] ${query}\n[Assistant, turn ${i + 1}] ${responses[i] ?? ''}`)
    .join('\n\n');
}

/** The names the judge needs from the run's taxonomy: they travel in the activity's input. */
export interface JudgeContext {
  intent: string;
  infoFlow: InfoFlow;
  /** The run's own rubric (`--prompts DIR/judge.txt`); the built-in one when absent. */
  template?: StageTemplate;
}

export function judgeContext(
  plan: Pick<DialoguePlan, 'intent' | 'infoFlow'>,
  taxonomy: Taxonomy = BUILTIN_TAXONOMY,
  template?: StageTemplate,
): JudgeContext {
  return {
    intent: taxonomyIntent(taxonomy, plan.intent).name,
    infoFlow: taxonomyFlow(taxonomy, plan.infoFlow),
    // Only a run's own rubric travels in the activity input: the built-in one is the package's.
    ...(template && { template }),
  };
}

export function judgeMessages(
  context: JudgeContext,
  skeleton: Skeleton,
  responses: readonly string[],
): ChatCompletionMessageParam[] {
  const flow = context.infoFlow;
  const template = context.template ?? BUILTIN_JUDGE_PROMPT;
  const values = {
    intent: context.intent,
    info_flow: flow.name,
    info_flow_steps: flow.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n'),
    transcript: transcript(skeleton.queries, responses),
    num_responses: String(responses.length),
    judge_flags: JUDGE_FLAGS.map((flag) => `     - ${flag}: ${JUDGE_FLAG_MEANINGS[flag]}`).join('\n'),
  };
  const user = renderTemplate(template.user, values);
  return [
    { role: 'system', content: renderTemplate(template.system, values) },
    {
      role: 'user',
      content: `${user}\n\nReturn only this JSON object: {"facts": [strings], "turns": [exactly ${responses.length} objects {"check": string, "flags": [strings], "score": integer}], "score": integer, "reason": string}`,
    },
  ];
}

const score = z.coerce.number().int().min(1).max(10);
const shortText = (max: number) => z.string().transform(cleanText).pipe(z.string().max(max));

const judgeSchemas = new Map<number, ReturnType<typeof buildJudgeSchema>>();

function buildJudgeSchema(n: number) {
  return z.object({
    facts: z.array(shortText(500)).max(60),
    turns: z
      .array(
        z.object({
          check: shortText(1_000),
          flags: z.array(z.enum(JUDGE_FLAGS)).max(JUDGE_FLAGS.length),
          score,
        }),
      )
      .length(n, `must hold exactly ${n} turns`),
    score,
    reason: shortText(1_000).pipe(z.string().min(1, 'must not be empty')),
  });
}

export type JudgeReply = z.infer<ReturnType<typeof buildJudgeSchema>>;

/** The zod schema of a judge's reply on `n` assistant turns (built once per `n`). */
export function judgeReplySchema(n: number): z.ZodType<JudgeReply, unknown> {
  let schema = judgeSchemas.get(n);
  if (!schema) {
    schema = buildJudgeSchema(n);
    judgeSchemas.set(n, schema);
  }
  return schema;
}

/** JSON schema for strict structured output: every property required, flags from the named set only. */
export function judgeJsonSchema(n: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      facts: { type: 'array', items: { type: 'string' } },
      turns: {
        type: 'array',
        description: `One entry per assistant reply, in order, exactly ${n}`,
        items: {
          type: 'object',
          properties: {
            check: { type: 'string' },
            flags: { type: 'array', items: { type: 'string', enum: [...JUDGE_FLAGS] } },
            score: { type: 'integer', minimum: 1, maximum: 10 },
          },
          required: ['check', 'flags', 'score'],
          additionalProperties: false,
        },
        minItems: n,
        maxItems: n,
      },
      score: { type: 'integer', minimum: 1, maximum: 10 },
      reason: { type: 'string' },
    },
    required: ['facts', 'turns', 'score', 'reason'],
    additionalProperties: false,
  };
}

/**
 * The record's verdict from a judge's reply. The dialogue's score is held to at most two above its
 * worst turn, as the rubric says: a model that forgets its own rule cannot rate a broken dialogue high.
 */
export function toJudgeVerdict(reply: JudgeReply, model: string): JudgeVerdict {
  const turnScores = reply.turns.map((turn) => turn.score);
  const flags = JUDGE_FLAGS.filter((flag) => reply.turns.some((turn) => turn.flags.includes(flag)));
  return {
    model,
    score: Math.min(reply.score, Math.min(...turnScores) + 2),
    turn_scores: turnScores,
    flags,
    reason: reply.reason,
  };
}

/** Whether the seeded sample of a run's dialogues includes `dialogueId`: the same on every replay. */
export function inJudgeSample(dialogueId: string, sample: number): boolean {
  return sample >= 1 || seededRandom(`judge:${dialogueId}`)() < sample;
}

/** Completion token limit for a judge reply on `numTurns` turns: the facts, a check per turn, the reason. */
export function defaultJudgeMaxTokens(numTurns: number): number {
  return 300 + 120 * numTurns;
}

export function emptyJudgeTally(): JudgeTally {
  return { judged: 0, failed: 0, scores: Array.from({ length: 10 }, () => 0), flags: {} };
}

/** Counts one verdict into `tally`. */
export function tallyVerdict(tally: JudgeTally, verdict: JudgeVerdict): void {
  if (verdict.score === undefined) {
    tally.failed++;
    return;
  }
  tally.judged++;
  tally.scores[verdict.score - 1] = (tally.scores[verdict.score - 1] ?? 0) + 1;
  for (const flag of verdict.flags ?? []) tally.flags[flag] = (tally.flags[flag] ?? 0) + 1;
}

/** The tallies of several intents as one. */
export function mergeJudgeTallies(tallies: readonly (JudgeTally | undefined)[]): JudgeTally {
  const total = emptyJudgeTally();
  for (const tally of tallies) {
    if (!tally) continue;
    total.judged += tally.judged;
    total.failed += tally.failed;
    tally.scores.forEach((count, i) => (total.scores[i] = (total.scores[i] ?? 0) + count));
    for (const [flag, count] of Object.entries(tally.flags) as [JudgeFlag, number][])
      total.flags[flag] = (total.flags[flag] ?? 0) + count;
  }
  return total;
}

/** The mean score of a tally, or undefined when nothing was judged. */
export function meanJudgeScore(tally: JudgeTally): number | undefined {
  if (tally.judged === 0) return undefined;
  return tally.scores.reduce((sum, count, i) => sum + count * (i + 1), 0) / tally.judged;
}
