/**
 * The three export shapes of one dialogue record:
 * - `openai`: `{messages: [{role, content}]}`, what OpenAI fine-tuning and TRL's SFTTrainer take (no
 *   other keys: OpenAI's validator rejects unknown ones);
 * - `sharegpt`: `{conversations: [{from: "human"|"gpt", value}]}` plus the metadata columns, and
 *   `system` when one is given (the column LLaMA-Factory's ShareGPT loader reads);
 * - `hf`: one Parquet row, `messages` as in `openai` plus the metadata columns.
 * `sharegpt` and `hf` also carry what the dialogue was planned from beyond its topic (issue 22): the
 * leaf's `topic_path` and the user `attributes`, so a dataset's variety can be audited from it alone.
 */
import type { DialogueRecord } from '../run/schemas';

export const EXPORT_FORMATS = ['openai', 'sharegpt', 'hf'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface OpenAiRow {
  messages: ChatMessage[];
}

export interface ShareGptRow {
  id: string;
  conversations: { from: 'human' | 'gpt'; value: string }[];
  system?: string;
  category: string;
  intent: string;
  info_flow: string;
  topic: string;
  /** The leaf topic's path from its seed, in runs with topic expansion. */
  topic_path?: string[];
  /** The user attributes the dialogue was planned with, by axis, in runs with attributes. */
  attributes?: Record<string, string>;
  model: string;
}

export interface HfRow {
  id: string;
  messages: ChatMessage[];
  category: string;
  intent: string;
  info_flow: string;
  topic: string;
  /** Null in runs without topic expansion: every shard has the same columns. */
  topic_path: string[] | null;
  /**
   * The attributes as a JSON object in a string (null in runs without): their names differ from run
   * to run, and a string column loads the same in every Parquet reader and in `datasets`.
   */
  attributes: string | null;
  model: string;
}

/** The metadata columns, in the order they are written. */
export const METADATA_COLUMNS = ['id', 'category', 'intent', 'info_flow', 'topic', 'model'] as const;

function messages(record: DialogueRecord, system: string | undefined): ChatMessage[] {
  const turns: ChatMessage[] = record.conversation.map((t) => ({ role: t.role, content: t.value }));
  return system === undefined ? turns : [{ role: 'system', content: system }, ...turns];
}

export function toOpenAi(record: DialogueRecord, system?: string): OpenAiRow {
  return { messages: messages(record, system) };
}

export function toShareGpt(record: DialogueRecord, system?: string): ShareGptRow {
  return {
    id: record.id,
    conversations: record.conversation.map((t) => ({
      from: t.role === 'user' ? 'human' : 'gpt',
      value: t.value,
    })),
    ...(system === undefined ? {} : { system }),
    category: record.category,
    intent: record.intent,
    info_flow: record.info_flow,
    topic: record.topic,
    ...(record.topic_path ? { topic_path: record.topic_path } : {}),
    ...(record.attributes ? { attributes: record.attributes } : {}),
    model: record.model,
  };
}

export function toHfRow(record: DialogueRecord, system?: string): HfRow {
  return {
    id: record.id,
    messages: messages(record, system),
    category: record.category,
    intent: record.intent,
    info_flow: record.info_flow,
    topic: record.topic,
    topic_path: record.topic_path ?? null,
    attributes: record.attributes ? JSON.stringify(record.attributes) : null,
    model: record.model,
  };
}
