/**
 * The run's plan: which (info flow, topic) each dialogue of an intent gets. Pure and seeded, so the
 * workflow computes dialogue `i` on demand (no plan in its history) and the same seed always gives the
 * same plan. Topics are drawn without replacement: each cycle through an intent's topic list is a fresh
 * seeded permutation, so no topic repeats while unused ones remain.
 *
 * With user attributes, topic `t` in its `c`-th cycle gets attribute combination `P_t(c)`, where `P_t`
 * is a seeded pseudorandom permutation of all combinations: no (topic, attributes) pair repeats until
 * every combination has gone with that topic, and each axis stays evenly spread.
 *
 * The PRNG is written here rather than taken from a library on purpose: the plan is part of a run's
 * reproducibility contract, so its algorithm must never change under a dependency upgrade.
 */
import type { DialoguePlan } from './types';
import { attributeSpaceSize, decodeAttributes, type AttributeAxes } from './attributes';
import type { IntentId } from './intents';
import { BUILTIN_TAXONOMY, taxonomyIntent, type Taxonomy } from './taxonomy';

/** cyrb128: a fast, well-mixed 128-bit string hash used to seed sfc32. */
function hash128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** sfc32: small, fast PRNG returning floats in [0, 1). */
export function seededRandom(seed: string): () => number {
  let [a, b, c, d] = hash128(seed);
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function seededPermutation(n: number, seed: string): number[] {
  const random = seededRandom(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

/**
 * The last few permutations computed, by size and seed: consecutive dialogues share their cycle's
 * permutation, and with thousands of topics (expanded leaves) recomputing it per dialogue cost 1.5 ms.
 * The same arguments give the same permutation, so a hit changes no plan.
 */
const recentPermutations = new Map<string, readonly number[]>();
function cyclePermutation(n: number, seed: string): readonly number[] {
  const key = `${n}:${seed}`;
  let permutation = recentPermutations.get(key);
  if (!permutation) {
    permutation = seededPermutation(n, seed);
    recentPermutations.set(key, permutation);
    if (recentPermutations.size > 32) recentPermutations.delete(recentPermutations.keys().next().value!);
  }
  return permutation;
}

/** Picks item `index` from an endless sequence of seeded permutations of `items`. */
function spreadPick<T>(items: readonly T[], index: number, seed: string): T {
  const cycle = Math.floor(index / items.length);
  const permutation = cyclePermutation(items.length, `${seed}#${cycle}`);
  return items[permutation[index % items.length]!]!;
}

/**
 * A seeded pseudorandom permutation of 0..n-1 evaluated one index at a time (a balanced Feistel network
 * over the smallest even power of two ≥ n, cycle-walking back into range): O(1) memory for any n, so a
 * workflow can plan dialogue `i` of millions without materialising the permutation.
 */
export function seededIndexPermutation(n: number, seed: string): (index: number) => number {
  if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 30) throw new RangeError(`permutation size ${n}`);
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  const half = bits / 2;
  const mask = 2 ** half - 1;
  const keys = hash128(seed);
  const round = (value: number, r: number) => {
    let h = Math.imul(value ^ keys[r]!, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    h ^= h >>> 13;
    return (h >>> 0) & mask;
  };
  const once = (x: number) => {
    let left = Math.floor(x / 2 ** half);
    let right = x & mask;
    for (let r = 0; r < 4; r++) [left, right] = [right, (left ^ round(right, r)) & mask];
    return left * 2 ** half + right;
  };
  return (index) => {
    if (!Number.isInteger(index) || index < 0 || index >= n) throw new RangeError(`index ${index} of ${n}`);
    let x = once(index);
    while (x >= n) x = once(x);
    return x;
  };
}

export function dialogueId(runId: string, intent: IntentId, index: number): string {
  return `${runId}.${intent}.${index}`;
}

/**
 * The plan of dialogue `index` (0-based) of `intent` in a run seeded with `seed`, drawn from the run's
 * taxonomy (the built-in one when the run carries none) and, when the run has them, its user attributes.
 */
export function planDialogue(args: {
  runId: string;
  seed: string;
  intent: IntentId;
  index: number;
  taxonomy?: Taxonomy;
  /** The run's attribute axes; runs without them (all runs before attributes) plan as before. */
  attributes?: AttributeAxes;
}): DialoguePlan {
  const { runId, seed, intent, index } = args;
  const entry = taxonomyIntent(args.taxonomy ?? BUILTIN_TAXONOMY, intent);
  const topicSeed = `${seed}/${intent}/topic`;
  const plan: DialoguePlan = {
    id: dialogueId(runId, intent, index),
    index,
    intent,
    infoFlow: spreadPick(entry.infoFlows, index, `${seed}/${intent}/flow`),
    topic: spreadPick(entry.topics, index, topicSeed),
  };
  if (args.attributes) {
    const topics = entry.topics.length;
    const cycle = Math.floor(index / topics);
    // The topic's position in its list, so each topic has its own permutation of combinations.
    const topic = cyclePermutation(topics, `${topicSeed}#${cycle}`)[index % topics]!;
    const size = attributeSpaceSize(args.attributes);
    const combination = seededIndexPermutation(size, `${seed}/${intent}/attributes/${topic}`);
    plan.attributes = decodeAttributes(args.attributes, combination(cycle % size));
  }
  return plan;
}
