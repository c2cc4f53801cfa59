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
    /** The user attributes the dialogue was planned with, by axis name (runs with attributes only). */
    attributes: z.record(z.string().max(40), z.string().max(200)).optional(),
    model: z.string().min(1),
  })
  .strict();
export type DialogueRecord = z.infer<typeof dialogueRecordSchema>;
