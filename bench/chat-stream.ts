/**
 * CPU of reading a streamed completion: the openai client's own stream reader against the package's
 * (`src/activities/chat-stream.ts`), on the test LLM server, at one token per event (what vLLM, llama.cpp
 * and OpenAI send) and at eight (what the other benchmarks' server sends). The server runs in this
 * process, so both columns include its CPU; the difference is the reader's.
 *
 *   npm run bench:stream
 */
import OpenAI from 'openai';
import { readChatStream } from '../src/activities/chat-stream';
import { nodeFetch } from '../src/activities/node-fetch';
import { planDialogue } from '../src/method/plan';
import { responsesMessages, skeletonMessages } from '../src/method/prompts';
import { startLlmServer } from '../test/llm-server/server';

const CALLS = 400;
const CONCURRENCY = 16;

const plan = planDialogue({ runId: 'bench', seed: 'bench', intent: 'transaction', index: 1 });
const queries = Array.from({ length: 6 }, (_, i) => `How do I handle step ${i + 1} of this?`);
/** Half skeletons, half responses, as in a run. */
const requests = [
  skeletonMessages(plan, 6),
  responsesMessages(plan, { category: 'Travel Planning', queries }),
];

async function main(): Promise<void> {
  const rows: Record<string, string | number>[] = [];
  for (const tokensPerChunk of [1, 8]) {
    const server = await startLlmServer({ tokensPerChunk });
    const openai = new OpenAI({ apiKey: 'unused', baseURL: server.url, maxRetries: 0 });
    const overNode = new OpenAI({ apiKey: 'unused', baseURL: server.url, maxRetries: 0, fetch: nodeFetch });
    const request = (i: number) => ({
      model: 'test-model',
      messages: requests[i % 2]!,
      max_tokens: 2_000,
      stream: true as const,
      stream_options: { include_usage: true },
    });
    const readers = {
      'openai client': async (i: number) => {
        let content = '';
        for await (const chunk of await openai.chat.completions.create(request(i)))
          content += chunk.choices[0]?.delta?.content ?? '';
        return content.length;
      },
      'chat-stream.ts': async (i: number) => {
        const response = await openai.chat.completions.create(request(i)).asResponse();
        return (await readChatStream(response, () => undefined)).content.length;
      },
      'chat-stream.ts, node:http': async (i: number) => {
        const response = await overNode.chat.completions.create(request(i)).asResponse();
        return (await readChatStream(response, () => undefined)).content.length;
      },
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
    // Interleaved, three rounds each after a warm-up round; medians.
    for (let round = 0; round < 4; round++) {
      for (const [name, read] of Object.entries(readers)) {
        const { ms, chars: c } = await measure(read);
        if (round > 0) results[name]!.push(ms);
        chars = c;
      }
    }
    await server.close();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const sdk = median(results['openai client']!);
    const own = median(results['chat-stream.ts']!);
    const node = median(results['chat-stream.ts, node:http']!);
    rows.push({
      'tokens per event': tokensPerChunk,
      'reply chars': Math.round(chars),
      'openai client ms/call': sdk.toFixed(2),
      'chat-stream.ts ms/call': own.toFixed(2),
      saved: (sdk - own).toFixed(2),
      'chat-stream.ts over node:http ms/call': node.toFixed(2),
    });
  }
  console.table(rows);
}

void main();
