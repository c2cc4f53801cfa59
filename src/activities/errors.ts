/**
 * The one place OpenAI (and reply) errors become Temporal failures. Types are namespaced so retry
 * policies, failure records and the UI all speak the same words; only failures a new attempt can fix
 * are retryable, and a 429's Retry-After becomes the next retry delay.
 */
import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import { redactError } from '../shared/redact';
import { STORAGE_FAILURE_TYPES } from '../shared/failure-types';
import { ForbiddenDirectoryError, LockLostError } from '../storage/jsonl-store';
import { InvalidRecordError } from '../storage/judgments';

export const LLM_FAILURE_TYPES = {
  rateLimit: 'Llm.RateLimit',
  auth: 'Llm.Auth',
  badRequest: 'Llm.BadRequest',
  invalidOutput: 'Llm.InvalidOutput',
  unavailable: 'Llm.Unavailable',
  /** 413 or a prompt over the model's context: the same request can never pass. Fails that dialogue only. */
  contextLength: 'Llm.ContextLength',
  /** The endpoint's content policy refused this dialogue's request. Fails that dialogue only. */
  contentPolicy: 'Llm.ContentPolicy',
  /**
   * A fault of this worker's own code (a TypeError and the like, not the network's): a new attempt runs
   * the same code and fails the same way, so it is not retried.
   */
  localFault: 'Llm.LocalFault',
} as const;

// What OpenAI, Azure, vLLM, llama.cpp and others say when a prompt does not fit, or a policy refuses it.
const CONTEXT_LENGTH =
  /context[_ ]length|maximum context|context window|exceeds? the (?:available )?context|exceed_context_size|too many tokens|prompt is too long|input is too long/i;
const CONTENT_POLICY = /content[_ ](?:management[_ ])?polic|content[_ ]filter|safety system|flagged/i;

export type LlmFailureType = (typeof LLM_FAILURE_TYPES)[keyof typeof LLM_FAILURE_TYPES];

/** Reads `retry-after-ms` or `retry-after` (seconds or an HTTP date) in milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/**
 * How soon a call whose reply was unusable is asked again. A malformed or cut reply says nothing about
 * the endpoint's load, so backing off would only leave its slot idle.
 */
export const INVALID_OUTPUT_RETRY_DELAY_MS = 100;

/** A reply that arrived but is unusable: retried as a new call, at once, never dropped. */
export function invalidOutput(message: string, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type: LLM_FAILURE_TYPES.invalidOutput,
    message,
    nonRetryable: false,
    cause: cause instanceof Error ? cause : undefined,
    nextRetryDelay: INVALID_OUTPUT_RETRY_DELAY_MS,
  });
}

/** Errors JavaScript raises for a program's own mistakes (SyntaxError is a reply's bad JSON here). */
const PROGRAMMING_ERRORS = [TypeError, ReferenceError, RangeError, EvalError, URIError];

/**
 * Codes of a network or socket failure, as the system, node:http and undici give them: a new attempt
 * may get through. undici's own argument errors are left out: they are the caller's mistakes.
 */
const NETWORK_CODE =
  /^(?:E(?:CONN[A-Z]+|TIMEDOUT|PIPE|NOTFOUND|AI_AGAIN|HOSTUNREACH|NETUNREACH|NETDOWN|HOSTDOWN|NETRESET|PROTO|ADDRNOTAVAIL)|UND_ERR_(?!INVALID_ARG|INVALID_RETURN_VALUE|NOT_SUPPORTED)[A-Z_]+|ERR_STREAM_PREMATURE_CLOSE|ERR_SOCKET_[A-Z_]+|ERR_HTTP2_[A-Z_]+)$/;
/** What undici's and node:http's network TypeErrors say ("fetch failed", "terminated", …). */
const NETWORK_MESSAGE =
  /fetch failed|terminated|socket hang up|other side closed|network|ECONNRESET|ETIMEDOUT/i;

/** The error and its causes, outermost first (a few levels: causes may loop). */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (
    let e = error;
    e !== undefined && e !== null && chain.length < 8;
    e = (e as { cause?: unknown }).cause
  ) {
    if (chain.includes(e)) break;
    chain.push(e);
  }
  return chain;
}

function looksLikeNetwork(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (
    (typeof code === 'string' && NETWORK_CODE.test(code)) ||
    (typeof message === 'string' && NETWORK_MESSAGE.test(message))
  );
}

/**
 * The programming error behind `error`, if it is one: a TypeError and the like, thrown directly or by
 * the client's fetch (which the openai client wraps in an `APIConnectionError`), with nothing in its
 * causes that names the network. undici's "fetch failed" and "terminated" are TypeErrors whose causes
 * carry a socket code: those stay retryable.
 */
export function localFault(error: unknown): Error | undefined {
  const inner =
    error instanceof OpenAI.APIConnectionError && !(error instanceof OpenAI.APIConnectionTimeoutError)
      ? error.cause
      : error;
  if (!PROGRAMMING_ERRORS.some((type) => inner instanceof type)) return undefined;
  return causeChain(inner).some(looksLikeNetwork) ? undefined : (inner as Error);
}

type Fail = (
  type: LlmFailureType,
  nonRetryable: boolean,
  message: string,
  nextRetryDelay?: number,
) => ApplicationFailure;

/** Maps any error thrown while calling the LLM to an `ApplicationFailure` with a namespaced type. */
export function toLlmFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  // Endpoint error text can carry credentials (a base URL with a password, a key echoed back).
  const cause = redactError(error);
  const fail: Fail = (type, nonRetryable, message, nextRetryDelay) =>
    ApplicationFailure.create({ type, message, nonRetryable, cause, nextRetryDelay });

  const fault = localFault(error);
  if (fault) {
    const said = redactError(fault);
    return fail(
      LLM_FAILURE_TYPES.localFault,
      true,
      `a fault in the worker's own code, not the endpoint's (a retry would repeat it): ${said.name}: ${said.message}`,
    );
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return fail(LLM_FAILURE_TYPES.unavailable, false, `LLM request timed out: ${cause.message}`);
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return fail(LLM_FAILURE_TYPES.unavailable, false, `cannot reach the LLM endpoint: ${cause.message}`);
  }
  if (error instanceof OpenAI.RateLimitError) {
    const delay = retryAfterMs(error.headers);
    return fail(LLM_FAILURE_TYPES.rateLimit, false, `LLM rate limit (429): ${cause.message}`, delay);
  }
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
    return fail(
      LLM_FAILURE_TYPES.auth,
      true,
      `LLM endpoint refused the credentials (${error.status}): ${cause.message}`,
    );
  }
  if (error instanceof OpenAI.APIError) return statusFailure(error, cause.message, fail);
  if (error instanceof SyntaxError) {
    return fail(
      LLM_FAILURE_TYPES.invalidOutput,
      false,
      `LLM reply is not valid JSON: ${cause.message}`,
      INVALID_OUTPUT_RETRY_DELAY_MS,
    );
  }
  // Network-level failures surfacing outside the client (e.g. a stream cut mid-body).
  return fail(LLM_FAILURE_TYPES.unavailable, false, `LLM call failed: ${cause.message}`);
}

/** An endpoint's error answer by its status (and, for a 400, by what it says). */
function statusFailure<E extends InstanceType<typeof OpenAI.APIError>>(
  error: E,
  message: string,
  fail: Fail,
): ApplicationFailure {
  const said = `${error.code ?? ''} ${error.type ?? ''} ${message}`;
  if (error.status === 413 || (error.status === 400 && CONTEXT_LENGTH.test(said))) {
    return fail(
      LLM_FAILURE_TYPES.contextLength,
      true,
      `the request does not fit the model (${error.status}): ${message}`,
    );
  }
  if (error instanceof OpenAI.BadRequestError && CONTENT_POLICY.test(said)) {
    return fail(
      LLM_FAILURE_TYPES.contentPolicy,
      true,
      `the endpoint's content policy refused this dialogue (${error.status}): ${message}`,
    );
  }
  if (
    error instanceof OpenAI.BadRequestError ||
    error instanceof OpenAI.NotFoundError ||
    error instanceof OpenAI.UnprocessableEntityError
  ) {
    return fail(
      LLM_FAILURE_TYPES.badRequest,
      true,
      `LLM endpoint rejected the request (${error.status}): ${message}`,
    );
  }
  // 408, 409, 5xx and unknown statuses: the endpoint may recover.
  return fail(
    LLM_FAILURE_TYPES.unavailable,
    false,
    `LLM endpoint error (${error.status ?? 'no status'}): ${message}`,
    retryAfterMs(error.headers),
  );
}

export { STORAGE_FAILURE_TYPES };

/**
 * Maps errors of the store to Temporal failures; others pass unchanged (retried as they are). With
 * `root`, a refused directory's message names the worker's output root too.
 */
export function toStorageFailure(error: unknown, root?: string): unknown {
  if (error instanceof ForbiddenDirectoryError) {
    const withRoot =
      root && !error.message.includes(root) ? `${error.message} (output root ${root})` : error.message;
    return ApplicationFailure.nonRetryable(withRoot, STORAGE_FAILURE_TYPES.forbiddenDir);
  }
  if (error instanceof LockLostError)
    return ApplicationFailure.retryable(error.message, STORAGE_FAILURE_TYPES.lockLost);
  if (error instanceof InvalidRecordError)
    return ApplicationFailure.nonRetryable(error.message, STORAGE_FAILURE_TYPES.invalidRecord);
  return error;
}

/** Batch API failures: of a whole batch, or of one of its lines. */
export const BATCH_FAILURE_TYPES = {
  /** The provider refused the batch's input file: names the line and field. Not retried. */
  validation: 'Batch.Validation',
  /** The line was not run before the batch's completion window ended; a later batch takes it. */
  expired: 'Batch.Expired',
  /** The line has neither a response nor a known error. */
  lineFailed: 'Batch.LineFailed',
  /** The worker has no output root to stage batch files under. */
  noOutputRoot: 'Batch.NoOutputRoot',
} as const;

/** Batch activities' errors: OpenAI's through `toLlmFailure`, the store's through `toStorageFailure`. */
export function toBatchFailure(error: unknown): unknown {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ForbiddenDirectoryError || error instanceof LockLostError)
    return toStorageFailure(error);
  return toLlmFailure(error);
}
