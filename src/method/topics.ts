import type { BuiltinIntentId } from './intents';
import { BUILTIN_TAXONOMY } from './taxonomy';

/**
 * Seed topics the planner draws from for the built-in intents: 40 per intent, written for this project
 * (not taken from the ConsistentChat or DataFlow lists), kept in the shipped `builtin-taxonomy.json`.
 * Each is a short, concrete situation a person might bring to an assistant; the skeleton prompt turns
 * it into the user's own story rather than quoting it.
 */
export const TOPICS = Object.fromEntries(
  BUILTIN_TAXONOMY.intents.map((i) => [i.id, i.topics]),
) as unknown as {
  readonly [K in BuiltinIntentId]: readonly string[];
};
