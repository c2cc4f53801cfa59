/**
 * Issue 22's run targets on the test server: a real 1,350-dialogue run (150 per built-in intent) sends
 * no prompt twice, and topic expansion's share of the run's calls and tokens. Two runs, each through
 * `generate` with a real dev server and worker: the default settings (150 dialogues per intent need
 * no more than the 40 seed topics, so no expansion call), then one that asks for one leaf per two
 * dialogues so every intent expands. Writes JSON under bench/results/.
 *
 *   node --import tsx bench/prompt-repeats.ts [dialoguesPerIntent]     (default 150)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from '../src/client/generate';
import type { RunSummary } from '../src/run/schemas';
import { startLlmServer, type LlmServer, type ReceivedRequest } from '../test/llm-server/server';
import { devServer, tempDir } from '../test/helpers/temporal';

const perIntent = Number(process.argv[2] ?? 150);

async function measure(llm: LlmServer, address: string, name: string, expand?: { dialoguesPerLeaf: number }) {
  llm.resetStats();
  // The server keeps requests across runs: this run's are those after `before`.
  const before = llm.received().length;
  const started = Date.now();
  const { summary } = await generate({
    run: {
      outDir: await tempDir('cc-bench-repeats-'),
      runId: `bench-repeats-${name}-${process.pid}`,
      model: 'test-model',
      numDialogsPerIntent: perIntent,
      numTurnsPerDialog: 2,
      concurrency: 64,
      ...(expand && { expand }),
    },
    temporal: { address, taskQueue: `bench-repeats-${name}-${process.pid}` },
    llm: { baseURL: llm.url },
    env: { ...process.env, OPENAI_API_KEY: 'sk-bench-repeats', OPENAI_BASE_URL: undefined },
  });
  return report(name, llm.received().slice(before), summary, Date.now() - started);
}

function report(name: string, received: ReceivedRequest[], summary: RunSummary, ms: number) {
  const byStage = (stage: string) => received.filter((r) => r.stage === stage);
  const distinct = (stage: string) => new Set(byStage(stage).map((r) => JSON.stringify(r.messages))).size;
  const tokens = (t: { prompt: number; completion: number } | undefined) => (t ? t.prompt + t.completion : 0);
  const total = summary.tokens.prompt + summary.tokens.completion;
  return {
    run: name,
    dialogues: summary.requested,
    written: summary.written,
    seconds: Math.round(ms / 100) / 10,
    skeletonPrompts: byStage('skeleton').length,
    distinctSkeletonPrompts: distinct('skeleton'),
    responsesPrompts: byStage('responses').length,
    distinctResponsesPrompts: distinct('responses'),
    topicsCalls: byStage('topics').length,
    llmCalls: summary.llmCalls,
    topicsCallShare: Number((byStage('topics').length / summary.llmCalls).toFixed(4)),
    topicsTokenShare: Number((tokens(summary.stageTokens?.topics) / total).toFixed(4)),
    topics: summary.topics,
  };
}

async function main() {
  const temporal = await devServer();
  const llm = await startLlmServer({ latency: { meanMs: 0 }, recordRequests: 20 * perIntent * 9 });
  try {
    const results = [
      await measure(llm, temporal.address, 'default'),
      await measure(llm, temporal.address, 'expanded', { dialoguesPerLeaf: 2 }),
    ];
    for (const r of results) console.log(JSON.stringify(r));
    const file = join(
      __dirname,
      'results',
      `prompt-repeats-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
    );
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`written ${file}`);
  } finally {
    await llm.close();
    await temporal.dispose();
  }
}

void main();
