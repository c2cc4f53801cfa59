/**
 * Prompt templates: the stages' messages as text with named placeholders (`{{topic}}`). The
 * built-in ones live in prompts.ts; `--prompts DIR` gives others. A template may use only the
 * placeholders its stage knows and must use the ones the method cannot do without. Bounded, because
 * templates travel in workflow and activity inputs.
 */
import { z } from 'zod';

/** Longest template accepted (characters). The built-in ones are under 2,000. */
export const MAX_TEMPLATE_CHARS = 20_000;

/** What each placeholder is replaced with; `queries` is the skeleton as a JSON array of strings. */
export const PLACEHOLDER_DOCS = {
  intent: 'the intent name, e.g. "Transaction Interaction"',
  intent_id: 'the intent id, e.g. "transaction"',
  info_flow: 'the info flow name, e.g. "User Needs → Solutions"',
  info_flow_steps: 'the flow steps as a numbered list, one per line',
  topic: 'the topic seed drawn for the dialogue',
  num_turns: 'the number of user queries to write',
  category: "the skeleton's category label (stage 2)",
  queries: "the user's queries as a JSON array (stage 2)",
  num_responses: 'the number of responses to write (stage 2)',
  user_profile:
    'the user attributes planned for the dialogue, one "- axis: value" line each (empty in runs without attributes)',
  transcript: 'the dialogue, numbered turns labelled "[User, turn N]" and "[Assistant, turn N]" (judge)',
  judge_flags: 'the named failures the judge may flag, one "- flag: meaning" line each (judge)',
} as const;
export type Placeholder = keyof typeof PLACEHOLDER_DOCS;

const COMMON: readonly Placeholder[] = [
  'intent',
  'intent_id',
  'info_flow',
  'info_flow_steps',
  'topic',
  'user_profile',
];

/** Placeholders each stage knows, and those its user template must contain. */
export const STAGE_PLACEHOLDERS = {
  skeleton: { allowed: [...COMMON, 'num_turns'], required: ['topic', 'info_flow_steps', 'num_turns'] },
  responses: { allowed: [...COMMON, 'category', 'queries', 'num_responses'], required: ['queries'] },
  // The judge sees a finished dialogue, maybe one read back from a record: no topic, no plan attributes.
  judge: {
    allowed: ['intent', 'info_flow', 'info_flow_steps', 'transcript', 'num_responses', 'judge_flags'],
    required: ['transcript'],
  },
} as const satisfies Record<string, { allowed: readonly Placeholder[]; required: readonly Placeholder[] }>;
export type Stage = keyof typeof STAGE_PLACEHOLDERS;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** The placeholder names a template uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

const templateText = (stage: Stage, role: 'system' | 'user') =>
  z
    .string()
    .max(MAX_TEMPLATE_CHARS)
    .refine((s) => s.trim().length > 0, 'must not be empty')
    .superRefine((text, ctx) => {
      const { allowed, required } = STAGE_PLACEHOLDERS[stage];
      for (const name of placeholdersOf(text)) {
        if (!(allowed as readonly string[]).includes(name))
          ctx.addIssue({
            code: 'custom',
            message: `unknown placeholder {{${name}}}; the ${stage} stage knows ${allowed.map((p) => `{{${p}}}`).join(', ')}`,
          });
      }
      if (role === 'user') {
        const used = placeholdersOf(text);
        for (const name of required) {
          if (!used.includes(name))
            ctx.addIssue({ code: 'custom', message: `must contain the placeholder {{${name}}}` });
        }
      }
    });

const stageSchema = (stage: Stage) =>
  z.object({ system: templateText(stage, 'system'), user: templateText(stage, 'user') }).strict();

/**
 * `judge` is optional: without it the built-in rubric (judge.ts) applies, and runs that give none keep
 * the method hash they had before the judge's template could be given.
 */
export const promptTemplatesSchema = z
  .object({
    skeleton: stageSchema('skeleton'),
    responses: stageSchema('responses'),
    judge: stageSchema('judge').optional(),
  })
  .strict();
export type PromptTemplates = z.infer<typeof promptTemplatesSchema>;
export type StageTemplate = PromptTemplates['skeleton'];
/** The stages whose template every run has. */
export type GenerationStage = Exclude<Stage, 'judge'>;

/**
 * Replaces each `{{name}}` with its value in one pass, so a value that itself contains `{{…}}` (a
 * topic, a query) is inserted as it is, never expanded.
 */
export function renderTemplate(template: string, values: Partial<Record<Placeholder, string>>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) =>
    Object.hasOwn(values, name) ? values[name as Placeholder]! : whole,
  );
}
