/** Live progress in the terminal: one bar per intent on a TTY, a line every few seconds otherwise. */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { costOf, formatCost, paidTokens } from '../shared/pricing';
import type { RunProgress, RunSummary } from '../shared/schemas';

const formatTokens = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);

export interface ProgressView {
  update(progress: RunProgress): void;
  stop(): void;
}

export function createProgressView(stream: NodeJS.WriteStream = process.stderr): ProgressView {
  if (!stream.isTTY) {
    let last = 0;
    return {
      update(p) {
        if (Date.now() - last < 5_000) return;
        last = Date.now();
        const written = p.intents.reduce((s, i) => s + i.written, 0);
        const failed = p.intents.reduce((s, i) => s + i.failed, 0);
        const planned = p.intents.reduce((s, i) => s + i.planned, 0);
        const tokens = p.intents.reduce((s, i) => s + i.tokens.prompt + i.tokens.completion, 0);
        stream.write(
          `${p.runId}: ${written}/${planned} written, ${failed} failed, ${formatTokens(tokens)} tokens, ${formatCost(progressCost(p))}${p.paused ? ' (paused)' : ''}\n`,
        );
      },
      stop() {},
    };
  }
  const multibar = new MultiBar(
    {
      stream,
      format: ' {intent} |{bar}| {value}/{total} failed {failed} · tokens {tokens}{paused}',
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  return {
    update(p) {
      for (const i of p.intents) {
        const payload = {
          intent: i.intent.padEnd(21),
          failed: i.failed,
          tokens: formatTokens(i.tokens.prompt + i.tokens.completion),
          paused: i.paused ? ' (paused)' : '',
        };
        const bar = bars.get(i.intent) ?? multibar.create(i.planned, 0, payload);
        bars.set(i.intent, bar);
        bar.update(i.written + i.failed, payload);
      }
    },
    stop() {
      multibar.stop();
    },
  };
}

/** The estimated cost of what a live run has used so far, failed attempts included. */
export function progressCost(progress: RunProgress): number | undefined {
  return costOf(progress.price, paidTokens(progress.intents));
}

/** `failed attempts: 3 calls (skeleton 2, responses 1), tokens 1.2k+300`, or nothing when there were none. */
export function formatFailedAttempts(f: RunSummary['failedAttempts']): string | undefined {
  if (!f || f.skeleton.calls + f.responses.calls === 0) return undefined;
  const prompt = f.skeleton.prompt + f.responses.prompt;
  const completion = f.skeleton.completion + f.responses.completion;
  return `failed attempts (paid): ${f.skeleton.calls + f.responses.calls} calls (skeleton ${f.skeleton.calls}, responses ${f.responses.calls}), tokens ${formatTokens(prompt)}+${formatTokens(completion)}`;
}

export function formatSummary(summary: RunSummary): string {
  const duplicates = summary.duplicates ? `, ${summary.duplicates} already stored before` : '';
  const failedAttempts = formatFailedAttempts(summary.failedAttempts);
  const lines = [
    `run ${summary.runId}: ${summary.written}/${summary.requested} dialogues written, ${summary.failed} failed${duplicates}`,
    `model ${summary.model} · ${summary.llmCalls} LLM calls · tokens ${formatTokens(summary.tokens.prompt)} prompt + ${formatTokens(summary.tokens.completion)} completion · ${formatCost(summary.estimatedCostUsd)}`,
    ...(failedAttempts ? [failedAttempts] : []),
    `output: ${summary.outDir}`,
  ];
  for (const i of summary.intents) {
    lines.push(
      `  ${i.intent.padEnd(22)} ${String(i.written).padStart(7)} written ${String(i.failed).padStart(6)} failed`,
    );
  }
  if (summary.failed > 0) lines.push(`failures and their reasons: ${summary.outDir}/failures.jsonl`);
  return lines.join('\n');
}
