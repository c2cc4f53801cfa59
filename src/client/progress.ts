/** Live progress in the terminal: one bar per intent on a TTY, a line every few seconds otherwise. */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { RunProgress, RunSummary } from '../shared/schemas';

const formatTokens = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);

export interface ProgressView {
  update(progress: RunProgress): void;
  stop(): void;
}

/** What the view shows besides the counts: measured by this process since it began following the run. */
export interface ProgressStats {
  elapsedMs: number;
  done: number;
  planned: number;
  inFlight: number;
  /** Dialogues finished (written or failed) per minute since this process began following. */
  perMinute: number;
  /** Undefined until something finished. */
  etaMs?: number;
  /** Estimated cost so far, when the run reports one. */
  cost?: string;
}

/** Elapsed time, rate and ETA of a run; `baseline` is what was already done when following began. */
export function progressStats(
  p: RunProgress,
  startedAt: number,
  baseline: number,
  now = Date.now(),
): ProgressStats {
  const done = p.intents.reduce((s, i) => s + i.written + i.failed, 0);
  const planned = p.intents.reduce((s, i) => s + i.planned, 0);
  const elapsedMs = Math.max(0, now - startedAt);
  const finishedHere = Math.max(0, done - baseline);
  const perMinute = elapsedMs > 0 ? (finishedHere * 60_000) / elapsedMs : 0;
  const etaMs = perMinute > 0 ? ((planned - done) / perMinute) * 60_000 : undefined;
  return {
    elapsedMs,
    done,
    planned,
    inFlight: p.intents.reduce((s, i) => s + i.inFlight, 0),
    perMinute,
    etaMs,
    cost: formatCost(p),
  };
}

/** The run's estimated cost, once the run's progress carries one (the price table's figure). */
function formatCost(p: RunProgress): string | undefined {
  const cost = (p as RunProgress & { estimatedCostUsd?: number }).estimatedCostUsd;
  return typeof cost === 'number' ? `$${cost.toFixed(cost < 10 ? 3 : 2)}` : undefined;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(sec).padStart(2, '0')}s`
      : `${sec}s`;
}

/** `elapsed 1m05s · 12.0/min · ETA 3m10s · 8 in flight · ~$0.012` */
export function formatStats(stats: ProgressStats): string {
  return [
    `elapsed ${formatDuration(stats.elapsedMs)}`,
    `${stats.perMinute.toFixed(stats.perMinute < 10 ? 1 : 0)}/min`,
    `ETA ${stats.etaMs === undefined ? '?' : formatDuration(stats.etaMs)}`,
    `${stats.inFlight} in flight`,
    ...(stats.cost ? [`~${stats.cost}`] : []),
  ].join(' · ');
}

/** Polling cadence: a terminal redraws every second; a log file gets a line every few seconds. */
export function progressIntervalMs(stream: NodeJS.WriteStream = process.stderr): number {
  return stream.isTTY ? 1_000 : 5_000;
}

export function createProgressView(stream: NodeJS.WriteStream = process.stderr): ProgressView {
  let startedAt: number | undefined;
  let baseline: number | undefined;
  const statsOf = (p: RunProgress) => {
    startedAt ??= Date.now();
    baseline ??= p.intents.reduce((s, i) => s + i.written + i.failed, 0);
    return progressStats(p, startedAt, baseline);
  };
  if (!stream.isTTY) {
    let last = 0;
    return {
      update(p) {
        const stats = statsOf(p);
        if (Date.now() - last < 5_000) return;
        last = Date.now();
        const written = p.intents.reduce((s, i) => s + i.written, 0);
        const failed = p.intents.reduce((s, i) => s + i.failed, 0);
        const tokens = p.intents.reduce((s, i) => s + i.tokens.prompt + i.tokens.completion, 0);
        stream.write(
          `${p.runId}: ${written}/${stats.planned} written, ${failed} failed, ${formatTokens(tokens)} tokens, ${formatStats(stats)}${p.paused ? ' (paused)' : ''}\n`,
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
  let total: SingleBar | undefined;
  return {
    update(p) {
      const stats = statsOf(p);
      const line = { stats: formatStats(stats), paused: p.paused ? ' (paused)' : '' };
      total ??= multibar.create(stats.planned, 0, line, {
        format: ' {value}/{total} dialogues · {stats}{paused}',
      });
      total.setTotal(stats.planned);
      total.update(stats.done, line);
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
