/**
 * The OpenAI client of the LLM activities, built from the worker's environment. Apart from `worker.ts`
 * so that the CLI can check the endpoint before it loads the SDK's worker.
 */
import OpenAI from 'openai';
import { ConfigError } from '../shared/errors';
import { nodeFetch } from './node-fetch';
import { redact } from '../shared/redact';

export interface LlmEndpointOptions {
  /** @default process.env.OPENAI_BASE_URL, else the OpenAI API */
  baseURL?: string;
  /** @default process.env.OPENAI_API_KEY */
  apiKey?: string;
}

/** The errors about one endpoint's settings, each naming its setting (as literals, so tests can list them). */
interface EndpointErrors {
  emptyKey: () => ConfigError;
  badUrl: (redactedUrl: string) => ConfigError;
}

const GENERATION_ERRORS: EndpointErrors = {
  // Set but empty is a mistake (a blank in a .env file), not a request for a keyless endpoint.
  emptyKey: () =>
    new ConfigError(
      'OPENAI_API_KEY',
      'is set but empty: set the key, or unset it for a local endpoint that needs none',
    ),
  badUrl: (url) => new ConfigError('--base-url', `not an http(s) URL: ${url}`),
};

const JUDGE_ERRORS: EndpointErrors = {
  emptyKey: () => new ConfigError('CONSISTENT_CHAT_JUDGE_API_KEY', 'is set but empty'),
  badUrl: (url) => new ConfigError('--judge-base-url', `not an http(s) URL: ${url}`),
};

/**
 * Builds the OpenAI client from the worker's environment. `maxRetries: 0` because Temporal owns
 * retries; the key never leaves this process.
 */
export function createOpenAiClient(options: LlmEndpointOptions = {}, env = process.env): OpenAI {
  const baseURL = options.baseURL ?? env.OPENAI_BASE_URL;
  const apiKey = options.apiKey ?? env.OPENAI_API_KEY;
  // A key set but empty is refused as such by `endpointClient`, not as a missing endpoint.
  if (!baseURL && apiKey === undefined) {
    throw new ConfigError(
      'OPENAI_API_KEY',
      'no LLM endpoint configured: set OPENAI_API_KEY (and OPENAI_BASE_URL or --base-url for other endpoints)',
    );
  }
  return endpointClient(baseURL, apiKey, GENERATION_ERRORS);
}

/** The judge's endpoint: worker settings and environment only, like the generator's. */
export interface JudgeEndpointOptions {
  /** @default process.env.CONSISTENT_CHAT_JUDGE_BASE_URL */
  baseURL?: string;
  /** @default process.env.CONSISTENT_CHAT_JUDGE_API_KEY */
  apiKey?: string;
}

/**
 * The judge's own client, or undefined when neither a judge URL nor a judge key is set: the judge
 * then calls the generation endpoint. A judge key alone means the OpenAI API with that key.
 */
export function createJudgeClient(options: JudgeEndpointOptions = {}, env = process.env): OpenAI | undefined {
  const baseURL = options.baseURL ?? env.CONSISTENT_CHAT_JUDGE_BASE_URL;
  const apiKey = options.apiKey ?? env.CONSISTENT_CHAT_JUDGE_API_KEY;
  if (!baseURL && apiKey === undefined) return undefined;
  return endpointClient(baseURL, apiKey, JUDGE_ERRORS);
}

/** Checks an endpoint's key and URL, naming the setting at fault, and builds its client. */
function endpointClient(
  baseURL: string | undefined,
  apiKey: string | undefined,
  errors: EndpointErrors,
): OpenAI {
  if (apiKey !== undefined && apiKey.trim() === '') throw errors.emptyKey();
  if (baseURL) {
    try {
      const url = new URL(baseURL);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw errors.badUrl(redact(baseURL));
    }
  }
  // Local servers (vLLM, Ollama, llama.cpp) take any key; the client insists on one.
  return new OpenAI({
    apiKey: apiKey ?? 'unused',
    baseURL,
    maxRetries: 0,
    timeout: 10 * 60_000,
    fetch: nodeFetch,
  });
}
