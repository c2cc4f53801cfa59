import type { DialoguePlan, DialogueRecord, Skeleton } from './types';
import { BUILTIN_TAXONOMY, taxonomyFlow, taxonomyIntent, type Taxonomy } from './taxonomy';

/** Interleaves the skeleton's queries with the responses into the seed's output record. */
export function toDialogueRecord(args: {
  plan: DialoguePlan;
  skeleton: Skeleton;
  responses: readonly string[];
  model: string;
  /** The run's taxonomy, for the intent and flow names. @default the built-in one */
  taxonomy?: Taxonomy;
}): DialogueRecord {
  const { plan, skeleton, responses, model } = args;
  const names = planNames(plan, args.taxonomy);
  if (responses.length !== skeleton.queries.length) {
    throw new Error(`${skeleton.queries.length} queries but ${responses.length} responses for ${plan.id}`);
  }
  return {
    id: plan.id,
    category: skeleton.category,
    conversation: skeleton.queries.flatMap((query, i) => [
      { role: 'user' as const, value: query },
      { role: 'assistant' as const, value: responses[i]! },
    ]),
    intent: names.intent,
    info_flow: names.infoFlow,
    topic: plan.topic,
    ...(plan.attributes ? { attributes: plan.attributes } : {}),
    model,
  };
}

/** The intent and info flow names a record or failure carries for `plan`. */
export function planNames(
  plan: Pick<DialoguePlan, 'intent' | 'infoFlow'>,
  taxonomy: Taxonomy = BUILTIN_TAXONOMY,
): { intent: string; infoFlow: string } {
  return {
    intent: taxonomyIntent(taxonomy, plan.intent).name,
    infoFlow: taxonomyFlow(taxonomy, plan.infoFlow).name,
  };
}
