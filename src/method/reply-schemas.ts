/**
 * What the LLM must reply, as zod schemas (validation) and JSON schemas (sent as a strict
 * `response_format`). Every reply is validated: exact counts and non-empty strings; a failure becomes
 * a new attempt.
 */
import { z } from 'zod';
import type { Skeleton } from './types';

export const SKELETON_SCHEMA_NAME = 'dialogue_skeleton';
export const RESPONSES_SCHEMA_NAME = 'dialogue_responses';

/** Longest strings accepted: far above the method's averages (20-word queries, 60-word responses). */
export const MAX_CATEGORY_CHARS = 80;
export const MAX_QUERY_CHARS = 2_000;
export const MAX_RESPONSE_CHARS = 8_000;

// Control characters other than tab and newline never belong in training text.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

export function cleanText(value: string): string {
  return value.replace(/\r\n?/g, '\n').replace(CONTROL_CHARS, '').trim();
}

/** Accepts a plain string, or an object that wraps one, as some models do. */
const looseText = z.union([
  z.string(),
  z.object({ content: z.string() }).transform((o) => o.content),
  z.object({ value: z.string() }).transform((o) => o.value),
  z.object({ text: z.string() }).transform((o) => o.text),
  z.object({ query: z.string() }).transform((o) => o.query),
  z.object({ response: z.string() }).transform((o) => o.response),
]);

const text = (max: number) =>
  looseText.transform(cleanText).pipe(z.string().min(1, 'must not be empty').max(max));

const skeletonSchemas = new Map<number, z.ZodType<Skeleton>>();
const responsesSchemas = new Map<number, z.ZodType<{ responses: string[] }>>();

/** The zod schema of a stage-1 reply with exactly `n` queries (built once per `n`). */
export function skeletonReplySchema(n: number): z.ZodType<Skeleton> {
  let schema = skeletonSchemas.get(n);
  if (!schema) {
    schema = z.object({
      category: text(MAX_CATEGORY_CHARS),
      queries: z.array(text(MAX_QUERY_CHARS)).length(n, `must hold exactly ${n} queries`),
    });
    skeletonSchemas.set(n, schema);
  }
  return schema;
}

/** The zod schema of a stage-2 reply with exactly `n` responses (built once per `n`). */
export function responsesReplySchema(n: number): z.ZodType<{ responses: string[] }> {
  let schema = responsesSchemas.get(n);
  if (!schema) {
    schema = z.object({
      responses: z.array(text(MAX_RESPONSE_CHARS)).length(n, `must hold exactly ${n} responses`),
    });
    responsesSchemas.set(n, schema);
  }
  return schema;
}

/** JSON schema for OpenAI strict structured output: every property required, no extra properties. */
export function skeletonJsonSchema(n: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      category: { type: 'string', description: 'Core topic label, two to four words in Title Case' },
      queries: {
        type: 'array',
        description: `The user's queries in order, exactly ${n}`,
        items: { type: 'string' },
        minItems: n,
        maxItems: n,
      },
    },
    required: ['category', 'queries'],
    additionalProperties: false,
  };
}

export function responsesJsonSchema(n: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      responses: {
        type: 'array',
        description: `The assistant's responses, response i answering query i, exactly ${n}`,
        items: { type: 'string' },
        minItems: n,
        maxItems: n,
      },
    },
    required: ['responses'],
    additionalProperties: false,
  };
}

/** Formats zod issues as `path: message; ...` for failure messages. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
