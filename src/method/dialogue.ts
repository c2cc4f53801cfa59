import type { DialoguePlan, DialogueRecord, JudgeVerdict, Skeleton } from './types';
import { BUILTIN_TAXONOMY, taxonomyFlow, taxonomyIntent, topicPath, type Taxonomy } from './taxonomy';

/** Interleaves the skeleton's queries with the responses into the seed's output record. */
export function toDialogueRecord(args: {
  plan: DialoguePlan;
  skeleton: Skeleton;
  responses: readonly string[];
  model: string;
  /** The run's taxonomy, for the intent and flow names. @default the built-in one */
  taxonomy?: Taxonomy;
  /** The judge's verdict, in runs with a judge. */
  judge?: JudgeVerdict;
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
    ...(topicTree(args.taxonomy, plan) && { topic_path: topicTree(args.taxonomy, plan) }),
    ...(plan.attributes ? { attributes: plan.attributes } : {}),
    model,
    ...(args.judge ? { judge: args.judge } : {}),
  };
}

/** The leaf's path, in runs whose topics were expanded into a tree (others keep their records as they were). */
function topicTree(taxonomy: Taxonomy | undefined, plan: DialoguePlan): string[] | undefined {
  const intent = taxonomy && taxonomyIntent(taxonomy, plan.intent);
  return intent?.topicPaths ? topicPath(intent, plan.topic) : undefined;
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
