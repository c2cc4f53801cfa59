/**
 * CPU of reading replies streamed as real servers send them: the test LLM server in its own process,
 * one token per SSE event at 400 tokens/s (so one network chunk per event), ~440-token replies, 64
 * calls at a time. Readers: the openai client's own, `chat-stream.ts` over the global fetch, and
 * `chat-stream.ts` over `node-fetch.ts`; interleaved rounds, medians of this process's CPU per call.
 *
 *   node --import tsx bench/stream-transport.ts [--rounds 3] [--calls 640] [--tokens-per-event 1]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { readChatStream } from '../src/activities/chat-stream';
import { nodeFetch } from '../src/activities/node-fetch';
import { planDialogue } from '../src/method/plan';
import { responsesMessages, skeletonMessages } from '../src/method/prompts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    calls: { type: 'string', default: '640' },
    'tokens-per-event': { type: 'string', default: '1' },
  },
});
const CALLS = Number(values.calls);
const CONCURRENCY = 64;

const plan = planDialogue({ runId: 'bench', seed: 'bench', intent: 'transaction', index: 1 });
const queries = Array.from({ length: 6 }, (_, i) => `How do I handle step ${i + 1} of this?`);
const requests = [
  { messages: skeletonMessages(plan, 6), name: 'dialogue_skeleton' },
  { messages: responsesMessages(plan, { category: 'Travel Planning', queries }), name: 'dialogue_responses' },
];

async function main(): Promise<void> {
  const config = {
    latency: { meanMs: 200, jitter: 0.25, tokensPerSecond: 400 },
    tokensPerChunk: Number(values['tokens-per-event']),
    responseWords: { min: 65, max: 115 },
  };
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/llm-server/cli.ts', '--config', JSON.stringify(config)],
    { cwd: resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const { url } = JSON.parse(line.toString()) as { url: string };
  const global = new OpenAI({ apiKey: 'unused', baseURL: url, maxRetries: 0 });
  const overNode = new OpenAI({ apiKey: 'unused', baseURL: url, maxRetries: 0, fetch: nodeFetch });
  const request = (i: number) => {
    const { messages, name } = requests[i % 2]!;
    return {
      model: 'test-model',
      messages,
      max_tokens: 3_000,
      stream: true as const,
      stream_options: { include_usage: true },
      // The server sizes its reply by the schema's item count.
      response_format: {
        type: 'json_schema' as const,
        json_schema: {
          name,
          schema: { properties: { queries: { minItems: 6 }, responses: { minItems: 6 } } },
        },
      },
    };
  };
  const readers: Record<string, (i: number) => Promise<number>> = {
    'openai client': async (i) => {
      let content = '';
      for await (const chunk of await global.chat.completions.create(request(i)))
        content += chunk.choices[0]?.delta?.content ?? '';
      return content.length;
    },
    'chat-stream.ts, global fetch': async (i) =>
      (await readChatStream(await global.chat.completions.create(request(i)).asResponse(), () => undefined))
        .content.length,
    'chat-stream.ts, node-fetch.ts': async (i) =>
      (await readChatStream(await overNode.chat.completions.create(request(i)).asResponse(), () => undefined))
        .content.length,
  };
  const measure = async (read: (i: number) => Promise<number>) => {
    let started = 0;
    let chars = 0;
    const before = process.cpuUsage();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (started < CALLS) {
          const n = await read(started++);
          chars += n;
        }
      }),
    );
    const cpu = process.cpuUsage(before);
    return { ms: (cpu.user + cpu.system) / 1000 / CALLS, chars: chars / CALLS };
  };
  const results: Record<string, number[]> = Object.fromEntries(Object.keys(readers).map((k) => [k, []]));
  let chars = 0;
  for (let round = 0; round <= Number(values.rounds); round++) {
    for (const [name, read] of Object.entries(readers)) {
      const m = await measure(read);
      if (round > 0) results[name]!.push(m.ms);
      chars = m.chars;
    }
  }
  child.kill('SIGTERM');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
  console.log(`reply chars ${Math.round(chars)}, ${config.tokensPerChunk} token(s)/event`);
  console.table(
    Object.entries(results).map(([reader, xs]) => ({
      reader,
      'CPU ms/call (median)': median(xs).toFixed(2),
      rounds: xs.map((x) => x.toFixed(2)).join(' '),
    })),
  );
}

void main();
