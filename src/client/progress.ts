/** Live progress in the terminal: one bar per intent on a TTY, a line every few seconds otherwise. */
import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { formatCost, liveCostUsd } from '../shared/pricing';
import { meanJudgeScore, mergeJudgeTallies } from '../method/judge';
import type { JudgeCalibration, RunProgress, RunSummary } from '../run/schemas';

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
  /**
   * Dialogues in an LLM stage, up to the run's concurrency: at most this many calls are at the endpoint.
   * Intents schedule a few calls beyond their share, which wait in the worker for a slot (`waiting`).
   */
  inFlight: number;
  /** Dialogues in an LLM stage beyond the run's concurrency: their calls wait in a worker for a slot. */
  waiting: number;
  /** Dialogues finished (written or failed) per minute since this process began following. */
  perMinute: number;
  /** Undefined until something finished. */
  etaMs?: number;
  /** Estimated cost so far, when the run reports one. */
  cost?: string;
  /** `judge 7.2 (40 scored)`, in runs with a judge once a verdict is in. */
  judge?: string;
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
  const active = p.intents.reduce((s, i) => s + i.inFlight, 0);
  return {
    elapsedMs,
    done,
    planned,
    inFlight: Math.min(active, p.concurrency),
    waiting: Math.max(0, active - p.concurrency),
    perMinute,
    etaMs,
    cost: estimatedCost(p),
    judge: judgeSoFar(p),
  };
}

/** The judge's mean score so far, over the intents' verdicts. */
function judgeSoFar(p: RunProgress): string | undefined {
  const tally = mergeJudgeTallies(p.intents.map((i) => i.judge));
  const mean = meanJudgeScore(tally);
  return mean === undefined ? undefined : `judge ${mean.toFixed(1)} (${tally.judged} scored)`;
}

/** The run's estimated cost so far from the price table, when its model has a price. */
function estimatedCost(p: RunProgress): string | undefined {
  const usd = progressCost(p);
  return usd === undefined ? undefined : formatCost(usd);
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

/** `elapsed 1m05s · 12.0/min · ETA 3m10s · 8 in flight, 6 waiting · ~$0.012` */
export function formatStats(stats: ProgressStats): string {
  return [
    `elapsed ${formatDuration(stats.elapsedMs)}`,
    `${stats.perMinute.toFixed(stats.perMinute < 10 ? 1 : 0)}/min`,
    `ETA ${stats.etaMs === undefined ? '?' : formatDuration(stats.etaMs)}`,
    `${stats.inFlight} in flight${stats.waiting > 0 ? `, ${stats.waiting} waiting` : ''}`,
    ...(stats.cost ? [stats.cost] : []),
    ...(stats.judge ? [stats.judge] : []),
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

/** The estimated cost of what a live run has used so far, failed attempts included. */
export function progressCost(progress: RunProgress): number | undefined {
  const judge = progress.judgeModel === undefined ? undefined : { price: progress.judgePrice };
  return liveCostUsd(progress.intents, progress.price, judge);
}

/** `failed attempts: 3 calls (skeleton 2, responses 1), tokens 1.2k+300`, or nothing when there were none. */
export function formatFailedAttempts(f: RunSummary['failedAttempts']): string | undefined {
  const judge = f?.judge ?? { calls: 0, prompt: 0, completion: 0 };
  if (!f || f.skeleton.calls + f.responses.calls + judge.calls === 0) return undefined;
  const prompt = f.skeleton.prompt + f.responses.prompt + judge.prompt;
  const completion = f.skeleton.completion + f.responses.completion + judge.completion;
  const judged = f.judge ? `, judge ${judge.calls}` : '';
  return `failed attempts (paid): ${f.skeleton.calls + f.responses.calls + judge.calls} calls (skeleton ${f.skeleton.calls}, responses ${f.responses.calls}${judged}), tokens ${formatTokens(prompt)}+${formatTokens(completion)}`;
}

/** `judge (gpt-4o): 96 scored, mean 7.4 · flags: contradiction 3 · 4 kept unjudged (calls failed)`. */
export function formatJudge(summary: RunSummary): string | undefined {
  const tally = summary.judge;
  if (!tally) return undefined;
  const mean = meanJudgeScore(tally);
  const flags = Object.entries(tally.flags)
    .sort((a, b) => b[1] - a[1])
    .map(([flag, n]) => `${flag} ${n}`)
    .join(', ');
  return [
    `judge (${summary.judgeModel ?? summary.model}): ${tally.judged} scored${mean === undefined ? '' : `, mean ${mean.toFixed(1)} of 10`}`,
    ...(flags ? [`flags: ${flags}`] : []),
    ...(tally.failed ? [`${tally.failed} kept unjudged (the judge's calls failed)`] : []),
  ].join(' · ');
}

/** What `judge DIR` has done so far, as its workflow's progress query gives it. */
export interface JudgeProgress {
  scanned: number;
  judged: number;
  failed: number;
  llmCalls: number;
}

/**
 * The live line of `judge DIR`, as generate's: a bar on a terminal, otherwise a line at most every 5 s.
 * `total`: the lines of dialogs.jsonl when the command started (the records it will read).
 */
export function createJudgeProgressView(
  total: number | undefined,
  stream: NodeJS.WriteStream = process.stderr,
): { update(p: JudgeProgress): void; stop(): void } {
  const of = total === undefined ? '' : `/${total}`;
  if (!stream.isTTY || total === undefined) {
    let last = 0;
    return {
      update(p) {
        if (Date.now() - last < 5_000) return;
        last = Date.now();
        stream.write(
          `judge: ${p.scanned}${of} records read, ${p.judged} scored, ${p.failed} failed, ${p.llmCalls} calls\n`,
        );
      },
      stop() {},
    };
  }
  const bar = new SingleBar(
    {
      stream,
      format: ' judge |{bar}| {value}/{total} records read · {judged} scored · {failed} failed',
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0, { judged: 0, failed: 0 });
  return {
    update: (p) => bar.update(Math.min(p.scanned, total), { judged: p.judged, failed: p.failed }),
    stop: () => bar.stop(),
  };
}

/** `judge calibration (gpt-4o): AUC 0.81, gap 2.4 points, 5 of 8 planted failures named (16 dialogues)`. */
export function formatCalibration(c: JudgeCalibration): string {
  const auc = c.auc === undefined ? 'n/a' : c.auc.toFixed(2);
  const gap = c.gap === undefined ? 'n/a' : `${c.gap.toFixed(1)} points`;
  const unscored = c.unscored ? `, ${c.unscored} unscored` : '';
  const near = c.nearChance ? ' · near chance: its scores say little' : '';
  return `judge calibration (${c.model}): AUC ${auc}, gap ${gap}, ${c.flagged} of ${c.planted} planted failures named (${c.dialogues} dialogues${unscored})${near}`;
}

/** The warning a run gives when its judge barely separates the calibration set. */
export function calibrationWarning(c: JudgeCalibration): string {
  return `the judge ${c.model} barely tells consistent dialogues from planted failures (calibration AUC ${c.auc?.toFixed(2) ?? 'n/a'}): its scores say little; consider another --judge-model`;
}

/** One line: what went through batches, at the batch price and at the real-time one. */
export function formatBatch(batch: NonNullable<RunSummary['batch']>): string {
  const realtime =
    batch.realtimeCostUsd === undefined ? '' : ` (real time: ${formatCost(batch.realtimeCostUsd)})`;
  return `batch: ${batch.calls} calls · tokens ${formatTokens(batch.tokens.prompt)} prompt + ${formatTokens(batch.tokens.completion)} completion · ${formatCost(batch.costUsd)} at the batch price${realtime}`;
}

export function formatSummary(summary: RunSummary): string {
  const duplicates = summary.duplicates ? `, ${summary.duplicates} already stored before` : '';
  const failedAttempts = formatFailedAttempts(summary.failedAttempts);
  const judge = formatJudge(summary);
  const lines = [
    `run ${summary.runId}: ${summary.written}/${summary.requested} dialogues written, ${summary.failed} failed${duplicates}`,
    `model ${summary.model} · ${summary.llmCalls} LLM calls · tokens ${formatTokens(summary.tokens.prompt)} prompt + ${formatTokens(summary.tokens.completion)} completion · ${formatCost(summary.estimatedCostUsd)}`,
    ...(failedAttempts ? [failedAttempts] : []),
    ...(judge ? [judge] : []),
    ...(summary.calibration ? [formatCalibration(summary.calibration)] : []),
    ...(summary.batch ? [formatBatch(summary.batch)] : []),
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
