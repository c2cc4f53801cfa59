/**
 * An OpenAI-compatible chat endpoint for tests and benchmarks, on 127.0.0.1 only. It speaks the real
 * protocol (JSON and SSE streaming, `response_format` schemas, usage, OpenAI error bodies), writes
 * replies the package's parser accepts, and injects latency, rate limits and faults on demand.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  BATCH_DEFAULTS,
  type BatchFaults,
  type BatchStats,
  type ChatAnswer,
  createBatchApi,
  freshBatchStats,
} from './batches';

export const FAULTS = [
  'rateLimit',
  'serverError',
  'hang',
  'streamCut',
  /** A 200 whose stream stops halfway with an `error` event, as vLLM and llama.cpp report a failure mid-reply. */
  'streamError',
  'malformedJson',
  'truncated',
  'fenced',
  'prose',
  'wrongCount',
  'controlChars',
  'contentPolicy',
  'contextLength',
  'payloadTooLarge',
  /** A 200 whose stream stops halfway and stays open: hung mid-reply. */
  'stall',
  /**
   * A skeleton whose first query is the information flow's first step, word for word (as small models
   * do): the first `1. ` line of the prompt, as the built-in skeleton template lists the steps.
   */
  'echoStep',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface LlmServerOptions {
  port: number;
  models: string[];
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  supportJsonSchema: boolean;
  supportJsonObject: boolean;
  /**
   * `meanMs` before the answer's headers; `prefillTokensPerSecond` then paces the wait between the
   * role-only first chunk and the first content (prompt tokens ÷ rate), as a server that answers at once
   * and then reads the prompt; `tokensPerSecond` paces the chunks after it.
   */
  latency: { meanMs: number; jitter?: number; tokensPerSecond?: number; prefillTokensPerSecond?: number };
  /** Probability of each fault per chat request; at most one fault per request. */
  faults: Partial<Record<Fault, number>>;
  alwaysFail?: 'rateLimit' | 'serverError' | 'auth' | 'malformedJson';
  retryAfterSeconds: number;
  /**
   * Sliding-window limit: `requestsPerMinute × windowMs / 60 s` requests per window. A short window
   * admits only a small burst, as token-bucket limits of real endpoints do. @default windowMs 60 s
   */
  rateLimit?: { requestsPerMinute: number; windowMs?: number };
  tokensPerChunk: number;
  /** Words of each response of a `responses` reply, drawn uniformly in [min, max). @default 40 to 80 */
  responseWords: { min: number; max: number };
  seed: number;
  /** Keep the messages of the last this many chat requests, for `received()`. @default 0 */
  recordRequests: number;
  /**
   * While true, chat requests are held before their reply starts (they count in flight), so a test
   * can keep a run mid-way for as long as a slow machine needs. @default false
   */
  hold: boolean;
  /** The Batch API's pace and faults (batches.ts); its lines also draw `faults`. */
  batch: BatchFaults;
  /**
   * The judge's score for every turn of a judge request, from its messages' text (joined), instead of
   * a random one: a test decides what the judge tells apart. @default none (random scores)
   */
  judgeScore?: (prompt: string) => number;
}

/** Options as given: the batch faults may be given in part. */
export type LlmServerSettings = Partial<Omit<LlmServerOptions, 'batch'>> & { batch?: Partial<BatchFaults> };

/** A chat request as received: what a test checks the package's prompts against. */
export interface ReceivedRequest {
  model: string;
  stage: Stage;
  temperature?: number;
  /** `max_tokens` or `max_completion_tokens`, whichever the request sent. */
  maxTokens?: number;
  messages: { role: string; content: string }[];
}

export interface LlmServerStats {
  requests: number;
  completed: number;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  inFlight: number;
  maxInFlight: number;
  promptTokens: number;
  completionTokens: number;
  stages: { skeleton: number; responses: number; judge: number; topics: number; other: number };
  rateLimited: number;
  /** Chat requests whose connection closed before the reply was complete (client aborts, hangs, cuts). */
  aborted: number;
  /** Sum of chat requests' durations, arrival to close: busyMs ÷ the window is the mean number in flight. */
  busyMs: number;
  /** The same by whole second since `firstAt`: where a run's calls in flight fell short (start, middle, tail). */
  busyBySecond: number[];
  /** Connections open now (any request): 0 once every client is gone and all it sent was read. */
  openConnections: number;
  /** `busyMs` of the requests given each fault: what a hung connection cost its caller (÷ `faults[name]`). */
  busyByFault: Record<string, number>;
  /** Epoch ms of the first chat request's arrival and of the last one's close since the last reset. */
  firstAt?: number;
  lastAt?: number;
  /** The Batch API: files, batches by end state, and its lines' chat counters (apart from real-time calls). */
  batch: BatchStats & { chat: ChatCounters };
}

/** What a chat request counts: real-time requests in the stats, batch lines in `stats.batch.chat`. */
type ChatCounters = Pick<
  LlmServerStats,
  | 'requests'
  | 'completed'
  | 'byStatus'
  | 'faults'
  | 'promptTokens'
  | 'completionTokens'
  | 'stages'
  | 'rateLimited'
>;

const freshCounters = (): ChatCounters => ({
  requests: 0,
  completed: 0,
  byStatus: {},
  faults: {},
  promptTokens: 0,
  completionTokens: 0,
  stages: { skeleton: 0, responses: 0, judge: 0, topics: 0, other: 0 },
  rateLimited: 0,
});

const count = (s: ChatCounters, status: number) => (s.byStatus[status] = (s.byStatus[status] ?? 0) + 1);

/** Where a chat answer goes: a socket's response, or a batch line's collector. */
interface Reply {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): unknown;
  end(chunk?: string): unknown;
  readonly destroyed: boolean;
  readonly socket?: { destroy(): unknown } | null;
}

/** A batch line's answer, collected whole (batch lines never stream). */
function collector(): Reply & { answer(): ChatAnswer } {
  let status = 0;
  let body = '';
  let ended = false;
  let destroyed = false;
  return {
    writeHead: (s: number) => (status = s),
    write: (chunk: string) => (body += chunk),
    end: (chunk?: string) => {
      body += chunk ?? '';
      ended = true;
    },
    get destroyed() {
      return destroyed;
    },
    socket: { destroy: () => (destroyed = true) },
    answer: () => (ended ? { status, body } : { status: 0, body: '' }),
  };
}

export interface LlmServer {
  url: string;
  port: number;
  stats(): LlmServerStats;
  resetStats(): void;
  /** The last `recordRequests` chat requests, oldest first. */
  received(): ReceivedRequest[];
  configure(options: LlmServerSettings): void;
  close(): Promise<void>;
}

const DEFAULTS: LlmServerOptions = {
  port: 0,
  models: ['test-model'],
  supportJsonSchema: true,
  supportJsonObject: true,
  latency: { meanMs: 0 },
  faults: {},
  retryAfterSeconds: 1,
  tokensPerChunk: 8,
  responseWords: { min: 40, max: 80 },
  seed: 1,
  hold: false,
  recordRequests: 0,
  batch: BATCH_DEFAULTS,
};

/** mulberry32: tiny seeded PRNG, so fault and latency draws repeat from run to run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = {
  openers: ['so', 'ok so', 'hey,', 'quick question,', 'hmm,', 'right,', 'honestly', 'wait,'],
  verbs: ['figure out', 'sort out', 'understand', 'fix', 'plan', 'compare', 'decide on', 'deal with'],
  objects: [
    'the schedule',
    'my budget',
    'the second option',
    'that setting',
    'the whole thing',
    'the next step',
    'the costs',
    'the timing',
  ],
  tails: [
    'before the weekend',
    'without spending too much',
    'for my family',
    'at work',
    'this month',
    'if that makes sense',
    'for a beginner',
    'step by step',
  ],
  answer: [
    'Start',
    'by',
    'checking',
    'the',
    'simplest',
    'cause',
    'first',
    'then',
    'compare',
    'options',
    'against',
    'your',
    'budget',
    'and',
    'timeline',
    'keep',
    'notes',
    'so',
    'the',
    'next',
    'step',
    'is',
    'clear',
    'and',
    'you',
    'can',
    'adjust',
    'later',
    'if',
    'needed',
  ],
};

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

/** Object and tail move on each turn (from `shift`, per skeleton): no query repeats another, as the reply checks require. */
function query(rand: () => number, i: number, shift: number): string {
  const object = WORDS.objects[(shift + i) % WORDS.objects.length]!;
  const tail = WORDS.tails[(shift + i + Math.floor(i / WORDS.objects.length)) % WORDS.tails.length]!;
  return `${pick(rand, WORDS.openers)} how do I ${pick(rand, WORDS.verbs)} ${object} ${tail}? (turn ${i + 1})`;
}

function response(rand: () => number, i: number, size: { min: number; max: number }): string {
  const length = size.min + Math.floor(rand() * (size.max - size.min));
  const words = Array.from({ length }, () => pick(rand, WORDS.answer));
  return `For point ${i + 1}: ${words.join(' ')}.`;
}

/** A judge's reply: scores 3-10 per turn, a flag on a low one, so filters by score have something to cut. */
function judgment(rand: () => number, n: number, fixed?: number): Record<string, unknown> {
  const turns = Array.from({ length: n }, () => {
    const score = fixed ?? 3 + Math.floor(rand() * 8);
    return { check: 'keeps to what the user said', flags: score < 5 ? ['forgotten_constraint'] : [], score };
  });
  return {
    facts: ['turn 1: the user has a small budget'],
    turns,
    // One above the lowest turn, within the schema's 1-10: all 10s made 11, a reply the judge's schema
    // refuses, and a retry no test had asked for.
    score: Math.min(10, Math.min(...turns.map((t) => t.score)) + 1),
    reason: 'mostly consistent with the facts the user gave',
  };
}

/** A subtopic unlike every other the server wrote: its own counter and index, words drawn apart. */
function subtopic(rand: () => number, call: number, i: number): string {
  const { people, needs, places } = TOPIC_WORDS;
  return `${pick(rand, people)} ${pick(rand, needs)} ${pick(rand, places)}, case ${call}x${i}`;
}

const TOPIC_WORDS = {
  people: [
    'a nurse',
    'a student',
    'a retiree',
    'a new parent',
    'a shop owner',
    'a farmer',
    'a coder',
    'a pilot',
  ],
  needs: ['weighing options for', 'stuck with', 'short of money for', 'in a hurry about', 'unsure about'],
  places: [
    'in a small town',
    'abroad',
    'at night',
    'before a deadline',
    'with a broken phone',
    'on a budget',
  ],
};

type Stage = 'skeleton' | 'responses' | 'judge' | 'topics' | 'other';

interface ChatBody {
  model?: string;
  temperature?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  messages?: { role: string; content: unknown }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  response_format?: {
    type: string;
    json_schema?: {
      name?: string;
      schema?: { properties?: Record<string, { minItems?: number; maxItems?: number }> };
    };
  };
}

function detect(body: ChatBody): { stage: Stage; n: number } {
  const schema = body.response_format?.json_schema;
  if (schema?.name === 'dialogue_skeleton')
    return { stage: 'skeleton', n: schema.schema?.properties?.queries?.minItems ?? 1 };
  if (schema?.name === 'dialogue_responses')
    return { stage: 'responses', n: schema.schema?.properties?.responses?.minItems ?? 1 };
  if (schema?.name === 'dialogue_judgment')
    return { stage: 'judge', n: schema.schema?.properties?.turns?.minItems ?? 1 };
  if (schema?.name === 'topic_expansion')
    return { stage: 'topics', n: schema.schema?.properties?.subtopics?.maxItems ?? 1 };
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const text = typeof last?.content === 'string' ? last.content : '';
  const sk = /Number of user queries: (\d+)/.exec(text);
  if (sk) return { stage: 'skeleton', n: Number(sk[1]) };
  const rs = /Number of responses: (\d+)/.exec(text);
  if (rs) return { stage: 'responses', n: Number(rs[1]) };
  const js = /Number of assistant turns: (\d+)/.exec(text);
  if (js) return { stage: 'judge', n: Number(js[1]) };
  const tp = /Number of subtopics: (\d+)/.exec(text);
  if (tp) return { stage: 'topics', n: Number(tp[1]) };
  return { stage: 'other', n: 0 };
}

const tokens = (text: string) => Math.ceil(text.length / 4);

function errorBody(message: string, type: string, code: string | null, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

export async function startLlmServer(options: LlmServerSettings = {}): Promise<LlmServer> {
  let config: LlmServerOptions = { ...DEFAULTS, ...options, batch: { ...BATCH_DEFAULTS, ...options.batch } };
  let rand = prng(config.seed);
  // Held requests wake on release, or every 250 ms to notice a client that gave up.
  let waiters: (() => void)[] = [];
  const released = () =>
    new Promise<void>((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 250);
    });
  const release = () => {
    for (const wake of waiters) wake();
    waiters = [];
  };
  let counter = 0;
  const sockets = new Set<Socket>();
  const windowLog: number[] = [];
  const freshStats = (): LlmServerStats => ({
    openConnections: 0,
    requests: 0,
    completed: 0,
    byStatus: {},
    faults: {},
    inFlight: 0,
    maxInFlight: 0,
    promptTokens: 0,
    completionTokens: 0,
    stages: { skeleton: 0, responses: 0, judge: 0, topics: 0, other: 0 },
    rateLimited: 0,
    aborted: 0,
    busyMs: 0,
    busyBySecond: [],
    busyByFault: {},
    batch: { ...freshBatchStats(), chat: freshCounters() },
  });
  let stats = freshStats();
  let received: ReceivedRequest[] = [];

  const countStatus = (status: number) => count(stats, status);
  const sendJson = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ) => {
    countStatus(status);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const latency = () => {
    const { meanMs, jitter = 0 } = config.latency;
    if (meanMs <= 0) return 0;
    if (jitter <= 0) return meanMs;
    // Log-normal with the requested mean: mu = ln(mean) - sigma^2 / 2.
    const u1 = Math.max(rand(), 1e-12);
    const u2 = rand();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return Math.exp(Math.log(meanMs) - (jitter * jitter) / 2 + jitter * z);
  };

  /** Sliding-window limiter: returns ms until a slot frees, or 0 when the request may pass. */
  const rateLimitWait = (): number => {
    const limit = config.rateLimit;
    if (!limit) return 0;
    const windowMs = limit.windowMs ?? 60_000;
    const now = Date.now();
    while (windowLog.length > 0 && windowLog[0]! <= now - windowMs) windowLog.shift();
    if (windowLog.length < Math.max(1, Math.round((limit.requestsPerMinute * windowMs) / 60_000))) {
      windowLog.push(now);
      return 0;
    }
    return windowLog[0]! + windowMs - now;
  };

  function content(stage: Stage, n: number, fault: Fault | undefined, prompt = ''): string {
    const r = prng(config.seed * 7919 + ++counter);
    let value: Record<string, unknown>;
    const count = fault === 'wrongCount' ? (n > 1 ? n - 1 : n + 1) : n;
    if (stage === 'skeleton') {
      const shift = Math.floor(r() * WORDS.objects.length);
      value = {
        category: pick(r, ['Travel Planning', 'Home Repair', 'Budget Help', 'Study Skills', 'Career Advice']),
        queries: Array.from({ length: count }, (_, i) => query(r, i, shift)),
      };
    } else if (stage === 'responses') {
      value = { responses: Array.from({ length: count }, (_, i) => response(r, i, config.responseWords)) };
    } else if (stage === 'judge') {
      value = judgment(r, count, config.judgeScore?.(prompt));
    } else if (stage === 'topics') {
      value = { subtopics: Array.from({ length: count }, (_, i) => subtopic(r, counter, i)) };
    } else {
      return 'Hello from the test server.';
    }
    const firstStep = /^\s*1\. (.+)$/m.exec(prompt)?.[1];
    if (fault === 'echoStep' && stage === 'skeleton' && firstStep)
      value.queries = [firstStep, ...(value.queries as string[]).slice(1)];
    if (fault === 'controlChars' && (stage === 'skeleton' || stage === 'responses')) {
      const key = stage === 'skeleton' ? 'queries' : 'responses';
      const items = value[key] as string[];
      value[key] = items.map((s, i) =>
        i === 0 ? `${s}\u0000\u0007\u001b[31m\u007f` + ' long'.repeat(4_000) : `\u0001${s}\u0008`,
      );
    }
    const json = JSON.stringify(value);
    switch (fault) {
      case 'malformedJson':
        return `${json.slice(0, -2)},, "oops": }`;
      case 'truncated':
        return json.slice(0, Math.floor(json.length / 2));
      case 'fenced':
        return '```json\n' + json + '\n```';
      case 'prose':
        return `Sure! Here is the JSON you asked for:\n${json}\nLet me know if you need anything else.`;
      default:
        return json;
    }
  }

  /**
   * Answers one chat request on `res` (a socket's, or a batch line's collector), counting it in `s`
   * (the real-time counters, or the batch lines').
   */
  async function chat(
    auth: string | undefined,
    res: Reply,
    raw: string,
    faulted: (fault: Fault) => void,
    s: ChatCounters = stats,
  ): Promise<void> {
    const send = (r: Reply, status: number, text: string, headers: Record<string, string> = {}) => {
      count(s, status);
      r.writeHead(status, { 'content-type': 'application/json', ...headers });
      r.end(text);
    };
    s.requests++;
    let body: ChatBody;
    try {
      body = JSON.parse(raw) as ChatBody;
    } catch {
      return send(
        res,
        400,
        errorBody('We could not parse the JSON body of your request.', 'invalid_request_error', null),
      );
    }
    if (config.apiKey && auth !== `Bearer ${config.apiKey}`) {
      return send(
        res,
        401,
        errorBody('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'),
      );
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return send(
        res,
        400,
        errorBody("Missing required parameter: 'messages'.", 'invalid_request_error', null, 'messages'),
      );
    }
    if (!body.model || !config.models.includes(body.model)) {
      return send(
        res,
        404,
        errorBody(
          `The model \`${body.model ?? ''}\` does not exist`,
          'invalid_request_error',
          'model_not_found',
          'model',
        ),
      );
    }
    const format = body.response_format?.type;
    if (
      (format === 'json_schema' && !config.supportJsonSchema) ||
      (format === 'json_object' && !config.supportJsonObject)
    ) {
      return send(
        res,
        400,
        errorBody(
          `response_format ${format} is not supported by this model`,
          'invalid_request_error',
          null,
          'response_format',
        ),
      );
    }
    const { stage, n } = detect(body);
    s.stages[stage]++;
    if (config.recordRequests > 0) {
      received.push({
        model: body.model,
        stage,
        temperature: body.temperature,
        maxTokens: body.max_tokens ?? body.max_completion_tokens,
        messages: body.messages.map((m) => ({
          role: m.role,
          content: typeof m.content === 'string' ? m.content : JSON.stringify(m.content),
        })),
      });
      if (received.length > config.recordRequests) received = received.slice(-config.recordRequests);
    }

    const wait = rateLimitWait();
    if (wait > 0) {
      s.rateLimited++;
      return send(res, 429, errorBody('Rate limit reached for requests', 'requests', 'rate_limit_exceeded'), {
        'retry-after': String(Math.ceil(wait / 1000)),
        'retry-after-ms': String(Math.ceil(wait)),
      });
    }
    const always = config.alwaysFail;
    if (always === 'auth')
      return send(
        res,
        401,
        errorBody('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'),
      );
    if (always === 'rateLimit') {
      return send(res, 429, errorBody('Rate limit reached', 'requests', 'rate_limit_exceeded'), {
        'retry-after': String(config.retryAfterSeconds),
      });
    }
    if (always === 'serverError')
      return send(
        res,
        500,
        errorBody('The server had an error while processing your request.', 'server_error', null),
      );

    let fault: Fault | undefined = always === 'malformedJson' ? 'malformedJson' : undefined;
    if (!fault) {
      for (const name of FAULTS) {
        const p = config.faults[name] ?? 0;
        if (p > 0 && rand() < p) {
          fault = name;
          break;
        }
      }
    }
    if (fault) {
      s.faults[fault] = (s.faults[fault] ?? 0) + 1;
      faulted(fault);
    }
    if (fault === 'rateLimit') {
      return send(res, 429, errorBody('Rate limit reached', 'requests', 'rate_limit_exceeded'), {
        'retry-after': String(config.retryAfterSeconds),
        'retry-after-ms': String(config.retryAfterSeconds * 1000),
      });
    }
    if (fault === 'serverError') {
      const status = pick(rand, [500, 502, 503]);
      return send(res, status, errorBody(`upstream error ${status}`, 'server_error', null));
    }
    if (fault === 'hang') return; // never answer; close() destroys the socket
    if (fault === 'contentPolicy')
      return send(
        res,
        400,
        errorBody(
          'Your request was rejected as a result of our safety system.',
          'invalid_request_error',
          'content_policy_violation',
        ),
      );
    if (fault === 'contextLength')
      return send(
        res,
        400,
        errorBody(
          "This model's maximum context length is 4096 tokens; your messages resulted in 5210 tokens.",
          'invalid_request_error',
          'context_length_exceeded',
          'messages',
        ),
      );
    if (fault === 'payloadTooLarge')
      return send(res, 413, errorBody('Request entity too large', 'invalid_request_error', null));

    const prompt = body.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
    const text = content(stage, n, fault, prompt);
    const finishReason = fault === 'truncated' ? 'length' : 'stop';
    const promptTokens = body.messages.reduce(
      (s, m) => s + (typeof m.content === 'string' ? tokens(m.content) : 0),
      0,
    );
    const completionTokens = tokens(text);
    const id = `chatcmpl-${Date.now().toString(36)}${counter}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };

    while (config.hold && !res.destroyed) await released();
    await sleep(latency());
    if (res.destroyed) return;
    const pace = config.latency.tokensPerSecond;

    if (!body.stream) {
      if (pace) await sleep((completionTokens / pace) * 1000);
      if (fault === 'streamCut' || fault === 'streamError') {
        res.socket?.destroy();
        return;
      }
      send(
        res,
        200,
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: text, refusal: null },
              finish_reason: finishReason,
              logprobs: null,
            },
          ],
          usage,
        }),
      );
      s.completed++;
      s.promptTokens += promptTokens;
      s.completionTokens += completionTokens;
      return;
    }

    count(s, 200);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    const prefill = config.latency.prefillTokensPerSecond;
    if (prefill) await sleep((promptTokens / prefill) * 1000);
    const step = 4 * config.tokensPerChunk;
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += step) pieces.push(text.slice(i, i + step));
    const cutAt =
      fault === 'streamCut' || fault === 'streamError' || fault === 'stall'
        ? Math.floor(pieces.length / 2)
        : -1;
    const paceStart = Date.now();
    for (let i = 0; i < pieces.length; i++) {
      if (i === cutAt && fault === 'streamError') {
        res.end(`data: ${errorBody('the model server failed while generating', 'server_error', null)}\n\n`);
        return;
      }
      if (i === cutAt && fault === 'stall') return; // never ends; close() destroys the socket
      if (i === cutAt) {
        res.socket?.destroy();
        return;
      }
      if (res.destroyed) return;
      res.write(chunk({ content: pieces[i] }, null));
      // Paced from the stream's start, not per event: a server slowed by load (timers firing late)
      // catches up at once, as a GPU that kept generating would, so a call's length does not hang on
      // this process's CPU.
      if (pace) {
        const wait = paceStart + ((i + 1) * config.tokensPerChunk * 1000) / pace - Date.now();
        if (wait > 0) await sleep(wait);
      }
    }
    res.write(chunk({}, finishReason));
    if (body.stream_options?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
    s.completed++;
    s.promptTokens += promptTokens;
    s.completionTokens += completionTokens;
  }

  const batches = createBatchApi({
    faults: () => config.batch,
    stats: () => stats.batch,
    rand: () => rand(),
    models: () => config.models,
    answer: async (body) => {
      const reply = collector();
      // A hung or cut answer never ends: the line fails once the collector gives up on it.
      await Promise.race([
        chat(`Bearer ${config.apiKey ?? ''}`, reply, JSON.stringify(body), () => undefined, stats.batch.chat),
        sleep(5_000),
      ]);
      return reply.answer();
    },
  });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const bytes = Buffer.concat(chunks);
      const raw = bytes.toString('utf8');
      const url = (req.url ?? '/').split('?')[0];
      const route = `${req.method} ${url}`;
      if (route === 'GET /v1/models') {
        if (config.apiKey && req.headers.authorization !== `Bearer ${config.apiKey}`) {
          return sendJson(
            res,
            401,
            errorBody('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'),
          );
        }
        return sendJson(
          res,
          200,
          JSON.stringify({
            object: 'list',
            data: config.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'test' })),
          }),
        );
      }
      if (route === 'GET /admin/stats') return sendJson(res, 200, JSON.stringify(stats));
      if (route === 'POST /admin/reset') {
        stats = freshStats();
        return sendJson(res, 200, '{}');
      }
      if (route === 'POST /admin/config') {
        try {
          api.configure(JSON.parse(raw) as LlmServerSettings);
          return sendJson(res, 200, '{}');
        } catch (error) {
          return sendJson(res, 400, errorBody(String(error), 'invalid_request_error', null));
        }
      }
      if (/^(POST|GET) \/v1\/(files|batches)/.test(route)) {
        if (config.apiKey && req.headers.authorization !== `Bearer ${config.apiKey}`)
          return sendJson(
            res,
            401,
            errorBody('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key'),
          );
        void batches
          .route(req.method ?? '', req.url ?? '/', req.headers['content-type'], bytes)
          .then((reply) =>
            reply
              ? sendJson(
                  res,
                  reply.status,
                  reply.body,
                  reply.contentType ? { 'content-type': reply.contentType } : {},
                )
              : sendJson(
                  res,
                  404,
                  errorBody(`Unknown request URL: ${route}`, 'invalid_request_error', 'unknown_url'),
                ),
          );
        return;
      }
      if (route === 'POST /v1/chat/completions') {
        stats.inFlight++;
        stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
        const arrived = Date.now();
        stats.firstAt ??= arrived;
        let done = false;
        let fault: Fault | undefined;
        const finish = () => {
          if (!done) {
            done = true;
            const closed = Date.now();
            stats.busyMs += closed - arrived;
            if (fault) stats.busyByFault[fault] = (stats.busyByFault[fault] ?? 0) + closed - arrived;
            // Spread this call's time over the seconds it spanned.
            const origin = stats.firstAt ?? arrived;
            for (let t = Math.max(arrived, origin); t < closed;) {
              const second = Math.floor((t - origin) / 1000);
              const end = Math.min(closed, origin + (second + 1) * 1000);
              stats.busyBySecond[second] = (stats.busyBySecond[second] ?? 0) + end - t;
              t = end;
            }
            stats.lastAt = closed;
            stats.inFlight--;
            if (!res.writableEnded) stats.aborted++;
          }
        };
        res.on('close', finish);
        chat(req.headers.authorization, res, raw, (f) => (fault = f)).catch(() => res.destroy());
        return;
      }
      sendJson(res, 404, errorBody(`Unknown request URL: ${route}`, 'invalid_request_error', 'unknown_url'));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(config.port, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const api: LlmServer = {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    stats: () => ({ ...structuredClone(stats), openConnections: sockets.size }),
    received: () => structuredClone(received),
    resetStats: () => {
      stats = { ...freshStats(), inFlight: stats.inFlight };
    },
    configure: (partial) => {
      const seedChanged = partial.seed !== undefined && partial.seed !== config.seed;
      config = { ...config, ...partial, batch: { ...config.batch, ...partial.batch } };
      if (seedChanged) rand = prng(config.seed);
      if (!config.hold) release();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return api;
}
