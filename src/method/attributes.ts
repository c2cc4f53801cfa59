/**
 * User attributes: who is asking, how much they know, how they write, and what constrains them. The
 * planner gives each dialogue one value per axis, so a topic seed read by a retired nurse on a phone
 * and by a student in a hurry becomes two different conversations. Axes and values are data: the
 * built-in set below was written for this project; a run may bring its own (`--attributes FILE`).
 */
import { z } from 'zod';

/** The planner permutes combination numbers in 32-bit arithmetic. */
export const MAX_ATTRIBUTE_SPACE = 2 ** 30;

/** Bounds on a run's own attributes: they travel in every intent's input and every skeleton prompt. */
export const ATTRIBUTE_LIMITS = {
  axes: 8,
  valuesPerAxis: 200,
  valueChars: 200,
  nameChars: 40,
} as const;

export const attributeAxisSchema = z
  .object({
    /** A short lower-case name, shown to the LLM and kept in the record, e.g. `expertise`. */
    name: z
      .string()
      .max(ATTRIBUTE_LIMITS.nameChars)
      .regex(/^[a-z][a-z0-9_]*$/, 'must be lower-case letters, digits and underscores'),
    values: z
      .array(z.string().trim().min(1).max(ATTRIBUTE_LIMITS.valueChars))
      .min(1)
      .max(ATTRIBUTE_LIMITS.valuesPerAxis)
      .refine((v) => new Set(v).size === v.length, { message: 'values must be distinct' }),
  })
  .strict();

export const attributeAxesSchema = z
  .array(attributeAxisSchema)
  .min(1)
  .max(ATTRIBUTE_LIMITS.axes)
  .refine((axes) => new Set(axes.map((a) => a.name)).size === axes.length, {
    message: 'axis names must be distinct',
  })
  .refine((axes) => attributeSpaceSize(axes) <= MAX_ATTRIBUTE_SPACE, {
    message: `at most ${MAX_ATTRIBUTE_SPACE} combinations (the product of the axes' sizes)`,
  });
export type AttributeAxes = z.infer<typeof attributeAxesSchema>;

/** The attributes one dialogue was planned with: one value per axis, by axis name. */
export type PlannedAttributes = Record<string, string>;

/**
 * The built-in axes: 16 × 4 × 6 × 10 = 3,840 combinations, so with 40 topics an intent has 153,600
 * distinct (topic, attributes) plans before any repeats: a million-dialogue run over nine intents fits.
 */
export const BUILTIN_ATTRIBUTES: AttributeAxes = [
  {
    name: 'user',
    values: [
      'a nurse working night shifts',
      'a first-year university student',
      'a retired bus driver',
      'a parent of two young children',
      'a small bakery owner',
      'a software developer',
      'a high-school teacher',
      'a farmer in a rural area',
      'a freelance graphic designer',
      'a recent immigrant learning the local language',
      'a warehouse worker on rotating shifts',
      'a graduate student in biology',
      'a caregiver for an elderly parent',
      'a sales manager who travels often',
      'a teenager saving for their first car',
      'a musician playing gigs on weekends',
    ],
  },
  {
    name: 'expertise',
    values: [
      'new to the subject',
      'knows the basics',
      'fairly experienced',
      'an expert in a neighbouring field',
    ],
  },
  {
    name: 'tone',
    values: [
      'casual and brief',
      'polite and detailed',
      'stressed and in a hurry',
      'curious and chatty',
      'sceptical, wants evidence',
      'unsure how to put things into words',
    ],
  },
  {
    name: 'situation',
    values: [
      'on a tight budget',
      'short on time this week',
      'typing on a phone',
      'has tried one fix already that did not work',
      'deciding together with a partner',
      'needs to explain the outcome to a boss',
      'lives far from a city',
      'has a health condition to keep in mind',
      'is planning several months ahead',
      'wants something they can do alone',
    ],
  },
];

/** How many distinct attribute combinations `axes` hold. */
export function attributeSpaceSize(axes: readonly { values: readonly string[] }[]): number {
  return axes.reduce((n, axis) => n * axis.values.length, 1);
}

/** Combination `index` (0 ≤ index < size) as one value per axis, the last axis varying fastest. */
export function decodeAttributes(axes: AttributeAxes, index: number): PlannedAttributes {
  const out: PlannedAttributes = {};
  let rest = index;
  for (let a = axes.length - 1; a >= 0; a--) {
    const axis = axes[a]!;
    out[axis.name] = axis.values[rest % axis.values.length]!;
    rest = Math.floor(rest / axis.values.length);
  }
  // Keep the axes' own order in the record and the prompt.
  return Object.fromEntries(axes.map((axis) => [axis.name, out[axis.name]!]));
}

/** The attributes as the lines a prompt shows, e.g. `- expertise: knows the basics`. */
export function describeAttributes(attributes: PlannedAttributes): string {
  return Object.entries(attributes)
    .map(([name, value]) => `- ${name}: ${value}`)
    .join('\n');
}

/**
 * A run's attributes as its input carries them: its own axes, `"builtin"` for `BUILTIN_ATTRIBUTES`, or
 * `"none"` to plan from intent, flow and topic alone.
 * The built-in set is frozen once released (a changed set gets a new name), so a run resumed by a newer
 * worker plans the same dialogues.
 */
export const runAttributesSchema = z.union([z.literal('builtin'), z.literal('none'), attributeAxesSchema]);
export type RunAttributes = z.infer<typeof runAttributesSchema>;

/** The axes a run plans with, if any. */
export function resolveAttributes(attributes: RunAttributes | undefined): AttributeAxes | undefined {
  if (attributes === 'none') return undefined;
  return attributes === 'builtin' ? BUILTIN_ATTRIBUTES : attributes;
}
