/**
 * Variety of a run's plan: of N dialogues spread over the nine built-in intents, how many distinct
 * (intent, flow, topic, attributes) plans, with and without the built-in user attributes. The skeleton
 * prompt is a function of the plan (and the turn count), so a repeated plan is a repeated prompt.
 *
 *   node --import tsx bench/plan-variety.ts [N ...]      (default 1350 100000 1000000)
 */
import { BUILTIN_ATTRIBUTES } from '../src/method/attributes';
import { INTENT_IDS } from '../src/method/intents';
import { planDialogue } from '../src/method/plan';

function variety(total: number, withAttributes: boolean): { distinct: number; ms: number } {
  const perIntent = Math.ceil(total / INTENT_IDS.length);
  const seen = new Set<string>();
  const started = performance.now();
  for (const intent of INTENT_IDS) {
    for (let index = 0; index < perIntent; index++) {
      const plan = planDialogue({
        runId: 'bench',
        seed: 'bench',
        intent,
        index,
        attributes: withAttributes ? BUILTIN_ATTRIBUTES : undefined,
      });
      seen.add(`${intent}|${plan.infoFlow}|${plan.topic}|${JSON.stringify(plan.attributes ?? null)}`);
    }
  }
  return { distinct: seen.size, ms: performance.now() - started };
}

const sizes = process.argv.slice(2).map(Number);
for (const total of sizes.length ? sizes : [1_350, 100_000, 1_000_000]) {
  for (const withAttributes of [false, true]) {
    const { distinct, ms } = variety(total, withAttributes);
    const planned = Math.ceil(total / INTENT_IDS.length) * INTENT_IDS.length;
    console.log(
      JSON.stringify({
        dialogues: planned,
        attributes: withAttributes,
        distinctPlans: distinct,
        distinctShare: Number((distinct / planned).toFixed(4)),
        repeatedPrompts: planned - distinct,
        planMsPer1000: Number(((ms / planned) * 1000).toFixed(2)),
      }),
    );
  }
}
