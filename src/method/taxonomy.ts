/**
 * A taxonomy: the intents a run draws dialogues for, each with the information flows (spelled out as
 * steps) a dialogue of that intent may follow and the topics it is seeded with. The built-in one
 * (ConsistentChat's nine intents) is the shipped file `builtin-taxonomy.json`; `--taxonomy FILE` gives
 * another of the same shape. The schema is bounded because a taxonomy travels in workflow inputs.
 */
import { z } from 'zod';
import builtin from './builtin-taxonomy.json';

/** Bounds on a taxonomy: it travels in the run's input and, one intent each, in its children's inputs. */
export const TAXONOMY_LIMITS = {
  intents: 50,
  infoFlows: 100,
  flowsPerIntent: 10,
  stepsPerFlow: 12,
  topicsPerIntent: 2_000,
  nameChars: 100,
  textChars: 300,
  /** Serialized size of the whole taxonomy (JSON characters): well under Temporal's 2 MB payloads. */
  jsonChars: 512 * 1024,
} as const;

/** Intent and flow ids become parts of workflow ids and record ids: a safe alphabet only. */
export const methodIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z][a-z0-9_]*$/, 'lowercase letters, digits and "_" only, starting with a letter');

const line = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => s.trim().length > 0, 'must not be empty')
    .refine((s) => !/[\r\n]/.test(s), 'must be a single line');

export const infoFlowSchema = z
  .object({
    name: line(TAXONOMY_LIMITS.nameChars),
    steps: z
      .array(line(TAXONOMY_LIMITS.textChars))
      .min(1, 'must list at least one step')
      .max(TAXONOMY_LIMITS.stepsPerFlow),
  })
  .strict();

export const taxonomyIntentSchema = z
  .object({
    id: methodIdSchema,
    name: line(TAXONOMY_LIMITS.nameChars),
    infoFlows: z
      .array(methodIdSchema)
      .min(1, 'must list at least one info flow')
      .max(TAXONOMY_LIMITS.flowsPerIntent),
    topics: z
      .array(line(TAXONOMY_LIMITS.textChars))
      .min(1, 'must list at least one topic')
      .max(TAXONOMY_LIMITS.topicsPerIntent),
    /**
     * Each topic's path in a topic tree, from its seed topic to itself (topic expansion fills it in an
     * intent's input; records carry it as `topic_path`). Absent: every topic is its own path.
     */
    topicPaths: z
      .array(z.array(line(TAXONOMY_LIMITS.textChars)).min(1).max(4))
      .max(TAXONOMY_LIMITS.topicsPerIntent)
      .optional(),
  })
  .strict()
  .refine((i) => !i.topicPaths || i.topicPaths.length === i.topics.length, {
    path: ['topicPaths'],
    message: 'must hold one path per topic',
  });

export const taxonomySchema = z
  .object({
    infoFlows: z
      .record(methodIdSchema, infoFlowSchema)
      .refine((r) => Object.keys(r).length >= 1, 'must define at least one info flow')
      .refine((r) => Object.keys(r).length <= TAXONOMY_LIMITS.infoFlows, {
        message: `must define at most ${TAXONOMY_LIMITS.infoFlows} info flows`,
      }),
    intents: z
      .array(taxonomyIntentSchema)
      .min(1, 'must list at least one intent')
      .max(TAXONOMY_LIMITS.intents),
  })
  .strict()
  .superRefine((t, ctx) => {
    const ids = new Set<string>();
    t.intents.forEach((intent, i) => {
      if (ids.has(intent.id))
        ctx.addIssue({
          code: 'custom',
          path: ['intents', i, 'id'],
          message: `repeats intent "${intent.id}"`,
        });
      ids.add(intent.id);
      intent.infoFlows.forEach((flow, j) => {
        if (!Object.hasOwn(t.infoFlows, flow))
          ctx.addIssue({
            code: 'custom',
            path: ['intents', i, 'infoFlows', j],
            message: `unknown info flow "${flow}"; defined: ${Object.keys(t.infoFlows).join(', ')}`,
          });
      });
      if (new Set(intent.infoFlows).size !== intent.infoFlows.length)
        ctx.addIssue({
          code: 'custom',
          path: ['intents', i, 'infoFlows'],
          message: 'must not repeat a flow',
        });
      const topics = new Set<string>();
      intent.topics.forEach((topic, j) => {
        const key = topic.trim().toLowerCase();
        if (topics.has(key))
          ctx.addIssue({
            code: 'custom',
            path: ['intents', i, 'topics', j],
            message: `repeats topic "${topic}"`,
          });
        topics.add(key);
      });
    });
    if (JSON.stringify(t).length > TAXONOMY_LIMITS.jsonChars)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `is larger than ${TAXONOMY_LIMITS.jsonChars} characters as JSON`,
      });
  });

export type Taxonomy = z.infer<typeof taxonomySchema>;
export type InfoFlow = z.infer<typeof infoFlowSchema>;
export type TaxonomyIntent = z.infer<typeof taxonomyIntentSchema>;

/** ConsistentChat's nine intents with their flows and topics: the package's shipped taxonomy file. */
export const BUILTIN_TAXONOMY: Taxonomy = builtin;

/** An intent of `taxonomy` by id; throws for an id it does not define (inputs are validated before). */
export function taxonomyIntent(taxonomy: Taxonomy, id: string): TaxonomyIntent {
  const intent = taxonomy.intents.find((i) => i.id === id);
  if (!intent) throw new Error(`intent "${id}" is not in the taxonomy`);
  return intent;
}

export function taxonomyFlow(taxonomy: Taxonomy, id: string): InfoFlow {
  if (!Object.hasOwn(taxonomy.infoFlows, id)) throw new Error(`info flow "${id}" is not in the taxonomy`);
  return taxonomy.infoFlows[id]!;
}

/** The part of a taxonomy one intent needs: what an intent workflow's input carries. */
/** The path of `topic` in `intent`'s topic tree: the topic alone when the intent has no tree. */
export function topicPath(intent: TaxonomyIntent, topic: string): string[] {
  const index = intent.topicPaths ? intent.topics.indexOf(topic) : -1;
  return index >= 0 ? intent.topicPaths![index]! : [topic];
}

export function sliceTaxonomy(taxonomy: Taxonomy, id: string): Taxonomy {
  const intent = taxonomyIntent(taxonomy, id);
  return {
    infoFlows: Object.fromEntries(intent.infoFlows.map((f) => [f, taxonomyFlow(taxonomy, f)])),
    intents: [intent],
  };
}

/**
 * Resolves what a user typed (`problem_solving`, `problem-solving`, `Problem Solving`,
 * `Problem Solving Interaction`) to an intent id of `taxonomy`, or `undefined`.
 */
export function resolveIntent(input: string, taxonomy: Taxonomy = BUILTIN_TAXONOMY): string | undefined {
  const norm = (s: string) =>
    s
      .trim()
      .toLowerCase()
      .replace(/\s+interaction$/, '')
      .replace(/[\s-]+/g, '_');
  const key = norm(input);
  return taxonomy.intents.find((i) => i.id === key || norm(i.name) === key)?.id;
}
