/**
 * Is the judge any good? A calibration set written for this project: short consistent dialogues, each
 * with a twin that differs in one assistant reply carrying one planted failure (a contradicted fact,
 * a forgotten constraint, another question answered, the assistant speaking as the user). A judge
 * worth its calls scores each consistent dialogue above its twin; the separation is measured as the
 * AUC of the scores (0.5 is chance) and the mean score gap.
 */
import type { InfoFlowId, IntentId } from './intents';
import type { JudgeFlag } from './types';

export interface CalibrationDialogue {
  id: string;
  intent: IntentId;
  infoFlow: InfoFlowId;
  queries: string[];
  responses: string[];
  /** The planted failure; absent in the consistent originals. */
  planted?: { flag: JudgeFlag; turn: number };
}

interface CalibrationPair {
  id: string;
  intent: IntentId;
  infoFlow: InfoFlowId;
  queries: string[];
  responses: string[];
  /** The twin: reply `turn` (0-based) replaced by `response`, which carries `flag`. */
  twin: { turn: number; response: string; flag: JudgeFlag };
}

const PAIRS: CalibrationPair[] = [
  {
    id: 'peanut-lunch',
    intent: 'problem_solving',
    infoFlow: 'problem_diagnosis_to_solution_optimization',
    queries: [
      "my son is 9 and has a severe peanut allergy, we're going on a day hike saturday. what do I need to think about?",
      'ok the epipen is sorted. how much water for a 10 km trail in warm weather?',
      'great. what could I pack for his lunch?',
    ],
    responses: [
      'With a severe peanut allergy, carry two epinephrine auto-injectors, tell every adult on the hike where they are, and pack only food you prepared yourself so you know every ingredient. Check the route for phone signal and note the nearest road access in case you need help fast.',
      'Plan on about half a litre per hour for him and more for you; a 10 km trail in warm weather takes three to four hours, so two litres for him is sensible. Add a salty snack and take breaks in the shade.',
      'A turkey and cheese wrap travels well, with apple slices, carrot sticks and a sunflower seed butter sandwich as a backup. Pack everything in labelled containers you filled at home, so nothing with peanuts gets near his food.',
    ],
    twin: {
      turn: 2,
      response:
        'A peanut butter and banana sandwich is the classic trail lunch: filling, easy to pack and full of energy. Add a bag of trail mix with peanuts and raisins for the climb, and an apple for the way down.',
      flag: 'forgotten_constraint',
    },
  },
  {
    id: 'kitchen-budget',
    intent: 'transaction',
    infoFlow: 'user_needs_to_solutions',
    queries: [
      'we have $8,000 in total to redo a small kitchen. is that realistic?',
      'what should we spend most of it on?',
      'so roughly what would the whole thing come to with your plan?',
    ],
    responses: [
      'For a small kitchen, $8,000 is realistic if you keep the layout as it is. Moving plumbing or walls is what makes a remodel expensive; refreshing cabinets, counters and appliances in place fits that budget.',
      'Put the largest share into counters and the sink, around $2,500, then about $2,000 to paint or reface the cabinets, $2,000 for appliances and the rest for lighting, hardware and a buffer for surprises.',
      'With that plan the total comes to about $7,500, leaving roughly $500 of your $8,000 as a cushion for anything unexpected.',
    ],
    twin: {
      turn: 2,
      response:
        'With that plan the total comes to about $25,000, which sits comfortably within your budget and still leaves room for a few upgrades.',
      flag: 'contradiction',
    },
  },
  {
    id: 'language-choice',
    intent: 'educational',
    infoFlow: 'broad_theory_to_specific_scenarios',
    queries: [
      "I'm starting a data analysis course in spring, which language should I learn first?",
      'how long until I can do something useful with it?',
      'what should my first small project be?',
    ],
    responses: [
      'Start with Python. It is the language most data courses use, its pandas library covers loading, cleaning and summarising data, and what you learn carries over to automation and machine learning later.',
      'With a few hours a week, most people can load a spreadsheet into pandas, clean it and make charts within four to six weeks. Aim to finish one small analysis end to end rather than covering every feature.',
      'Take a dataset you care about, such as your own monthly spending, load it with pandas, group it by category and plot the totals with matplotlib. It uses exactly the Python basics you will have learnt by then.',
    ],
    twin: {
      turn: 2,
      response:
        "Since you've decided to learn R as I suggested, take a dataset you care about, load it with readr, group it with dplyr and plot it with ggplot2. It uses exactly the R basics you will have learnt by then.",
      flag: 'contradiction',
    },
  },
  {
    id: 'bread-dough',
    intent: 'educational',
    infoFlow: 'basic_concepts_to_cross_domain_connections',
    queries: [
      'why does bread dough need kneading at all?',
      'ok and after kneading, how long should I let the dough rest?',
      'does the same idea apply to pizza dough?',
    ],
    responses: [
      'Kneading lines up and links the gluten proteins in the flour into a stretchy network. That network traps the gas the yeast makes, which is what lets the bread rise and gives it its chewy structure.',
      'Let it rise covered at room temperature until it has roughly doubled, usually one to two hours. A cooler kitchen takes longer; the doubling matters more than the clock.',
      'Yes: pizza dough relies on the same gluten network. Many pizza doughs are kneaded less and rested longer, even a day in the fridge, which develops gluten slowly and adds flavour.',
    ],
    twin: {
      turn: 1,
      response:
        'Bake it at 230 °C on the lowest rack, with a tray of water underneath for steam during the first ten minutes; the crust browns better that way.',
      flag: 'off_question',
    },
  },
  {
    id: 'exam-stress',
    intent: 'emotional_support',
    infoFlow: 'user_needs_to_solutions',
    queries: [
      "my final exams start in two weeks and I can't sleep, I keep thinking I'll fail",
      "I've tried studying later at night but it makes it worse",
      'what can I do tonight?',
    ],
    responses: [
      'That sounds exhausting, and it is a very common reaction to exam pressure. Worry tends to grow at night; getting some of it out of your head and onto paper during the day can make it smaller.',
      'That makes sense: late studying keeps your mind switched on when it needs to wind down. Setting a fixed stop time, an hour before bed, usually helps more than extra hours.',
      'Tonight, stop studying an hour before bed, write tomorrow’s three study tasks on paper so your mind can let go of them, and do something calm with no screen. If you wake up worrying, note the thought down and return to bed.',
    ],
    twin: {
      turn: 2,
      response:
        "Thanks, that really helps! I'll put my notes away early tonight and try writing my tasks down. I'm still nervous about the maths paper though, do you think I'll pass?",
      flag: 'persona_drift',
    },
  },
  {
    id: 'vegetarian-dinner',
    intent: 'transaction',
    infoFlow: 'problem_diagnosis_to_solution_optimization',
    queries: [
      "I'm vegetarian and want to cook dinners for the week for under 40 dollars, where do I start?",
      'which proteins are cheapest?',
      'give me one recipe for tomorrow',
    ],
    responses: [
      'Start by picking three or four meals that share ingredients, like rice, beans, onions and seasonal vegetables, so nothing goes to waste. Cook a large batch twice in the week instead of every night.',
      'Dried lentils and beans are the cheapest, then eggs, tofu and peanut butter. A bag of dried lentils costs a few dollars and makes many portions.',
      'Red lentil curry: soften an onion, garlic and ginger, add curry powder, a cup of red lentils, a tin of tomatoes and two cups of water, and simmer for twenty minutes. Serve with rice; it makes four portions.',
    ],
    twin: {
      turn: 2,
      response:
        'Chicken stir-fry: slice two chicken breasts, brown them in a hot pan, add sliced peppers, onion and soy sauce, and cook for ten minutes. Serve with rice; it makes four portions.',
      flag: 'forgotten_constraint',
    },
  },
  {
    id: 'moving-date',
    intent: 'problem_solving',
    infoFlow: 'problem_diagnosis_to_solution_optimization',
    queries: [
      "we move house on March 3rd and haven't packed anything yet, help",
      "it's a two bedroom flat, two adults and a cat",
      'how should I plan the remaining days?',
    ],
    responses: [
      'With March 3rd close, work backwards from moving day: book the van or movers today, order boxes, and pack the rooms you use least first. Keep a box of essentials for the first night aside.',
      'For a two-bedroom flat, plan on 40 to 60 boxes. Arrange for the cat to stay in one closed room or with a friend on moving day, so it cannot slip out while doors are open.',
      'Pack one room a day, starting with storage and spare rooms, then books and decorations, kitchen last. Two days before March 3rd, confirm the van and pack the essentials box and the cat carrier.',
    ],
    twin: {
      turn: 2,
      response:
        'Since your move is at the end of April, you have plenty of time: pack a shelf or two a week, and start on the kitchen in mid-April. Confirm the van the week before.',
      flag: 'contradiction',
    },
  },
  {
    id: 'knee-training',
    intent: 'health_consultation',
    infoFlow: 'problem_diagnosis_to_solution_optimization',
    queries: [
      'my physio says no running for six weeks because of my knee, but I want to keep my fitness',
      'I have access to a gym and a pool',
      'can you put that into a weekly plan?',
    ],
    responses: [
      'You can keep most of your fitness without running. Low-impact cardio such as swimming, cycling or the rowing machine keeps your heart and lungs working while your knee heals; check each one with your physio.',
      'That is ideal. Swimming and pool running put almost no load on the knee, and the gym gives you the stationary bike and upper-body and core work.',
      'Monday: 30 minutes swimming. Tuesday: core and upper body. Wednesday: 40 minutes stationary bike at easy effort. Thursday: rest. Friday: pool running intervals. Saturday: swimming. Sunday: rest. Stop anything that hurts the knee.',
    ],
    twin: {
      turn: 2,
      response:
        'Monday: 5 km easy run. Tuesday: core and upper body. Wednesday: hill repeats on the treadmill. Thursday: rest. Friday: 8 km tempo run. Saturday: swimming. Sunday: rest.',
      flag: 'forgotten_constraint',
    },
  },
];

/** The set: each consistent dialogue, then its twin with the planted failure. */
export const CALIBRATION_SET: readonly CalibrationDialogue[] = PAIRS.flatMap((pair) => {
  const { twin, ...original } = pair;
  const responses = [...original.responses];
  responses[twin.turn] = twin.response;
  return [
    original,
    { ...original, id: `${pair.id}/planted`, responses, planted: { flag: twin.flag, turn: twin.turn } },
  ];
});

/**
 * The probability that a consistent dialogue scores above a planted one (ties count half): 1 is a
 * perfect judge, 0.5 chance. Undefined without both kinds.
 */
export function scoreAuc(consistent: readonly number[], planted: readonly number[]): number | undefined {
  if (consistent.length === 0 || planted.length === 0) return undefined;
  let wins = 0;
  for (const c of consistent) for (const p of planted) wins += c > p ? 1 : c === p ? 0.5 : 0;
  return wins / (consistent.length * planted.length);
}

/** Below this AUC the judge's scores say little: a warning, not a refusal. */
export const CALIBRATION_WARN_AUC = 0.65;

/** What a calibration reports: the separation, and each dialogue's score. */
export interface CalibrationResult {
  auc: number | undefined;
  /** Mean score of the consistent dialogues minus that of the planted ones. */
  gap: number | undefined;
  /** Planted dialogues whose failure the judge flagged by name. */
  flagged: number;
  scores: { id: string; planted?: JudgeFlag; score: number | null; flags: JudgeFlag[] }[];
}

/** Summarises a judge's scores on the set (null for a dialogue the judge could not score). */
export function summariseCalibration(scores: CalibrationResult['scores']): CalibrationResult {
  const scored = scores.filter((s): s is typeof s & { score: number } => s.score !== null);
  const consistent = scored.filter((s) => !s.planted).map((s) => s.score);
  const planted = scored.filter((s) => s.planted).map((s) => s.score);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    auc: scoreAuc(consistent, planted),
    gap: consistent.length && planted.length ? mean(consistent) - mean(planted) : undefined,
    flagged: scores.filter((s) => s.planted && s.flags.includes(s.planted)).length,
    scores,
  };
}
