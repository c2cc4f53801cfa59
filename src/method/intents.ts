/**
 * The ConsistentChat taxonomy: nine interaction intents, each with the information flows a dialogue of
 * that intent may follow (ConsistentChat, arXiv 2506.03558). A flow is spelled out as ordered steps so
 * the skeleton prompt can ask the user side to move through them turn by turn.
 */

export const INFO_FLOWS = {
  problem_diagnosis_to_solution_optimization: {
    name: 'Problem Diagnosis → Solution Optimization',
    steps: [
      'describe the symptom or problem as first noticed',
      'narrow down what is causing it',
      'ask for a fix that fits their situation',
      'report how the fix went and refine it',
    ],
  },
  broad_theory_to_specific_scenarios: {
    name: 'Broad Theory → Specific Scenarios',
    steps: [
      'ask about the general idea or principle',
      'check their understanding of how it works',
      'apply it to a concrete case of their own',
      'probe an edge case or a variation of that case',
    ],
  },
  basic_concepts_to_cross_domain_connections: {
    name: 'Basic Concepts → Cross-Domain Connections',
    steps: [
      'ask what a basic term or concept means',
      'ask for an example that makes it click',
      'wonder how it shows up in a different field',
      'ask what the connection teaches them overall',
    ],
  },
  hypothesis_testing_to_substantive_discussion: {
    name: 'Hypothesis Testing → Substantive Discussion',
    steps: [
      'put forward a hunch or a claim they half believe',
      'ask whether the evidence backs it up',
      'push back or add a complication',
      'settle into a deeper discussion of what follows',
    ],
  },
  time_sequence_expansion_to_causes_and_effects: {
    name: 'Time Sequence Expansion → Causes and Effects',
    steps: [
      'ask what happened first or how it began',
      'follow what came next over time',
      'ask why those changes happened',
      'ask what the consequences are now or later',
    ],
  },
  single_perspective_to_multiple_perspectives: {
    name: 'Single Perspective → Multiple Perspectives',
    steps: [
      'share their own view or reaction',
      'ask how someone else might see it',
      'compare the views and where they clash',
      'look for a balanced take they can live with',
    ],
  },
  user_needs_to_solutions: {
    name: 'User Needs → Solutions',
    steps: [
      'state what they need, loosely at first',
      'add constraints and preferences when asked or as they remember them',
      'weigh the options offered',
      'settle on a choice and sort out the next steps',
    ],
  },
} as const;

export type InfoFlowId = keyof typeof INFO_FLOWS;

export const INTENTS = {
  problem_solving: {
    name: 'Problem Solving Interaction',
    infoFlows: ['problem_diagnosis_to_solution_optimization'],
  },
  educational: {
    name: 'Educational Interaction',
    infoFlows: ['broad_theory_to_specific_scenarios', 'basic_concepts_to_cross_domain_connections'],
  },
  health_consultation: {
    name: 'Health Consultation Interaction',
    infoFlows: ['problem_diagnosis_to_solution_optimization', 'hypothesis_testing_to_substantive_discussion'],
  },
  exploratory: {
    name: 'Exploratory Interaction',
    infoFlows: [
      'time_sequence_expansion_to_causes_and_effects',
      'hypothesis_testing_to_substantive_discussion',
    ],
  },
  entertainment: {
    name: 'Entertainment Interaction',
    infoFlows: [
      'single_perspective_to_multiple_perspectives',
      'hypothesis_testing_to_substantive_discussion',
    ],
  },
  simulation: {
    name: 'Simulation Interaction',
    infoFlows: ['user_needs_to_solutions', 'broad_theory_to_specific_scenarios'],
  },
  emotional_support: {
    name: 'Emotional Support Interaction',
    infoFlows: ['single_perspective_to_multiple_perspectives', 'user_needs_to_solutions'],
  },
  information_retrieval: {
    name: 'Information Retrieval Interaction',
    infoFlows: [
      'basic_concepts_to_cross_domain_connections',
      'time_sequence_expansion_to_causes_and_effects',
    ],
  },
  transaction: {
    name: 'Transaction Interaction',
    infoFlows: ['user_needs_to_solutions', 'problem_diagnosis_to_solution_optimization'],
  },
} as const satisfies Record<string, { name: string; infoFlows: readonly InfoFlowId[] }>;

export type IntentId = keyof typeof INTENTS;

/** All intent ids in the canonical order of the paper's table. */
export const INTENT_IDS = Object.keys(INTENTS) as IntentId[];

/**
 * Resolves what a user typed (`problem_solving`, `problem-solving`, `Problem Solving`,
 * `Problem Solving Interaction`) to an intent id, or `undefined`.
 */
export function resolveIntent(input: string): IntentId | undefined {
  const key = input
    .trim()
    .toLowerCase()
    .replace(/\s+interaction$/, '')
    .replace(/[\s-]+/g, '_');
  return (INTENT_IDS as readonly string[]).includes(key) ? (key as IntentId) : undefined;
}
