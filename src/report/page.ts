/**
 * report.html: one self-contained page. Apache ECharts' minified build is inlined (no network), the
 * figures are embedded as JSON, and a small script draws one chart per figure. Each chart's element
 * carries `data-chart`; the page sets `window.reportCharts` to the ids it drew, for the browser check.
 */
import { readFile } from 'node:fs/promises';
import { METRIC_NAMES, type MetricName, type MetricsSummary } from '../method/metrics';
import type { ReportStats } from './stats';
import { PAPER_MEANS } from './stats';

/** The inlined library, from the installed `echarts` package. */
async function echartsSource(): Promise<string> {
  return readFile(require.resolve('echarts/dist/echarts.min.js'), 'utf8');
}

/** JSON that is safe inside a <script> element. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

const html = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Buckets exact counts into bins of `width` for a histogram: [bin start, count]. */
export function bin(counts: [number, number][], width: number): [number, number][] {
  const bins = new Map<number, number>();
  for (const [value, n] of counts) {
    const start = Math.floor(value / width) * width;
    bins.set(start, (bins.get(start) ?? 0) + n);
  }
  return [...bins.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * Re-bins [bin start, count] pairs to a coarser `width` (rounded first: 0.15 / 0.05 is 2.999…); starts
 * above `lastStart` join the last bin, so a ratio of exactly 1 counts in [0.95, 1].
 */
export function rebin(bins: [number, number][], width: number, lastStart = Infinity): [number, number][] {
  const out = new Map<number, number>();
  for (const [start, n] of bins) {
    const raw = Math.round(Math.floor(Math.round((start / width) * 1e6) / 1e6) * width * 1e6) / 1e6;
    const at = Math.min(raw, lastStart);
    out.set(at, (out.get(at) ?? 0) + n);
  }
  return [...out.entries()].sort((a, b) => a[0] - b[0]);
}

const ratioSeries = (summary: MetricsSummary, names: MetricName[]) =>
  names.map((name) => ({ name, bins: rebin(summary.metrics[name].bins, 0.05, 0.95) }));

/** Dialogues per number of restated queries, every count from 0 to the largest (gaps as 0). */
function restatedBars(summary: MetricsSummary): [number, number][] {
  const bins = new Map(summary.metrics.restated_queries.bins);
  const top = Math.max(0, ...bins.keys());
  return Array.from({ length: top + 1 }, (_, k) => [k, bins.get(k) ?? 0]);
}

/** The page's drawing script: plain browser JS, run after echarts.min.js. */
const RENDER = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var drawn = [];
  function chart(id, option) {
    var el = document.querySelector('[data-chart="' + id + '"]');
    // A figure with nothing to show has a note instead of an element (no empty axes).
    if (!el) return;
    var c = echarts.init(el, null, { renderer: 'canvas' });
    option.animation = false;
    option.tooltip = option.tooltip || { trigger: 'item' };
    c.setOption(option);
    drawn.push(id);
    window.addEventListener('resize', function () { c.resize(); });
  }
  var intents = data.intents, flows = data.flows;
  chart('intent-flow', {
    grid: { left: 230, right: 90, top: 20, bottom: 150 },
    xAxis: { type: 'category', data: flows, axisLabel: { rotate: 30, interval: 0, fontSize: 10 } },
    yAxis: { type: 'category', data: intents, axisLabel: { fontSize: 10 } },
    visualMap: { min: 0, max: data.heatMax, calculable: true, orient: 'vertical', right: 0, top: 'middle' },
    series: [{ name: 'dialogues', type: 'heatmap', data: data.heat, label: { show: true } }]
  });
  chart('topics', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 230, right: 30, top: 30, bottom: 30 },
    xAxis: { type: 'value', name: 'topics' },
    yAxis: { type: 'category', data: data.topics.map(function (t) { return t.intent; }), axisLabel: { fontSize: 10 } },
    series: [
      { name: 'topics used', type: 'bar', data: data.topics.map(function (t) { return t.used; }) },
      { name: 'topics in the list', type: 'bar', data: data.topics.map(function (t) { return t.available == null ? 0 : t.available; }) }
    ]
  });
  chart('turns', {
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', name: 'user queries', data: data.turns.map(function (t) { return String(t[0]); }) },
    yAxis: { type: 'value', name: 'dialogues' },
    series: [{ name: 'dialogues', type: 'bar', data: data.turns.map(function (t) { return t[1]; }) }]
  });
  function histogram(id, h, width, paper) {
    var last = h.bins.length ? h.bins[h.bins.length - 1][0] + width : 0;
    var option = {
      // The lines' labels sit above the plot, one row each: beside the bars or each other they overlap.
      grid: { top: 78 },
      xAxis: { type: 'value', name: 'words', min: 0, max: Math.ceil(Math.max(last, paper.high * 1.25) / 5) * 5 },
      yAxis: { type: 'value', name: 'texts' },
      series: [{
        name: 'texts', type: 'bar', barWidth: '90%',
        data: h.bins.map(function (b) { return [b[0] + width / 2, b[1]]; }),
        markLine: {
          symbol: 'none',
          label: { formatter: '{b}', fontSize: 10, position: 'end' },
          data: [
            { name: 'paper ' + paper.low, xAxis: paper.low, lineStyle: { color: '#c23531', type: 'dashed' }, label: { distance: 4 } },
            { name: 'paper ' + paper.high, xAxis: paper.high, lineStyle: { color: '#c23531', type: 'dashed' }, label: { distance: 20 } },
            { name: 'this run ' + h.mean.toFixed(1), xAxis: h.mean, lineStyle: { color: '#2f4554' }, label: { distance: 36 } }
          ]
        }
      }]
    };
    chart(id, option);
  }
  histogram('query-words', data.queryWords, data.queryWords.width, data.paper.queryWords);
  histogram('response-words', data.responseWords, data.responseWords.width, data.paper.responseWords);
  chart('tokens', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 230, right: 30, top: 30, bottom: 30 },
    xAxis: { type: 'value', name: 'tokens' },
    yAxis: { type: 'category', data: data.tokens.rows, axisLabel: { fontSize: 10 } },
    series: [
      { name: 'prompt', type: 'bar', stack: 't', data: data.tokens.prompt },
      { name: 'completion', type: 'bar', stack: 't', data: data.tokens.completion }
    ]
  });
  chart('failures', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    xAxis: { type: 'category', data: data.failures.types, axisLabel: { interval: 0, fontSize: 10 } },
    yAxis: { type: 'value', name: 'dialogues' },
    series: data.failures.stages.map(function (stage, s) {
      return { name: stage, type: 'bar', stack: 'f', data: data.failures.counts[s] };
    })
  });
  chart('duplicates', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    xAxis: { type: 'category', data: ['dialogues', 'user queries'] },
    yAxis: { type: 'value', name: 'duplicates' },
    series: [
      { name: 'exact', type: 'bar', data: [data.duplicates.dialogues.exact, data.duplicates.queries.exact] },
      { name: 'near (Jaccard >= ' + data.duplicates.threshold + ')', type: 'bar', data: [data.duplicates.dialogues.near, data.duplicates.queries.near] }
    ]
  });
  function ratios(id, series, axis) {
    chart(id, {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      xAxis: { type: 'value', name: axis, min: 0, max: 1 },
      yAxis: { type: 'value', name: 'dialogues' },
      series: series.map(function (s) {
        return { name: s.name, type: 'line', data: s.bins.map(function (b) { return [b[0] + 0.025, b[1]]; }) };
      })
    });
  }
  ratios('metric-distinct', data.metrics.distinct, 'distinct-n');
  ratios('metric-repetition', data.metrics.repetition, 'share of trigrams reused');
  chart('metric-restated', {
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', name: 'restated queries', data: data.metrics.restated.map(function (b) { return String(b[0]); }) },
    yAxis: { type: 'value', name: 'dialogues' },
    series: [{ name: 'dialogues', type: 'bar', data: data.metrics.restated.map(function (b) { return b[1]; }) }]
  });
  if (data.quality) {
    chart('judge-scores', {
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', name: 'score', data: data.quality.scoreLabels },
      yAxis: { type: 'value', name: 'dialogues' },
      series: [{ name: 'dialogues', type: 'bar', data: data.quality.scores }]
    });
    chart('judge-groups', {
      tooltip: { trigger: 'axis' },
      grid: { left: 250, right: 40, top: 20, bottom: 40 },
      xAxis: { type: 'value', name: 'mean score', min: 0, max: 10 },
      yAxis: { type: 'category', data: data.quality.groups.map(function (g) { return g.name; }), axisLabel: { fontSize: 10 } },
      series: [{ name: 'mean score', type: 'bar', data: data.quality.groups.map(function (g) { return +g.mean.toFixed(2); }) }]
    });
  }
  window.reportCharts = drawn;
})();
`;

/** The figures the page draws, shaped for the charts. */
export function pageData(stats: ReportStats) {
  const intents = [...new Set(stats.intentFlow.map((r) => r[0]))].sort();
  const flows = [...new Set(stats.intentFlow.map((r) => r[1]))].sort();
  const tokens = stats.tokens;
  const tokenRows: { name: string; prompt: number; completion: number }[] = [];
  if (tokens?.stages)
    for (const [stage, t] of Object.entries(tokens.stages))
      tokenRows.push({ name: `stage: ${stage}`, prompt: t.prompt, completion: t.completion });
  for (const i of tokens?.intents ?? [])
    tokenRows.push({ name: `intent: ${i.intent}`, prompt: i.tokens.prompt, completion: i.tokens.completion });
  if (tokens)
    tokenRows.push({ name: 'run total', prompt: tokens.tokens.prompt, completion: tokens.tokens.completion });
  const types = [...new Set(stats.failures.byTypeStage.map((r) => r[0]))].sort();
  const stages = [...new Set(stats.failures.byTypeStage.map((r) => r[1]))].sort();
  return {
    intents,
    flows,
    heat: stats.intentFlow.map(([i, f, n]) => [flows.indexOf(f), intents.indexOf(i), n]),
    heatMax: Math.max(1, ...stats.intentFlow.map((r) => r[2])),
    topics: [...stats.topics].sort((a, b) => a.intent.localeCompare(b.intent)),
    turns: stats.turns,
    queryWords: { bins: bin(stats.queryWords.counts, 2), width: 2, mean: stats.queryWords.mean },
    responseWords: { bins: bin(stats.responseWords.counts, 5), width: 5, mean: stats.responseWords.mean },
    paper: PAPER_MEANS,
    tokens: {
      rows: tokenRows.map((r) => r.name),
      prompt: tokenRows.map((r) => r.prompt),
      completion: tokenRows.map((r) => r.completion),
    },
    failures: {
      types,
      stages,
      counts: stages.map((s) =>
        types.map((t) => stats.failures.byTypeStage.find((r) => r[0] === t && r[1] === s)?.[2] ?? 0),
      ),
    },
    duplicates: stats.duplicates,
    metrics: {
      distinct: ratioSeries(stats.metrics, [
        'distinct_1.user',
        'distinct_1.assistant',
        'distinct_2.user',
        'distinct_2.assistant',
      ]),
      repetition: ratioSeries(stats.metrics, ['self_repetition', 'self_repetition_max']),
      restated: restatedBars(stats.metrics),
    },
    quality:
      stats.quality.tally.judged > 0
        ? {
            scoreLabels: stats.quality.tally.scores.map((_, i) => String(i + 1)),
            scores: stats.quality.tally.scores,
            groups: [
              ...stats.quality.byIntent.map((g) => ({ name: `intent: ${g.name}`, mean: g.mean })),
              ...stats.quality.byFlow.map((g) => ({ name: `flow: ${g.name}`, mean: g.mean })),
            ],
          }
        : undefined,
  };
}

/** The judge's section: its scores, mean per intent and flow, the flags, the lowest-scored dialogues. */
function qualitySection(stats: ReportStats): string {
  const q = stats.quality;
  if (q.tally.judged === 0) {
    const failed = q.tally.failed ? ` The judge's calls failed for ${q.tally.failed} dialogue(s).` : '';
    return `<section><h2>Quality (judge)</h2><p class="note">No dialogue carries a judge's score (generate with --judge to score consistency).${failed}</p></section>`;
  }
  const flags = Object.entries(q.tally.flags)
    .map(([flag, n]) => `${flag} ${n}`)
    .join(', ');
  const note = `${q.tally.judged} of ${stats.dialogues} dialogues scored by ${html(q.models.join(', '))}, mean ${q.mean!.toFixed(2)} of 10${q.unjudged ? `; ${q.unjudged} not judged (outside the sample)` : ''}${q.tally.failed ? `; ${q.tally.failed} kept unjudged after the judge's calls failed` : ''}. Flags named: ${flags || 'none'}. A score is the judge's view of how consistent the assistant stays with the user's facts and its own earlier answers: calibrate the judge (consistent-chat calibrate) before trusting it.`;
  const rows = q.lowest
    .map(
      (l) =>
        `<tr><td>${html(l.id)}</td><td>${l.score}</td><td>${html(l.flags.join(', '))}</td><td>${html(l.reason)}</td></tr>`,
    )
    .join('');
  return `${section('judge-scores', 'Quality (judge): scores', html(note), 280)}
${section('judge-groups', 'Mean judge score per intent and per information flow', 'Mean of the dialogue scores of each group.', Math.max(220, 26 * (q.byIntent.length + q.byFlow.length) + 60))}
<table><tr><th>lowest-scored dialogue</th><th>score</th><th>flags</th><th>reason</th></tr>${rows}</table>`;
}

const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(3));

/** The metrics as a table: each one's distribution, then words per text against the paper's means. */
function metricsTable(m: MetricsSummary): string {
  const rows = METRIC_NAMES.map((name) => {
    const d = m.metrics[name];
    return `<tr><td>${name}</td><td>${num(d.mean)}</td><td>${num(d.p10)}</td><td>${num(d.p50)}</td><td>${num(d.p90)}</td><td>${num(d.min)}–${num(d.max)}</td><td>${d.nulls}</td></tr>`;
  }).join('');
  const q = PAPER_MEANS.queryWords;
  const r = PAPER_MEANS.responseWords;
  return `<table><tr><th>metric (per dialogue)</th><th>mean</th><th>p10</th><th>median</th><th>p90</th><th>range</th><th>no value</th></tr>${rows}</table>
<p class="note">Words per text over all ${m.pooled.queries} queries: <b>${m.pooled.wordsPerQuery.toFixed(1)}</b> (paper ${q.low}–${q.high}); over all ${m.pooled.responses} responses: <b>${m.pooled.wordsPerResponse.toFixed(1)}</b> (paper ${r.low}–${r.high}). Dialogues whose own mean lies in the band: queries ${m.inBand.query} of ${m.dialogues}, responses ${m.inBand.response} of ${m.dialogues} (the band bounds a dataset's mean, so a single dialogue often falls outside). ${m.stored} of ${m.dialogues} records carried their metrics; the rest were computed for this report.</p>`;
}

function section(id: string, title: string, note: string, height = 360): string {
  return `<section><h2>${html(title)}</h2><p class="note">${note}</p><div class="chart" data-chart="${id}" style="height:${height}px"></div></section>`;
}

export async function renderReportPage(stats: ReportStats, generatorVersion: string): Promise<string> {
  const data = pageData(stats);
  const t = stats.tokens;
  const cost = t?.cost
    ? ` Estimated cost: ${t.cost.total.toFixed(4)} ${html(t.cost.currency)}.`
    : ' No price table was recorded for this run, so no cost is shown.';
  const tokenNote = t
    ? `Prompt and completion tokens${t.stages ? ' by LLM stage,' : ''} by intent and for the run (from summary.json).${t.stages ? '' : ' This run recorded no per-stage split.'}${cost}`
    : 'This run has no summary.json (it is written when generate finishes), so no token figures are shown.';
  const dupRows = stats.duplicates.examples
    .map(
      (e) =>
        `<tr><td>${html(e.id)}</td><td>${html(e.of)}</td><td>${e.kind}</td><td>${e.similarity.toFixed(2)}</td></tr>`,
    )
    .join('');
  const title = `ConsistentChat report${stats.runId ? `: ${stats.runId}` : ''}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin: 28px 0 4px; } .note { color: #555; font-size: 13px; margin: 0 0 8px; }
.chart { width: 100%; border: 1px solid #eee; } table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
</style></head><body>
<h1>${html(title)}</h1>
<table><tr><th>dialogues</th><td>${stats.dialogues}</td><th>failed</th><td>${stats.failures.total}</td><th>model</th><td>${html(stats.model.join(', '))}</td><th>generator</th><td>consistent-chat ${html(generatorVersion)}</td></tr>
<tr><th>mean words / query</th><td>${stats.queryWords.mean.toFixed(1)} (paper ${PAPER_MEANS.queryWords.low}–${PAPER_MEANS.queryWords.high})</td><th>mean words / response</th><td>${stats.responseWords.mean.toFixed(1)} (paper ${PAPER_MEANS.responseWords.low}–${PAPER_MEANS.responseWords.high})</td><th>duplicate dialogues</th><td>${stats.duplicates.dialogues.exact} exact, ${stats.duplicates.dialogues.near} near</td><th>duplicate queries</th><td>${stats.duplicates.queries.exact} exact, ${stats.duplicates.queries.near} near</td></tr></table>
${section('intent-flow', 'Dialogues per intent × information flow', 'Each cell counts the dialogues of one intent that followed one information flow.', 480)}
${section('topics', 'Topic coverage per intent', 'Distinct topics the run used, beside the number of topics in the built-in list for that intent.', 380)}
${section('turns', 'Turns per dialogue', 'User queries per dialogue (each has one response).', 280)}
${section('query-words', 'Words per user query', `Histogram; dashed lines mark the paper’s mean range (${PAPER_MEANS.queryWords.low}–${PAPER_MEANS.queryWords.high} words), the solid line this run’s mean. Words are runs of letters, digits and apostrophes.`)}
${section('response-words', 'Words per response', `Histogram; dashed lines mark the paper’s mean range (${PAPER_MEANS.responseWords.low}–${PAPER_MEANS.responseWords.high} words), the solid line this run’s mean.`)}
${section('tokens', 'Tokens', html(tokenNote), 380)}
${
  stats.failures.total > 0
    ? section(
        'failures',
        'Failures by type and stage',
        `From failures.jsonl: ${stats.failures.total} dialogue(s) failed after their attempts.`,
        300,
      )
    : '<section><h2>Failures</h2><p class="note">No dialogue failed (failures.jsonl is empty).</p></section>'
}
${section('duplicates', 'Duplicates found', `Exact: the same text once normalised (case, punctuation, whitespace). Near: MinHash over 3-word shingles, LSH candidates confirmed at estimated Jaccard ≥ ${stats.duplicates.threshold}. First occurrence counted as the original.${stats.duplicates.indexCap ? ` Later texts were checked against the first ${stats.duplicates.indexCap.toLocaleString('en')} distinct dialogues and queries only.` : ''}`, 300)}
${dupRows ? `<table><tr><th>duplicate</th><th>of</th><th>kind</th><th>similarity</th></tr>${dupRows}</table>` : ''}
<section><h2>Dialogue metrics</h2><p class="note">Computed from the text alone, no model. Distinct-n: distinct word n-grams over all n-grams of one side’s turns (lower means more repetitive wording; it falls as texts get longer). Self-repetition: share of a response’s word trigrams that an earlier response of the same dialogue already used (pooled over responses 2..n, and the worst single response). Restated queries: later queries that repeat at least half of an earlier one.</p>
${metricsTable(stats.metrics)}</section>
${section('metric-distinct', 'Distinct-1 and distinct-2 per dialogue', 'Dialogues per 0.05-wide bin, for the user side and the assistant side.', 320)}
${section('metric-repetition', 'Assistant self-repetition per dialogue', 'Dialogues per 0.05-wide bin: pooled over responses 2..n, and the worst single response.', 300)}
${section('metric-restated', 'Restated user queries per dialogue', 'Dialogues by how many of their queries restate an earlier one.', 260)}
${qualitySection(stats)}
<script id="report-data" type="application/json">${scriptJson(data)}</script>
<script>${(await echartsSource()).replace(/<\/script/gi, '<\\/script')}</script>
<script>${RENDER}</script>
</body></html>
`;
}
