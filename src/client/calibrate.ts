/**
 * `consistent-chat calibrate`: scores the calibration set (src/method/calibration.ts) with a judge
 * model before a run pays for judging, and says how well it separates consistent dialogues from
 * their planted twins. A few dozen calls, made here directly: nothing of it needs to be durable.
 */
import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { z } from 'zod';
import {
  CALIBRATION_SET,
  summariseCalibration,
  type CalibrationDialogue,
  type CalibrationResult,
} from '../method/calibration';
import {
  JUDGE_SCHEMA_NAME,
  defaultJudgeMaxTokens,
  judgeContext,
  judgeJsonSchema,
  judgeMessages,
  judgeReplySchema,
  toJudgeVerdict,
} from '../method/judge';
import { extractJson } from '../method/replies';
import type { StageTemplate } from '../method/templates';
import type { JudgeFlag } from '../run/schemas';

/** How a protocol asks for a verdict: messages, reply schema, and the score and flags it yields. */
export interface JudgeProtocol<T = unknown> {
  name: string;
  messages(dialogue: CalibrationDialogue): ChatCompletionMessageParam[];
  schema(n: number): z.ZodType<T, unknown>;
  jsonSchema(n: number): Record<string, unknown>;
  verdict(reply: T): { score: number; flags: JudgeFlag[] };
}

/** The judge stage's rubric: the package's own, or a run's (`--prompts DIR/judge.txt`). */
export const rubricProtocol = (template?: StageTemplate): JudgeProtocol => ({
  name: 'rubric',
  messages: (d) =>
    judgeMessages(
      judgeContext({ intent: d.intent, infoFlow: d.infoFlow }, undefined, template),
      { category: '', queries: d.queries },
      d.responses,
    ),
  schema: (n) => judgeReplySchema(n),
  jsonSchema: judgeJsonSchema,
  verdict(reply) {
    const verdict = toJudgeVerdict(reply as Parameters<typeof toJudgeVerdict>[0], 'calibration');
    return { score: verdict.score!, flags: verdict.flags ?? [] };
  },
});

/** The package's own rubric. */
export const RUBRIC_PROTOCOL: JudgeProtocol = rubricProtocol();

export interface CalibrateOptions {
  openai: OpenAI;
  model: string;
  /** @default 0 */
  temperature?: number;
  /** @default RUBRIC_PROTOCOL */
  protocol?: JudgeProtocol;
  /** Calls in flight. @default 2 */
  concurrency?: number;
  /** Attempts per dialogue when a reply does not parse. @default 2 */
  attempts?: number;
  signal?: AbortSignal;
  /** Called after each dialogue, e.g. for a progress line. */
  onScored?: (done: number, total: number) => void;
}

/** Scores every dialogue of the calibration set with `protocol` and summarises the separation. */
export async function calibrateJudge(options: CalibrateOptions): Promise<CalibrationResult> {
  const protocol = options.protocol ?? RUBRIC_PROTOCOL;
  const scores: CalibrationResult['scores'] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < CALIBRATION_SET.length) {
      const index = next++;
      const dialogue = CALIBRATION_SET[index]!;
      const verdict = await judgeOnce(options, protocol, dialogue);
      scores[index] = {
        id: dialogue.id,
        ...(dialogue.planted && { planted: dialogue.planted.flag }),
        score: verdict?.score ?? null,
        flags: verdict?.flags ?? [],
      };
      options.onScored?.(++done, CALIBRATION_SET.length);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 2 }, worker));
  return summariseCalibration(scores);
}

/** One dialogue's verdict, or undefined when no attempt gave a usable reply. */
async function judgeOnce(
  options: CalibrateOptions,
  protocol: JudgeProtocol,
  dialogue: CalibrationDialogue,
): Promise<{ score: number; flags: JudgeFlag[] } | undefined> {
  const n = dialogue.responses.length;
  for (let attempt = 0; attempt < (options.attempts ?? 2); attempt++) {
    options.signal?.throwIfAborted();
    const completion = await options.openai.chat.completions.create(
      {
        model: options.model,
        messages: protocol.messages(dialogue),
        temperature: options.temperature ?? 0,
        max_tokens: defaultJudgeMaxTokens(n),
        response_format: {
          type: 'json_schema',
          json_schema: { name: JUDGE_SCHEMA_NAME, strict: true, schema: protocol.jsonSchema(n) },
        },
      },
      { signal: options.signal },
    );
    const content = completion.choices[0]?.message.content ?? '';
    try {
      const parsed = protocol.schema(n).safeParse(extractJson(content));
      if (parsed.success) return protocol.verdict(parsed.data);
    } catch {
      // Not JSON at all: asked again.
    }
  }
  return undefined;
}

/** One line: `AUC 0.81, gap 2.4 points, 5 of 8 planted failures named (16 dialogues)`. */
export function describeCalibration(result: CalibrationResult): string {
  const planted = result.scores.filter((s) => s.planted).length;
  const unscored = result.scores.filter((s) => s.score === null).length;
  const auc = result.auc === undefined ? 'n/a' : result.auc.toFixed(2);
  const gap = result.gap === undefined ? 'n/a' : `${result.gap.toFixed(1)} points`;
  return `AUC ${auc}, gap ${gap}, ${result.flagged} of ${planted} planted failures named (${result.scores.length} dialogues${unscored ? `, ${unscored} unscored` : ''})`;
}

export { CALIBRATION_WARN_AUC } from '../method/calibration';
