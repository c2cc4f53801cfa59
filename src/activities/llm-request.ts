/**
 * What one structured call asks of the endpoint: the request (model, messages, token limit, response
 * format), and what this process learnt of each endpoint+model's quirks from the 400s it answered.
 */
import type {
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { Context } from '@temporalio/activity';
import type { z } from 'zod';
import type { ReplyProblem } from '../method/replies';
import type { LlmCallSettings } from '../run/schemas';
import type { LlmStage } from './metrics';

export interface JsonCall<T> {
  /** The method's stage, for metrics. */
  stage: LlmStage;
  settings: LlmCallSettings;
  messages: ChatCompletionMessageParam[];
  schemaName: string;
  jsonSchema: Record<string, unknown>;
  schema: z.ZodType<T>;
  /** Checks a well-formed reply for what real models get wrong (method/replies.ts). */
  check?: (value: T) => ReplyProblem | undefined;
}

type FormatMode = 'json_schema' | 'json_object' | 'text';
const FORMAT_FALLBACK: Record<FormatMode, FormatMode | undefined> = {
  json_schema: 'json_object',
  json_object: 'text',
  text: undefined,
};

/** What this process learnt about each endpoint+model: the structured-output mode and token parameter it takes. */
interface EndpointQuirks {
  format: FormatMode;
  tokenParam: 'max_tokens' | 'max_completion_tokens';
}
const quirksByEndpoint = new Map<string, EndpointQuirks>();

const FORMAT_REJECTED = /response_format|json_schema|json_object|structured output|guided/i;
const MAX_TOKENS_REJECTED = /max_tokens.*max_completion_tokens|unsupported parameter.*max_tokens/i;

/** One attempt's request parameters; `quirks` change when the endpoint rejects one (see `adaptToEndpoint`). */
export interface AttemptPlan {
  /** The endpoint+model the quirks are learnt for. */
  key: string;
  quirks: EndpointQuirks;
  maxTokens: number;
  /** The prompt's size in tokens, estimated from its characters. */
  promptTokens: number;
  /** Tokens the call may use at most, as the rate limiter counts them. */
  estimated: number;
}

export function planAttempt<T>(baseURL: string, call: JsonCall<T>, attempt: number): AttemptPlan {
  const { settings } = call;
  const key = `${baseURL}|${settings.model}`;
  const quirks: EndpointQuirks = {
    format:
      settings.responseFormat === 'auto'
        ? (quirksByEndpoint.get(key)?.format ?? 'json_schema')
        : settings.responseFormat,
    tokenParam: quirksByEndpoint.get(key)?.tokenParam ?? 'max_tokens',
  };
  // A reply cut at the token limit is retried with more room (up to twice the limit).
  const maxTokens = Math.round(settings.maxTokens * Math.min(2, 1 + 0.25 * (attempt - 1)));
  const promptChars = call.messages.reduce(
    (sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0),
    0,
  );
  const promptTokens = Math.ceil(promptChars / 4);
  return { key, quirks, maxTokens, promptTokens, estimated: promptTokens + maxTokens };
}

export function buildRequest<T>(call: JsonCall<T>, plan: AttemptPlan): ChatCompletionCreateParamsStreaming {
  const { quirks } = plan;
  const request: ChatCompletionCreateParamsStreaming = {
    model: call.settings.model,
    messages: call.messages,
    temperature: call.settings.temperature,
    stream: true,
    stream_options: { include_usage: true },
    [quirks.tokenParam]: plan.maxTokens,
  };
  if (quirks.format === 'json_schema') {
    request.response_format = {
      type: 'json_schema',
      json_schema: { name: call.schemaName, strict: true, schema: call.jsonSchema },
    };
  } else if (quirks.format === 'json_object') {
    request.response_format = { type: 'json_object' };
  }
  return request;
}

/**
 * A 400 about an unsupported feature costs nothing: the plan takes the next response format, or the
 * other token parameter, for this call and the process's later ones; true when it should ask again.
 */
export function adaptToEndpoint(
  settings: LlmCallSettings,
  plan: AttemptPlan,
  error: unknown,
  ctx: Context,
): boolean {
  const status = (error as { status?: number }).status;
  const message = error instanceof Error ? error.message : '';
  if (status !== 400) return false;
  const { quirks } = plan;
  if (settings.responseFormat === 'auto' && FORMAT_REJECTED.test(message)) {
    const next = FORMAT_FALLBACK[quirks.format];
    if (next) {
      ctx.log.warn('endpoint rejected the response format; falling back', { from: quirks.format, to: next });
      quirks.format = next;
      quirksByEndpoint.set(plan.key, { ...quirks });
      return true;
    }
  }
  if (quirks.tokenParam === 'max_tokens' && MAX_TOKENS_REJECTED.test(message)) {
    quirks.tokenParam = 'max_completion_tokens';
    quirksByEndpoint.set(plan.key, { ...quirks });
    return true;
  }
  return false;
}
