/**
 * The built-in taxonomy's intents and information flows (ConsistentChat, arXiv 2506.03558), as typed
 * views of the shipped file `builtin-taxonomy.json`. A flow is spelled out as ordered steps so the
 * skeleton prompt can ask the user side to move through them turn by turn.
 */
import { BUILTIN_TAXONOMY, type InfoFlow } from './taxonomy';

export { resolveIntent } from './taxonomy';

/** The nine built-in intent ids, in the order of the paper's table (a test holds the file to them). */
export type BuiltinIntentId =
  | 'problem_solving'
  | 'educational'
  | 'health_consultation'
  | 'exploratory'
  | 'entertainment'
  | 'simulation'
  | 'emotional_support'
  | 'information_retrieval'
  | 'transaction';

/** An intent id: one of the built-in ones, or any id a custom taxonomy defines. */
export type IntentId = string;
export type InfoFlowId = string;

/** All built-in intent ids in the canonical order of the paper's table. */
export const INTENT_IDS = BUILTIN_TAXONOMY.intents.map((i) => i.id) as readonly BuiltinIntentId[];

export const INFO_FLOWS: Readonly<Record<InfoFlowId, InfoFlow>> = BUILTIN_TAXONOMY.infoFlows;

export const INTENTS = Object.fromEntries(
  BUILTIN_TAXONOMY.intents.map((i) => [i.id, { name: i.name, infoFlows: i.infoFlows }]),
) as unknown as Readonly<Record<BuiltinIntentId, { name: string; infoFlows: readonly InfoFlowId[] }>>;
