/**
 * Checks, before any workflow starts, that the LLM endpoint answers like an OpenAI-compatible API and
 * accepts the key, so a typo in a URL or key is one clear line instead of a run of failed dialogues.
 */
import OpenAI from 'openai';
import { redact } from '../shared/redact';
import { ConfigError } from '../shared/errors';

/** @default 10 seconds */
export const DEFAULT_PREFLIGHT_TIMEOUT_MS = 10_000;

export interface PreflightResult {
  models: string[];
  /** Set when the endpoint lists its models and the requested one is not among them. */
  warning?: string;
}

export async function preflightEndpoint(
  openai: OpenAI,
  model: string | undefined,
  timeoutMs = DEFAULT_PREFLIGHT_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<PreflightResult> {
  let models: string[];
  try {
    const page = await openai.models.list({ timeout: timeoutMs, maxRetries: 0, signal });
    if (!Array.isArray(page.data)) throw new SyntaxError('no model list');
    models = page.data.map((m) => m.id);
  } catch (error) {
    signal?.throwIfAborted();
    if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
      throw new ConfigError(
        'OPENAI_API_KEY',
        `the endpoint ${redact(openai.baseURL)} refused the key (${error.status})`,
      );
    }
    if (error instanceof OpenAI.APIConnectionError) {
      throw new ConfigError(
        '--base-url',
        redact(
          `cannot reach ${openai.baseURL}: ${error.cause instanceof Error ? error.cause.message : error.message}`,
        ),
      );
    }
    const detail =
      error instanceof OpenAI.APIError ? `GET /models answered ${error.status}` : (error as Error).message;
    throw new ConfigError(
      '--base-url',
      `${redact(openai.baseURL)} does not answer like an OpenAI-compatible endpoint (${detail})`,
    );
  }
  const warning =
    model && models.length > 0 && !models.includes(model)
      ? `model "${model}" is not in the endpoint's model list (${models.slice(0, 5).join(', ')}${models.length > 5 ? ', …' : ''})`
      : undefined;
  return { models, warning };
}
