import type { Skeleton } from './types';

/**
 * Checks for what real models get wrong while still returning valid JSON of the right shape: an echo
 * of the query, a reply copied from another turn, a repeated query, a reply far shorter than the
 * method asks for, another language, leftover chat-template labels or JSON in a value. A failed check
 * is an invalid reply (a new call), named by its kind so a run can count them.
 */
export const REPLY_CHECKS = {
  echo: 'echo',
  duplicateReply: 'duplicate-reply',
  repeatedQuery: 'repeated-query',
  tooShort: 'too-short',
  language: 'language',
  roleLabel: 'role-label',
  jsonFragment: 'json-fragment',
} as const;
export type ReplyCheck = (typeof REPLY_CHECKS)[keyof typeof REPLY_CHECKS];

export interface ReplyProblem {
  check: ReplyCheck;
  message: string;
}

/**
 * Thresholds. Near-duplicates are measured on word trigrams (order matters, so two answers drawn from
 * the same vocabulary are not alike); 0.8 catches a copy with a word or two changed. The method asks for
 * 40-120 word responses: one under 5 words, or a dialogue averaging under 15, is far shorter.
 */
export const REPLY_CHECK_LIMITS = {
  nearDuplicate: 0.8,
  minResponseWords: 5,
  minMeanResponseWords: 15,
  /** Letters a text needs before its script or stopwords say anything about its language. */
  minLettersForLanguage: 20,
  minWordsForStopwords: 12,
  /** Share of English function words below which a long Latin-script reply is not English. */
  minEnglishStopwordShare: 0.08,
} as const;

/** A text's words, lower-cased: runs of letters, digits and apostrophes (the checks' and metrics' tokens). */
export const textWords = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
const words = textWords;

function trigrams(ws: string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 2 < ws.length; i++) out.add(`${ws[i]} ${ws[i + 1]} ${ws[i + 2]}`);
  return out;
}

const SCRIPTS: [string, RegExp][] = [
  ['Latin', /\p{Script=Latin}/gu],
  ['Cyrillic', /\p{Script=Cyrillic}/gu],
  ['Greek', /\p{Script=Greek}/gu],
  ['Arabic', /\p{Script=Arabic}/gu],
  ['Hebrew', /\p{Script=Hebrew}/gu],
  ['Devanagari', /\p{Script=Devanagari}/gu],
  ['Han', /\p{Script=Han}/gu],
  ['Kana', /[\p{Script=Hiragana}\p{Script=Katakana}]/gu],
  ['Hangul', /\p{Script=Hangul}/gu],
  ['Thai', /\p{Script=Thai}/gu],
];

// The commonest English function words: any English paragraph is full of them, French, Spanish,
// German or Indonesian prose of the same length has almost none.
const ENGLISH_STOPWORDS = new Set(
  'the a an and or but of to in on for with is are was be it that this you your i my we can if not do have as at by from so will'.split(
    ' ',
  ),
);

/**
 * What the checks need of one text, computed once: a dialogue's checks compare every turn with the
 * others, and tokenizing each text again for each pair cost more than the rest of an LLM call's work.
 */
interface TextStats {
  words: string[];
  trigrams: Set<string>;
  /** Letters per script, in `SCRIPTS` order. */
  scripts: number[];
  stopwords: number;
}

function analyse(text: string): TextStats {
  const ws = words(text);
  return {
    words: ws,
    trigrams: trigrams(ws),
    scripts: SCRIPTS.map(([, pattern]) => text.match(pattern)?.length ?? 0),
    stopwords: ws.filter((w) => ENGLISH_STOPWORDS.has(w)).length,
  };
}

/** The counts of several texts together, as if they were one. */
function pooled(
  texts: readonly TextStats[],
): Pick<TextStats, 'scripts' | 'stopwords'> & { wordCount: number } {
  return {
    scripts: SCRIPTS.map((_, k) => texts.reduce((sum, t) => sum + t.scripts[k]!, 0)),
    stopwords: texts.reduce((sum, t) => sum + t.stopwords, 0),
    wordCount: texts.reduce((sum, t) => sum + t.words.length, 0),
  };
}

function sameWords(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((w, i) => w === b[i]);
}

function similarityOf(a: TextStats, b: TextStats): number {
  if (sameWords(a.words, b.words)) return 1;
  if (a.trigrams.size === 0 || b.trigrams.size === 0) return 0;
  let shared = 0;
  for (const t of a.trigrams) if (b.trigrams.has(t)) shared++;
  return shared / (a.trigrams.size + b.trigrams.size - shared);
}

/** How alike two texts are: 1 for the same words, else the Jaccard index of their word trigrams. */
export function similarity(a: string, b: string): number {
  return similarityOf(analyse(a), analyse(b));
}

function dominantOf(scripts: readonly number[]): string | undefined {
  let best: string | undefined;
  let bestCount = 0;
  let total = 0;
  scripts.forEach((count, k) => {
    total += count;
    if (count > bestCount) [best, bestCount] = [SCRIPTS[k]![0], count];
  });
  return total >= REPLY_CHECK_LIMITS.minLettersForLanguage ? best : undefined;
}

/** The writing system most of a text's letters belong to, once it has enough letters to tell. */
export function dominantScript(text: string): string | undefined {
  return dominantOf(analyse(text).scripts);
}

function stopwordShareOf(stopwords: number, wordCount: number): number | undefined {
  return wordCount < REPLY_CHECK_LIMITS.minWordsForStopwords ? undefined : stopwords / wordCount;
}

/** Share of English function words among a text's words, or undefined when it is too short to tell. */
export function englishStopwordShare(text: string): number | undefined {
  const ws = words(text);
  return stopwordShareOf(ws.filter((w) => ENGLISH_STOPWORDS.has(w)).length, ws.length);
}

function containmentOf(part: TextStats, whole: TextStats): number | undefined {
  if (part.trigrams.size < 4) return undefined;
  let shared = 0;
  for (const t of part.trigrams) if (whole.trigrams.has(t)) shared++;
  return shared / part.trigrams.size;
}

/**
 * Share of `part`'s word trigrams found in `whole`: how much of a query a reply (or a later query)
 * restates. Seen with the embedded 1.5B model: replies opening with their query word for word, and
 * queries that repeat every earlier one before adding a sentence. Undefined for parts under 6 words.
 */
export function containment(part: string, whole: string): number | undefined {
  return containmentOf(analyse(part), analyse(whole));
}

const restates = (part: TextStats, whole: TextStats) =>
  (containmentOf(part, whole) ?? 0) >= REPLY_CHECK_LIMITS.nearDuplicate;
const alike = (a: TextStats, b: TextStats) => similarityOf(a, b) >= REPLY_CHECK_LIMITS.nearDuplicate;

/** Whether `text` is in another language than the `reference` texts (by script, then English stopwords). */
function otherLanguage(reference: ReturnType<typeof pooled>, text: TextStats): string | undefined {
  const expected = dominantOf(reference.scripts);
  const got = dominantOf(text.scripts);
  if (expected && got && expected !== got) return `written in ${got} script, the queries in ${expected}`;
  const referenceShare = stopwordShareOf(reference.stopwords, reference.wordCount);
  const share = stopwordShareOf(text.stopwords, text.words.length);
  if (
    expected === 'Latin' &&
    got === 'Latin' &&
    referenceShare !== undefined &&
    referenceShare >= REPLY_CHECK_LIMITS.minEnglishStopwordShare &&
    share !== undefined &&
    share < REPLY_CHECK_LIMITS.minEnglishStopwordShare
  )
    return `not English (${Math.round(share * 100)}% English function words) while the queries are`;
  return undefined;
}

const ROLE_LABEL =
  /<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id)\|>|\[\/?INST\]|<\/s>|^\s*(?:user|assistant|human)\s*:/im;
const JSON_FRAGMENT =
  /"(?:queries|responses|category|query|response|content|role)"\s*:|^\s*[[{]\s*"|"\s*[\]}]\s*,?\s*$/;

function leftovers(value: string, where: string): ReplyProblem | undefined {
  const label = ROLE_LABEL.exec(value);
  if (label)
    return {
      check: REPLY_CHECKS.roleLabel,
      message: `${where} holds the chat label ${JSON.stringify(label[0].trim())}`,
    };
  const json = JSON_FRAGMENT.exec(value);
  if (json)
    return {
      check: REPLY_CHECKS.jsonFragment,
      message: `${where} holds JSON (${JSON.stringify(json[0].trim())})`,
    };
  return undefined;
}

const preview = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);

/**
 * The first problem of a stage-1 reply (its queries), or undefined. With the information flow's `steps`
 * (what the prompt lists for the user to move through), a query that is a step's own wording is one:
 * the embedded 1.5B model sent "Describe the symptom or problem as first noticed" as the user's query
 * in about 2% of dialogues (7 of 400), and answered it in the user's voice.
 */
export function checkSkeleton(skeleton: Skeleton, steps: readonly string[] = []): ReplyProblem | undefined {
  const { queries } = skeleton;
  for (const [i, q] of queries.entries()) {
    const problem = leftovers(q, `queries.${i}`);
    if (problem) return problem;
  }
  const stats = queries.map(analyse);
  const stepStats = steps.map(analyse);
  for (const [i, q] of stats.entries())
    for (const [k, step] of stepStats.entries())
      if (alike(q, step) || restates(step, q))
        return {
          check: REPLY_CHECKS.echo,
          message: `queries.${i} repeats the information flow's step ${k + 1} ${preview(steps[k]!)}`,
        };
  for (let i = 0; i < queries.length; i++)
    for (let j = 0; j < i; j++)
      if (alike(stats[i]!, stats[j]!) || restates(stats[j]!, stats[i]!))
        return {
          check: REPLY_CHECKS.repeatedQuery,
          message: `queries.${i} repeats queries.${j} ${preview(queries[j]!)}`,
        };
  if (queries.length > 1)
    for (const [i, q] of stats.entries()) {
      const language = otherLanguage(pooled(stats.filter((_, j) => j !== i)), q);
      if (language) return { check: REPLY_CHECKS.language, message: `queries.${i} is ${language}` };
    }
  return undefined;
}

/** The first problem of a stage-2 reply (one response per query), or undefined. */
export function checkResponses(
  queries: readonly string[],
  responses: readonly string[],
): ReplyProblem | undefined {
  for (const [i, r] of responses.entries()) {
    const problem = leftovers(r, `responses.${i}`);
    if (problem) return problem;
  }
  const asked = queries.map(analyse);
  const replies = responses.map(analyse);
  const none = analyse('');
  for (const [i, r] of replies.entries()) {
    const q = asked[i] ?? none;
    if (alike(q, r) || restates(q, r))
      return {
        check: REPLY_CHECKS.echo,
        message: `responses.${i} repeats its query ${preview(queries[i] ?? '')}`,
      };
    for (let j = 0; j < i; j++)
      if (alike(r, replies[j]!))
        return {
          check: REPLY_CHECKS.duplicateReply,
          message: `responses.${i} repeats responses.${j} ${preview(responses[j]!)}`,
        };
    for (const [k, other] of asked.entries())
      if (k !== i && alike(other, r))
        return {
          check: REPLY_CHECKS.echo,
          message: `responses.${i} repeats queries.${k} ${preview(queries[k]!)}`,
        };
  }
  const counts = replies.map((r) => r.words.length);
  const shortest = Math.min(...counts);
  if (shortest < REPLY_CHECK_LIMITS.minResponseWords)
    return {
      check: REPLY_CHECKS.tooShort,
      message: `responses.${counts.indexOf(shortest)} has ${shortest} words; the method asks for 40 to 120`,
    };
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  if (mean < REPLY_CHECK_LIMITS.minMeanResponseWords)
    return {
      check: REPLY_CHECKS.tooShort,
      message: `responses average ${mean.toFixed(1)} words; the method asks for 40 to 120`,
    };
  const reference = pooled(asked);
  for (const [i, r] of replies.entries()) {
    const language = otherLanguage(reference, r);
    if (language) return { check: REPLY_CHECKS.language, message: `responses.${i} is ${language}` };
  }
  return undefined;
}

/** Words of a text, as the benchmarks count them (letters, digits and apostrophes). */
export function wordCount(text: string): number {
  return words(text).length;
}
