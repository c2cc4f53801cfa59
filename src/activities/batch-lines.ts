/**
 * The lines of batch files, without I/O: a dialogue's request line (the same messages, schema and
 * settings as its real-time call), and what an output or error line says about it. Pure, so the batch
 * activities and their tests share it.
 */
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import {
  RESPONSES_SCHEMA_NAME,
  SKELETON_SCHEMA_NAME,
  checkResponses,
  checkSkeleton,
  describeIssues,
  extractJson,
  planDialogue,
  promptContext,
  responsesJsonSchema,
  responsesMessages,
  responsesReplySchema,
  skeletonJsonSchema,
  skeletonMessages,
  skeletonReplySchema,
} from '../method';
import type { BatchPlanInput, BatchStage } from '../run/batch';
import type { DialoguePlan, LlmCallSettings, Skeleton } from '../run/schemas';
import { BATCH_FAILURE_TYPES, toLlmFailure } from './errors';

export const BATCH_ENDPOINT = '/v1/chat/completions';

/** What a line's request needs beyond the dialogue's index. */
export interface LineContext {
  runId: string;
  intent: string;
  stage: BatchStage;
  numTurns: number;
  llm: LlmCallSettings;
  plan: BatchPlanInput;
}

export function planOf(ctx: Pick<LineContext, 'runId' | 'intent' | 'plan'>, index: number): DialoguePlan {
  return planDialogue({
    runId: ctx.runId,
    seed: ctx.plan.seed,
    intent: ctx.intent,
    index,
    taxonomy: ctx.plan.taxonomy,
    attributes: ctx.plan.attributes,
  });
}

/** The index of a line's dialogue, from its `custom_id` (the dialogue id `<run>.<intent>.<index>`). */
export function indexOf(customId: string): number {
  return Number(customId.slice(customId.lastIndexOf('.') + 1));
}

/** The information flow's steps in a dialogue's skeleton prompt: a query that repeats one is an echo. */
export function flowSteps(ctx: Pick<LineContext, 'runId' | 'intent' | 'plan'>, index: number): string[] {
  const { taxonomy, prompts } = ctx.plan;
  return promptContext('skeleton', planOf(ctx, index), taxonomy, prompts).infoFlow.steps;
}

/** One JSONL line of a batch input file; `skeleton` only for the responses stage. */
export function requestLine(ctx: LineContext, index: number, skeleton?: Skeleton): string {
  const plan = planOf(ctx, index);
  const prompt =
    ctx.plan.taxonomy || ctx.plan.prompts
      ? promptContext(ctx.stage, plan, ctx.plan.taxonomy, ctx.plan.prompts)
      : undefined;
  let messages;
  let schema: { name: string; schema: Record<string, unknown> };
  if (ctx.stage === 'skeleton') {
    messages = skeletonMessages(plan, ctx.numTurns, prompt);
    schema = { name: SKELETON_SCHEMA_NAME, schema: skeletonJsonSchema(ctx.numTurns) };
  } else {
    if (!skeleton) throw new Error(`responses request for #${index} has no staged skeleton`);
    messages = responsesMessages(plan, skeleton, prompt);
    schema = { name: RESPONSES_SCHEMA_NAME, schema: responsesJsonSchema(skeleton.queries.length) };
  }
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: ctx.llm.model,
    messages,
    temperature: ctx.llm.temperature,
    max_tokens: ctx.llm.maxTokens,
  };
  // Batch endpoints are the provider's own: structured output unless the run asked for less.
  if (ctx.llm.responseFormat === 'json_object') body.response_format = { type: 'json_object' };
  else if (ctx.llm.responseFormat !== 'text')
    body.response_format = { type: 'json_schema', json_schema: { strict: true, ...schema } };
  return JSON.stringify({ custom_id: plan.id, method: 'POST', url: BATCH_ENDPOINT, body });
}

/** A line of an output or error file, as OpenAI writes them. */
export interface OutputLine {
  custom_id: string;
  response: { status_code: number; body: unknown } | null;
  error: { code?: string; message?: string } | null;
}

interface ChatBody {
  choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

export type LineOutcome =
  | { index: number; ok: true; value: Skeleton | { responses: string[] }; usage?: Usage }
  | { index: number; ok: false; type: string; reason: string; final: boolean; usage?: Usage };

interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * What one output or error line means for its dialogue: a usable reply, or why not (through the one
 * error-mapping function), and whether a later batch may fix it.
 */
export function readLine(
  stage: BatchStage,
  numTurns: number,
  line: OutputLine,
  skeleton?: Skeleton,
  steps: readonly string[] = [],
): LineOutcome {
  const index = indexOf(line.custom_id);
  const { response } = line;
  if (!response) {
    const expired = line.error?.code === 'batch_expired';
    const type = expired ? BATCH_FAILURE_TYPES.expired : BATCH_FAILURE_TYPES.lineFailed;
    return { index, ok: false, type, reason: line.error?.message ?? 'no response', final: false };
  }
  if (response.status_code !== 200) {
    const body = response.body as { error?: Record<string, unknown> } | undefined;
    const failure = toLlmFailure(
      OpenAI.APIError.generate(response.status_code, body?.error ?? body, undefined, new Headers()),
    );
    return {
      index,
      ok: false,
      type: failure.type ?? 'Llm.Unavailable',
      reason: failure.message,
      final: failure.nonRetryable === true,
    };
  }
  const body = response.body as ChatBody;
  const usage = body.usage && {
    promptTokens: body.usage.prompt_tokens ?? 0,
    completionTokens: body.usage.completion_tokens ?? 0,
  };
  const problem = replyProblem(stage, numTurns, body, skeleton, steps);
  if (typeof problem === 'string')
    return { index, ok: false, type: 'Llm.InvalidOutput', reason: problem, final: false, usage };
  return { index, ok: true, value: problem.value, usage };
}

/** The reply's value, or what is wrong with it (the real-time call's checks). */
function replyProblem(
  stage: BatchStage,
  numTurns: number,
  body: ChatBody,
  skeleton: Skeleton | undefined,
  steps: readonly string[],
): string | { value: Skeleton | { responses: string[] } } {
  const choice = body.choices?.[0];
  if (choice?.finish_reason === 'length') return 'reply cut at the token limit (finish_reason "length")';
  let json: unknown;
  try {
    json = extractJson(choice?.message?.content ?? '');
  } catch (error) {
    return `${stage}: ${(error as Error).message}`;
  }
  if (stage === 'skeleton') {
    const parsed = skeletonReplySchema(numTurns).safeParse(json);
    if (!parsed.success) return `${SKELETON_SCHEMA_NAME} reply does not fit: ${describeIssues(parsed.error)}`;
    const problem = checkSkeleton(parsed.data, steps);
    return problem
      ? `${SKELETON_SCHEMA_NAME} failed the ${problem.check} check: ${problem.message}`
      : { value: parsed.data };
  }
  const queries = skeleton?.queries ?? [];
  const parsed = responsesReplySchema(queries.length).safeParse(json);
  if (!parsed.success) return `${RESPONSES_SCHEMA_NAME} reply does not fit: ${describeIssues(parsed.error)}`;
  const problem = checkResponses(queries, parsed.data.responses);
  return problem
    ? `${RESPONSES_SCHEMA_NAME} failed the ${problem.check} check: ${problem.message}`
    : { value: parsed.data };
}
