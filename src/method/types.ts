/**
 * The method's own data: a dialogue's plan, its skeleton and the record it becomes. Depends on zod and
 * the method only, so every layer above (run input, activities, workflows, client) can use it.
 */
import { z } from 'zod';
import type { InfoFlowId, IntentId } from './intents';

/** One planned dialogue: what the plan decides before any LLM call. */
export interface DialoguePlan {
  /** Unique across runs: `<runId>.<intent>.<index>`. */
  id: string;
  index: number;
  intent: IntentId;
  infoFlow: InfoFlowId;
  topic: string;
  /** One value per attribute axis, by axis name; absent in runs without attributes. */
  attributes?: Record<string, string>;
}

export interface Skeleton {
  /** Short core-topic label written by the LLM: the record's `category`. */
  category: string;
  queries: string[];
}

export const turnSchema = z
  .object({ role: z.enum(['user', 'assistant']), value: z.string().min(1) })
  .strict();

/** The judge's named failures (src/method/judge.ts explains each to the judge). */
export const JUDGE_FLAGS = [
  'contradiction',
  'forgotten_constraint',
  'off_question',
  'persona_drift',
  'skeleton_not_followed',
] as const;
export type JudgeFlag = (typeof JUDGE_FLAGS)[number];

const judgeScore = z.number().int().min(1).max(10);

/**
 * What the judge made of a dialogue: a 1–10 consistency score per assistant turn and for the whole,
 * the named failures it found, and one sentence why. `error` instead of scores when the judge's
 * calls failed: the dialogue is kept (it was paid for) and can be judged again later.
 */
export const judgeVerdictSchema = z
  .object({
    model: z.string().min(1).max(200),
    score: judgeScore.optional(),
    turn_scores: z.array(judgeScore).optional(),
    flags: z.array(z.enum(JUDGE_FLAGS)).optional(),
    reason: z.string().max(2_000).optional(),
    error: z.string().max(2_000).optional(),
  })
  .strict()
  .refine((v) => (v.score === undefined) !== (v.error === undefined), {
    message: 'must hold either a score or an error',
  });
export type JudgeVerdict = z.infer<typeof judgeVerdictSchema>;

/** The judge's counts over some dialogues: verdicts by score, flags by name, judge calls that failed. */
export interface JudgeTally {
  judged: number;
  /** Dialogues kept unjudged because the judge's calls failed. */
  failed: number;
  /** `scores[s - 1]`: dialogues scored `s`. */
  scores: number[];
  flags: Partial<Record<JudgeFlag, number>>;
}

/** One line of `dialogs.jsonl`. `category` and `conversation` are exactly the seed's output format. */
export const dialogueRecordSchema = z
  .object({
    id: z.string().min(1),
    category: z.string().min(1),
    conversation: z
      .array(turnSchema)
      .min(2)
      .refine(
        (c) => c.length % 2 === 0 && c.every((t, i) => t.role === (i % 2 === 0 ? 'user' : 'assistant')),
        {
          message: 'must alternate user and assistant, starting with user and ending with assistant',
        },
      ),
    intent: z.string().min(1),
    info_flow: z.string().min(1),
    topic: z.string().min(1),
    /** The leaf topic's path from its seed topic, in runs with topic expansion (issue 22). */
    topic_path: z.array(z.string().min(1)).min(1).optional(),
    /** The user attributes the dialogue was planned with, by axis name (runs with attributes only). */
    attributes: z.record(z.string().max(40), z.string().max(200)).optional(),
    model: z.string().min(1),
    /** The judge's verdict (runs with `judge` only; a sample of them with `judge.sample`). */
    judge: judgeVerdictSchema.optional(),
  })
  .strict();
export type DialogueRecord = z.infer<typeof dialogueRecordSchema>;
