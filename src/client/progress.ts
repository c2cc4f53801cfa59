/** Live progress in the terminal: one bar per intent on a TTY, a line every few seconds otherwise. */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
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
          `${p.runId}: ${written}/${planned} written, ${failed} failed, ${formatTokens(tokens)} tokens${p.paused ? ' (paused)' : ''}\n`,
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

export function formatSummary(summary: RunSummary): string {
  const lines = [
    `run ${summary.runId}: ${summary.written}/${summary.requested} dialogues written, ${summary.failed} failed`,
    `model ${summary.model} · ${summary.llmCalls} LLM calls · tokens ${formatTokens(summary.tokens.prompt)} prompt + ${formatTokens(summary.tokens.completion)} completion`,
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

/** One line: how many replies the checks of method/replies.ts rejected, by kind (each was asked again). */
export function formatReplyChecks(counts: { checked: number; rejected: Record<string, number> }): string {
  const rejected = Object.values(counts.rejected).reduce((a, b) => a + b, 0);
  const kinds = Object.entries(counts.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  return `reply checks: ${rejected} of ${counts.checked} replies rejected and asked again${kinds ? ` (${kinds})` : ''}`;
}
