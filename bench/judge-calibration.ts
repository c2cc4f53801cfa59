/**
 * How well judge protocols separate the calibration set's consistent dialogues from their planted
 * twins (src/method/calibration.ts), on the embedded model unless an endpoint is given:
 *
 *   node --import tsx bench/judge-calibration.ts [protocol ...]        (default: every protocol)
 *   OPENAI_BASE_URL=… OPENAI_API_KEY=… JUDGE_MODEL=… node --import tsx bench/judge-calibration.ts
 *
 * Prints one JSON line per protocol: AUC (0.5 is chance), the mean score gap, planted failures named,
 * and every dialogue's score; writes them to bench/results/judge-calibration-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { z } from 'zod';
import {
  calibrateJudge,
  describeCalibration,
  RUBRIC_PROTOCOL,
  type JudgeProtocol,
} from '../src/client/calibrate';
import { startLocalModel } from '../src/client/local-model';
import {
  CALIBRATION_SET,
  summariseCalibration,
  type CalibrationDialogue,
  type CalibrationResult,
} from '../src/method/calibration';
import { JUDGE_FLAGS, type JudgeFlag } from '../src/run/schemas';

const transcript = (d: CalibrationDialogue) =>
  d.queries.map((q, i) => `User: ${q}\nAssistant: ${d.responses[i]}`).join('\n\n');

/** The prompt the issue tried first: a score and an explanation, no rubric. */
const PLAIN: JudgeProtocol<{ score: number; reason: string }> = {
  name: 'plain',
  messages: (d) => [
    { role: 'system', content: 'You rate conversations. Reply with JSON only.' },
    {
      role: 'user',
      content: `Rate from 1 to 10 how consistent the assistant is across this conversation, and explain.\n\n${transcript(d)}\n\nReturn {"score": integer, "reason": string}`,
    },
  ],
  schema: () => z.object({ score: z.coerce.number().int().min(1).max(10), reason: z.string() }),
  jsonSchema: () => ({
    type: 'object',
    properties: { score: { type: 'integer' }, reason: { type: 'string' } },
    required: ['score', 'reason'],
    additionalProperties: false,
  }),
  verdict: (reply) => ({ score: reply.score, flags: [] }),
};

/**
 * One question per reply, the facts listed first by the user's own words: "does reply i keep to
 * every fact the user gave and to the assistant's earlier answers?" — yes/no per turn; the score is
 * 10 minus 4 per "no", so one broken reply moves the dialogue well below an intact one.
 */
const PER_TURN: JudgeProtocol<{ turns: { keeps: boolean; broken: string }[] }> = {
  name: 'per-turn',
  messages: (d) => [
    {
      role: 'system',
      content:
        "You check an assistant's replies against what the user said. Be literal: a reply that suggests something the user ruled out, states a different number, date or choice than before, answers another question, or speaks as the user does NOT keep. Reply with JSON only.",
    },
    {
      role: 'user',
      content: `What the user said, in order:\n${d.queries.map((q, i) => `${i + 1}. ${q}`).join('\n')}\n\nThe assistant's replies, in order:\n${d.responses.map((r, i) => `${i + 1}. ${r}`).join('\n')}\n\nFor each reply i: does it answer message i and keep to every fact, number, date and constraint the user gave and to the assistant's own earlier replies? "keeps": true or false; "broken": what it breaks, or "".\nReturn {"turns": [exactly ${d.responses.length} objects {"keeps": boolean, "broken": string}]}`,
    },
  ],
  schema: (n) =>
    z.object({
      turns: z.array(z.object({ keeps: z.boolean(), broken: z.string() })).length(n),
    }),
  jsonSchema: (n) => ({
    type: 'object',
    properties: {
      turns: {
        type: 'array',
        minItems: n,
        maxItems: n,
        items: {
          type: 'object',
          properties: { keeps: { type: 'boolean' }, broken: { type: 'string' } },
          required: ['keeps', 'broken'],
          additionalProperties: false,
        },
      },
    },
    required: ['turns'],
    additionalProperties: false,
  }),
  verdict: (reply) => ({
    score: Math.max(1, 10 - 4 * reply.turns.filter((t) => !t.keeps).length),
    flags: [] as JudgeFlag[],
  }),
};

/**
 * One yes/no question per reply, read from the answer token's log-probabilities rather than its text:
 * "does this reply go against anything said before it?" The dialogue's score is 10 x (1 - the highest
 * P(yes) over its replies), so a small model's leaning counts even when its first token is always "No".
 */
async function perReplyLogprob(openai: OpenAI, model: string): Promise<CalibrationResult> {
  const scores: CalibrationResult['scores'] = [];
  for (const d of CALIBRATION_SET) {
    let worst = 0;
    for (let i = 0; i < d.responses.length; i++) {
      const before = d.queries
        .slice(0, i + 1)
        .map((q, j) => `User: ${q}${j < i ? `\nAssistant: ${d.responses[j]}` : ''}`)
        .join('\n');
      const completion = await openai.chat.completions.create({
        model,
        temperature: 0,
        max_tokens: 1,
        logprobs: true,
        top_logprobs: 10,
        messages: [
          { role: 'system', content: 'You answer with one word: Yes or No.' },
          {
            role: 'user',
            content: `${before}\n\nThe assistant now replies:\n${d.responses[i]}\n\nDoes this reply go against something the user said (a fact, a number, a date, a constraint, something they ruled out) or something the assistant said before, or answer a different question, or speak as the user? Answer Yes or No.`,
          },
        ],
      });
      const top = completion.choices[0]?.logprobs?.content?.[0]?.top_logprobs ?? [];
      const p = (word: string) =>
        top
          .filter((t) => t.token.trim().toLowerCase() === word)
          .reduce((sum, t) => sum + Math.exp(t.logprob), 0);
      const yes = p('yes');
      const no = p('no');
      worst = Math.max(worst, yes + no > 0 ? yes / (yes + no) : 0.5);
    }
    scores.push({
      id: d.id,
      ...(d.planted && { planted: d.planted.flag }),
      // A continuous score: ties would hide the model's leaning.
      score: 10 * (1 - worst),
      flags: [],
    });
    process.stderr.write(`\rper-reply-logprob: ${scores.length}/${CALIBRATION_SET.length}`);
  }
  return summariseCalibration(scores);
}

const PROTOCOLS: Record<string, JudgeProtocol> = {
  plain: PLAIN,
  rubric: RUBRIC_PROTOCOL,
  'per-turn': PER_TURN,
};

async function main() {
  const wanted = process.argv.slice(2);
  for (const name of wanted)
    if (!PROTOCOLS[name] && name !== 'per-reply-logprob') throw new Error(`unknown protocol ${name}`);
  const local = process.env.OPENAI_BASE_URL
    ? undefined
    : await startLocalModel({
        slots: 2,
        contextPerSlot: 4_096,
        logFile: join(tmpdir(), 'judge-calibration-llama.log'),
      });
  const openai = new OpenAI({
    baseURL: local?.baseURL ?? process.env.OPENAI_BASE_URL,
    apiKey: process.env.OPENAI_API_KEY ?? 'local',
    maxRetries: 2,
    timeout: 20 * 60_000,
  });
  const model = local?.model ?? process.env.JUDGE_MODEL ?? 'gpt-4o-mini';
  const results = [];
  try {
    for (const name of wanted.length ? wanted : [...Object.keys(PROTOCOLS), 'per-reply-logprob']) {
      const started = Date.now();
      const result =
        name === 'per-reply-logprob'
          ? await perReplyLogprob(openai, model)
          : await calibrateJudge({
              openai,
              model,
              protocol: PROTOCOLS[name],
              onScored: (done, total) => process.stderr.write(`\r${name}: ${done}/${total}`),
            });
      process.stderr.write('\n');
      const line = { protocol: name, model, seconds: (Date.now() - started) / 1000, ...result };
      console.log(`${name}: ${describeCalibration(result)}`);
      console.log(JSON.stringify(line));
      results.push(line);
    }
  } finally {
    await local?.stop();
  }
  await mkdir(join(__dirname, 'results'), { recursive: true });
  const file = join(
    __dirname,
    'results',
    `judge-calibration-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(file, `${JSON.stringify({ flags: JUDGE_FLAGS, results }, null, 1)}\n`);
  console.log(`written ${file}`);
}

void main();
