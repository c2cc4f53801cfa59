/** The custom taxonomy of the taxonomy tests, one copy for the unit and the end-to-end ones. */
import type { Taxonomy } from '../../src/method/taxonomy';

/** A small custom taxonomy: two intents, one sharing a flow with the other. Clone it before changing it. */
export const CUSTOM_TAXONOMY: Taxonomy = {
  infoFlows: {
    question_to_answer: { name: 'Question → Answer', steps: ['ask the question', 'check the answer'] },
    complaint_to_fix: {
      name: 'Complaint → Fix',
      steps: ['complain about the problem', 'give details', 'agree on a fix'],
    },
  },
  intents: [
    {
      id: 'billing',
      name: 'Billing Help',
      infoFlows: ['question_to_answer', 'complaint_to_fix'],
      topics: ['A double charge on a card', 'A refund that never arrived', 'An unexpected annual fee'],
    },
    {
      id: 'garden_club',
      name: 'Garden Club Chat',
      infoFlows: ['question_to_answer'],
      topics: ['Planting tulips late in autumn', 'Slugs eating young lettuce'],
    },
  ],
};
