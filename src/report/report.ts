/**
 * `consistent-chat report DIR`: gathers the run's figures, writes `DIR/report.html` (atomically, as
 * `report.html.partial` renamed) and returns the same figures as a short terminal table.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DedupOptions } from '../export/dedup';
import { packageVersion } from '../export/records';
import { renderReportPage } from './page';
import { METRIC_NAMES } from '../method/metrics';
import { collectStats, PAPER_MEANS, type ReportStats } from './stats';

export const REPORT_FILE = 'report.html';

export async function writeReport(
  dir: string,
  dedup: Partial<DedupOptions> = {},
): Promise<{ path: string; stats: ReportStats }> {
  const root = resolve(dir);
  const stats = await collectStats(root, dedup);
  const page = await renderReportPage(stats, await packageVersion());
  const path = join(root, REPORT_FILE);
  await rm(`${path}.partial`, { force: true });
  await writeFile(`${path}.partial`, page, { flag: 'wx' });
  await rename(`${path}.partial`, path);
  return { path, stats };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** The report's figures as plain lines for the terminal. */
export function formatReportTable(stats: ReportStats): string {
  const lines: string[] = [];
  lines.push(
    `dialogues ${stats.dialogues}, failed ${stats.failures.total}, model ${stats.model.join(', ') || '-'}`,
  );
  lines.push(
    '',
    'intent / information flow                                                        dialogues',
  );
  for (const [intent, flow, n] of [...stats.intentFlow].sort(
    (a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]),
  ))
    lines.push(`  ${pad(`${intent} / ${flow}`, 80)} ${n}`);
  lines.push('', 'intent                            topics used / in list');
  for (const t of [...stats.topics].sort((a, b) => a.intent.localeCompare(b.intent)))
    lines.push(`  ${pad(t.intent, 33)} ${t.used} / ${t.available ?? '-'}`);
  lines.push(
    '',
    `turns per dialogue: ${stats.turns.map(([t, n]) => `${t}×${n}`).join(', ') || '-'}`,
    `words per query: mean ${stats.queryWords.mean.toFixed(1)} over ${stats.queryWords.total} (paper ${PAPER_MEANS.queryWords.low}-${PAPER_MEANS.queryWords.high})`,
    `words per response: mean ${stats.responseWords.mean.toFixed(1)} over ${stats.responseWords.total} (paper ${PAPER_MEANS.responseWords.low}-${PAPER_MEANS.responseWords.high})`,
  );
  const m = stats.metrics;
  const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(3));
  lines.push(
    `dialogues with a mean inside the paper's band: queries ${m.inBand.query} of ${m.dialogues}, responses ${m.inBand.response} of ${m.dialogues}`,
    '',
    `dialogue metrics (mean; p10 / median / p90; ${m.stored} of ${m.dialogues} stored with the record, the rest computed now)`,
    ...METRIC_NAMES.map((name) => {
      const d = m.metrics[name];
      const nulls = d.nulls ? `  (${d.nulls} without a value)` : '';
      return `  ${pad(name, 22)} ${pad(num(d.mean), 7)} ${num(d.p10)} / ${num(d.p50)} / ${num(d.p90)}${nulls}`;
    }),
    '',
  );
  const t = stats.tokens;
  if (t) {
    const stages = t.stages
      ? `; ${Object.entries(t.stages)
          .map(([s, v]) => `${s} ${v.prompt}+${v.completion}`)
          .join(', ')}`
      : '';
    lines.push(
      `tokens: prompt ${t.tokens.prompt}, completion ${t.tokens.completion}${stages}${t.cost ? `; estimated cost ${t.cost.total.toFixed(4)} ${t.cost.currency}` : ''}`,
    );
  } else lines.push('tokens: not recorded (no summary.json)');
  lines.push(
    `failures: ${stats.failures.byTypeStage.map(([type, stage, n]) => `${type} at ${stage} ×${n}`).join(', ') || 'none'}`,
    `duplicates (near = Jaccard >= ${stats.duplicates.threshold}): dialogues ${stats.duplicates.dialogues.exact} exact, ${stats.duplicates.dialogues.near} near; queries ${stats.duplicates.queries.exact} exact, ${stats.duplicates.queries.near} near${stats.duplicates.indexCap ? ` (checked against the first ${stats.duplicates.indexCap} distinct texts)` : ''}`,
  );
  return lines.join('\n');
}
