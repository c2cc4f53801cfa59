/**
 * Topic expansion (issue 22): before an intent's dialogues, the LLM turns its seed topics into a tree
 * (topic → subtopics → concrete situations) with enough distinct leaves for the dialogues asked for.
 * This file is the method's side: how many leaves a run needs, the prompt, the reply's schema, the
 * checks of one reply, and the dedup of leaves across replies. Pure, so the run workflow uses it too.
 */
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { estimateJaccard, minhashSignature, normalizeText, shingleHashes } from './minhash';
import { dominantScript, REPLY_CHECKS, similarity, textWords, type ReplyProblem } from './replies';
import { TAXONOMY_LIMITS } from './taxonomy';

export const TOPICS_SCHEMA_NAME = 'topic_expansion';

export const EXPANSION_LIMITS = {
  /** Characters of one subtopic: a short line, as the seed topics are. */
  minChars: 8,
  maxChars: 160,
  /** Levels below a seed topic: subtopics, then concrete situations. */
  maxDepth: 2,
  /** Leaves per intent at most: they travel in the intent's input, as its taxonomy's topics. */
  maxLeaves: TAXONOMY_LIMITS.topicsPerIntent,
  /** Expansion calls of one intent in flight at once. */
  batch: 8,
  /** Dialogues per expansion call the spread aims for: the issue asks for well under one call per 50. */
  dialoguesPerCall: 100,
  /** Subtopics asked of one call at least: the schema's least `subtopicsPerCall`. */
  minPerCall: 4,
  /**
   * Near-duplicate leaves: the export's MinHash over word pairs (topics are a few words long, so the
   * export's trigrams would call "a flight to Rome" and "a flight to Paris" unrelated); 0.7 catches a
   * leaf with one word swapped.
   */
  shingleSize: 2,
  numPerm: 64,
  nearDuplicate: 0.7,
  /** Similarity to its parent at or above which a subtopic only restates it. */
  restatement: 0.8,
} as const;

/** A run's expansion settings: off (`false`) or how many leaves to grow. */
export const expandSettingsSchema = z
  .object({
    /** Dialogues planned per leaf topic (each with its own user attributes). @default 8 */
    dialoguesPerLeaf: z.number().int().min(1).max(100_000).default(8),
    /** Subtopics asked of one call. @default 20 */
    subtopicsPerCall: z.number().int().min(4).max(30).default(20),
    /** Leaves grown beyond what the dialogues need, for those a reply check or the dedup drops. @default 1.25 */
    margin: z.number().min(1).max(4).default(1.25),
  })
  .strict();
export const runExpandSchema = z.union([z.literal(false), expandSettingsSchema]);
export type ExpandSettings = z.output<typeof expandSettingsSchema>;

/** Completion tokens an expansion call may use: about 40 a subtopic, with room for the JSON. */
export function expansionMaxTokens(settings: ExpandSettings): number {
  return 200 + 40 * settings.subtopicsPerCall;
}

/** One leaf of an intent's topic tree: `path` runs from the seed topic to the leaf, which is `topic`. */
export interface TopicLeaf {
  topic: string;
  path: string[];
}

/** Leaves an intent needs for `dialogues`: none beyond its seeds when they already suffice. */
export function leavesNeeded(dialogues: number, settings: ExpandSettings): number {
  return Math.min(
    EXPANSION_LIMITS.maxLeaves,
    Math.ceil((dialogues * settings.margin) / settings.dialoguesPerLeaf),
  );
}

/** Expansion calls the spread may make for an intent's `dialogues` before it asks full-size calls. */
export function expansionCallBudget(dialogues: number): number {
  return Math.max(1, Math.ceil(dialogues / EXPANSION_LIMITS.dialoguesPerCall));
}

/**
 * Subtopics to ask of each parent: enough for the `missing` leaves to come from as many parents as the
 * calls left allow, instead of `subtopicsPerCall` from the first few. The intent plans over leaves
 * uniformly, so a tree with a few seeds grown 20-fold puts most dialogues on those seeds' themes (a
 * 100-dialogue run of the embedded model: 94 of 128 leaves under 6 of 40 seeds).
 */
export function subtopicsToAsk(
  missing: number,
  parentsLeft: number,
  callsLeft: number,
  settings: ExpandSettings,
): number {
  const parents = Math.max(1, Math.min(parentsLeft, callsLeft));
  return Math.min(
    settings.subtopicsPerCall,
    Math.max(EXPANSION_LIMITS.minPerCall, Math.ceil(missing / parents) + 1),
  );
}

/** Parents of one round of calls: enough for the missing leaves at `per` each, `batch` at most. */
export function parentsPerRound(missing: number, per: number): number {
  return Math.min(EXPANSION_LIMITS.batch, Math.ceil(missing / (per - 1)));
}

/** One round of expansion calls: how many parents to ask, and for how many subtopics each. */
export function expansionRound(
  missing: number,
  parentsLeft: number,
  callsLeft: number,
  settings: ExpandSettings,
): { per: number; parents: number } {
  const per = subtopicsToAsk(missing, parentsLeft, callsLeft, settings);
  return { per, parents: Math.min(parentsLeft, parentsPerRound(missing, per)) };
}

/**
 * What expansion aims for in one intent when every reply keeps all it was asked: its leaves and calls,
 * by the rounds the run workflow makes (`expansionRound`, src/workflows/topics.ts). Undefined when the
 * seeds suffice.
 */
export function expansionAim(
  seeds: number,
  dialogues: number,
  settings: ExpandSettings,
): { leaves: number; calls: number } | undefined {
  const target = leavesNeeded(dialogues, settings);
  if (target <= seeds) return undefined;
  const budget = expansionCallBudget(dialogues);
  let leaves = seeds;
  let calls = 0;
  let level = seeds;
  for (let depth = 1; depth <= EXPANSION_LIMITS.maxDepth && leaves < target; depth++) {
    let queue = level;
    let next = 0;
    while (queue > 0 && leaves < target) {
      const { per, parents } = expansionRound(target - leaves, queue, budget - calls, settings);
      queue -= parents;
      calls += parents;
      leaves += parents * (per - 1);
      next += parents * per;
    }
    level = next;
  }
  return { leaves: Math.min(leaves, EXPANSION_LIMITS.maxLeaves), calls };
}

const subtopic = z
  .string()
  .transform((s) => s.replace(/\s+/g, ' ').trim())
  .pipe(z.string().min(EXPANSION_LIMITS.minChars).max(EXPANSION_LIMITS.maxChars));

/** A reply: between half of `count` and `count` subtopics, each a short line. */
export function topicsReplySchema(count: number): z.ZodType<{ subtopics: string[] }> {
  const least = Math.ceil(count / 2);
  return z.object({
    subtopics: z
      .array(subtopic)
      .min(least, `must hold at least ${least} subtopics`)
      .max(count, `must hold at most ${count} subtopics`),
  });
}

export function topicsJsonSchema(count: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      subtopics: {
        type: 'array',
        items: { type: 'string' },
        minItems: Math.ceil(count / 2),
        maxItems: count,
      },
    },
    required: ['subtopics'],
    additionalProperties: false,
  };
}

/** What an expansion activity is asked: one parent (by its path) of one intent. */
export interface ExpansionRequest {
  intent: string;
  path: string[];
  count: number;
}

export function expansionMessages(request: ExpansionRequest): ChatCompletionMessageParam[] {
  const { intent, path, count } = request;
  const parent = path[path.length - 1]!;
  const level = path.length === 1 ? 'narrower subtopics' : 'concrete situations a person could be in';
  return [
    {
      role: 'system',
      content:
        'You plan a varied catalogue of conversations people have with an AI assistant. You reply with a single JSON object and nothing else.',
    },
    {
      role: 'user',
      content: [
        `Conversation type: ${intent}`,
        `Topic path: ${path.join(' → ')}`,
        `Number of subtopics: ${count}`,
        '',
        `Write ${count} ${level} of "${parent}".`,
        '- Each is one short line (5 to 20 words), more specific than the topic and not a rewording of it.',
        '- They differ from one another: other people, places, stakes and angles, not one idea reworded.',
        '- Write them in the language of the topic.',
        '',
        `Return only this JSON object: {"subtopics": [${count} strings]}`,
      ].join('\n'),
    },
  ];
}

/** Subtopics that only restate their parent, or are in another script, are dropped one by one. */
export function screenSubtopics(
  path: readonly string[],
  subtopics: readonly string[],
): { kept: string[]; restatements: number; language: number } {
  const parent = path[path.length - 1]!;
  const parentWords = new Set(textWords(parent));
  const script = dominantScript(path.join(' '));
  const kept: string[] = [];
  let restatements = 0;
  let language = 0;
  for (const text of subtopics) {
    const words = textWords(text);
    if (
      normalizeText(text) === normalizeText(parent) ||
      words.every((w) => parentWords.has(w)) ||
      similarity(text, parent) >= EXPANSION_LIMITS.restatement
    )
      restatements++;
    else if (script && dominantScript(text) && dominantScript(text) !== script) language++;
    else kept.push(text);
  }
  return { kept, restatements, language };
}

/** A reply whose kept subtopics are under half of those asked is a bad reply: a new attempt. */
export function checkSubtopics(path: readonly string[], count: number) {
  return ({ subtopics }: { subtopics: string[] }): ReplyProblem | undefined => {
    const screened = screenSubtopics(path, subtopics);
    if (screened.kept.length >= Math.ceil(count / 2)) return undefined;
    return screened.language > screened.restatements
      ? {
          check: REPLY_CHECKS.language,
          message: `subtopics: ${screened.language} not in the topic's language`,
        }
      : { check: REPLY_CHECKS.echo, message: `subtopics: ${screened.restatements} restate "${path.at(-1)}"` };
  };
}

/**
 * Exact and near-duplicate leaves across a whole intent's tree, with the export's MinHash functions
 * (src/method/minhash.ts). Compared one to one: an intent has at most `maxLeaves` leaves.
 */
export class TopicDedup {
  private readonly exact = new Set<string>();
  private readonly signatures: Uint32Array[] = [];

  /** Adds `text` unless it duplicates one added before; says which way it did. */
  add(text: string): 'exact' | 'near' | undefined {
    const normalized = normalizeText(text);
    if (this.exact.has(normalized)) return 'exact';
    const { shingleSize, numPerm, nearDuplicate } = EXPANSION_LIMITS;
    const signature = minhashSignature(shingleHashes(normalized, shingleSize), numPerm);
    if (this.signatures.some((other) => estimateJaccard(signature, other) >= nearDuplicate)) return 'near';
    this.exact.add(normalized);
    this.signatures.push(signature);
    return undefined;
  }
}
