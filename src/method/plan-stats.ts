/**
 * What a run would plan, before paying for it (issue 22 item 5, `consistent-chat plan`): distinct
 * (intent, flow, topic, attributes) plans, repeats, and coverage per intent, flow and attribute value.
 * The skeleton prompt is a function of the plan, so a repeated plan is a repeated prompt.
 *
 * With expansion, the leaves are not known until the LLM writes them; the plan then counts over the
 * number of leaves expansion aims for (placeholders), which is what distinctness depends on.
 */
import { resolveAttributes, type RunAttributes } from './attributes';
import { expansionAim, type ExpandSettings } from './expansion';
import type { IntentId } from './intents';
import { planDialogue } from './plan';
import { BUILTIN_TAXONOMY, taxonomyIntent, type Taxonomy } from './taxonomy';

export interface PlanStatsInput {
  seed: string;
  intents: readonly IntentId[];
  perIntent: number;
  taxonomy?: Taxonomy;
  attributes?: RunAttributes;
  /** Expansion settings, or false/undefined for none. */
  expand?: ExpandSettings | false;
}

export interface IntentPlanStats {
  dialogues: number;
  distinct: number;
  /** Topics the intent plans over: its seeds, or the leaves expansion aims for. */
  topics: number;
  topicsUsed: number;
  /** Expansion's aim and its estimated calls (none when the seeds suffice or expansion is off). */
  expansion?: { leaves: number; calls: number };
}

export interface PlanStats {
  dialogues: number;
  distinct: number;
  repeats: number;
  intents: Record<IntentId, IntentPlanStats>;
  /** Dialogues per info flow id. */
  flows: Record<string, number>;
  /** Dialogues per value, per attribute axis. */
  attributes: Record<string, Record<string, number>>;
}

/** Leaves and calls expansion aims for in one intent (none when it is off or the seeds suffice). */
function expansionAimOf(seeds: number, perIntent: number, expand: ExpandSettings | false | undefined) {
  return expand ? expansionAim(seeds, perIntent, expand) : undefined;
}

export function planStats(input: PlanStatsInput): PlanStats {
  const base = input.taxonomy ?? BUILTIN_TAXONOMY;
  const axes = resolveAttributes(input.attributes);
  const stats: PlanStats = { dialogues: 0, distinct: 0, repeats: 0, intents: {}, flows: {}, attributes: {} };
  for (const axis of axes ?? [])
    stats.attributes[axis.name] = Object.fromEntries(axis.values.map((v) => [v, 0]));
  for (const intent of input.intents) {
    const entry = taxonomyIntent(base, intent);
    const expansion = expansionAimOf(entry.topics.length, input.perIntent, input.expand);
    const topics = expansion
      ? Array.from({ length: expansion.leaves }, (_, i) => `leaf ${i + 1}`)
      : entry.topics;
    const taxonomy = { ...base, intents: [{ ...entry, topics }] };
    const seen = new Set<string>();
    const used = new Set<string>();
    for (let index = 0; index < input.perIntent; index++) {
      const plan = planDialogue({
        runId: 'plan',
        seed: input.seed,
        intent,
        index,
        taxonomy,
        attributes: axes,
      });
      seen.add(`${plan.infoFlow}|${plan.topic}|${JSON.stringify(plan.attributes ?? null)}`);
      used.add(plan.topic);
      stats.flows[plan.infoFlow] = (stats.flows[plan.infoFlow] ?? 0) + 1;
      for (const [axis, value] of Object.entries(plan.attributes ?? {})) stats.attributes[axis]![value]!++;
    }
    stats.intents[intent] = {
      dialogues: input.perIntent,
      distinct: seen.size,
      topics: topics.length,
      topicsUsed: used.size,
      ...(expansion && { expansion }),
    };
    stats.dialogues += input.perIntent;
    stats.distinct += seen.size;
  }
  stats.repeats = stats.dialogues - stats.distinct;
  return stats;
}

/** The plan as lines for the terminal. */
export function formatPlanStats(stats: PlanStats): string[] {
  const pct = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(1)}%`;
  const spread = (counts: Record<string, number>) => {
    const values = Object.values(counts);
    return `min ${Math.min(...values)}, max ${Math.max(...values)} over ${values.length}`;
  };
  const lines = [
    `${stats.dialogues} dialogues: ${stats.distinct} distinct plans (${pct(stats.distinct, stats.dialogues)}), ${stats.repeats} repeats`,
    '',
    'intent: dialogues, distinct plans, topics used of topics',
  ];
  for (const [intent, s] of Object.entries(stats.intents))
    lines.push(
      `  ${intent}: ${s.dialogues}, ${s.distinct} (${pct(s.distinct, s.dialogues)}), ${s.topicsUsed} of ${s.topics}` +
        (s.expansion ? ` (expansion to ${s.expansion.leaves} leaves, about ${s.expansion.calls} calls)` : ''),
    );
  lines.push('', 'info flow: dialogues');
  for (const [flow, n] of Object.entries(stats.flows)) lines.push(`  ${flow}: ${n}`);
  if (Object.keys(stats.attributes).length > 0) {
    lines.push('', 'attribute: dialogues per value');
    for (const [axis, counts] of Object.entries(stats.attributes))
      lines.push(`  ${axis}: ${spread(counts)} values`);
  }
  return lines;
}
