/**
 * report.html of a run without failures, in headless Chromium: no empty Failures chart, and the
 * histograms' mean-line labels readable, clear of the bars and of each other.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeReport } from '../../src/report/report';
import { launchChromium, PROBE_CHARTS, type ChartProbe } from '../helpers/browser';
import { writeSyntheticRun } from '../helpers/synthetic-run';
import { tempDir } from '../helpers/temporal';

interface Box {
  text?: string;
  x: number;
  y: number;
  width: number;
}

/** Runs in the page: the mark-line labels and the bars of one histogram, in canvas pixels. */
const probeHistogram = (id: string) => `(() => {
  const instance = echarts.getInstanceByDom(document.querySelector('[data-chart="${id}"]'));
  const boxes = (keep) => instance.getZr().storage.getDisplayList(true).filter(keep).map((el) => {
    const r = el.getBoundingRect().clone();
    if (el.transform) r.applyTransform(el.transform);
    return { text: el.style && el.style.text, x: r.x, y: r.y, width: r.width };
  });
  return {
    labels: boxes((el) => /^(paper|this run) /.test((el.style && el.style.text) || '')),
    bars: boxes((el) => el.type === 'rect'),
    gridTop: instance.getModel().getComponent('grid').coordinateSystem.getRect().y,
  };
})()`;

test('report: a run without failures draws no Failures chart, and mean-line labels overlap neither bars nor each other', async () => {
  const dir = join(await tempDir('cc-report-page-'), 'run');
  await writeSyntheticRun(dir, { count: 60 });
  await writeReport(dir);
  const html = await readFile(join(dir, 'report.html'), 'utf8');
  assert.ok(html.includes('No dialogue failed'), 'the Failures section says that none failed');

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`file://${join(dir, 'report.html')}`);
    await page.waitForFunction('Array.isArray(window.reportCharts)');
    const charts = await page.evaluate<ChartProbe[]>(PROBE_CHARTS);
    assert.ok(!charts.some((c) => c.id === 'failures'), 'no Failures chart');
    for (const c of charts.filter((c) => /words$/.test(c.id ?? '')))
      assert.ok(c.drawn && c.total > 0, `${c.id} drawn with data`);
    // Labels are ~10 px tall: two on one row overlap when their x ranges meet.
    const rowHeight = 10;
    for (const id of ['query-words', 'response-words']) {
      const { labels, bars, gridTop } = await page.evaluate<{ labels: Box[]; bars: Box[]; gridTop: number }>(
        probeHistogram(id),
      );
      assert.equal(labels.length, 3, `${id}: three labelled lines`);
      assert.ok(bars.length > 0, `${id}: bars drawn`);
      for (const label of labels) {
        assert.ok(
          label.y + rowHeight / 2 <= gridTop,
          `${id}: "${label.text}" above the plot, clear of the bars`,
        );
        for (const bar of bars)
          assert.ok(label.y + rowHeight / 2 <= bar.y, `${id}: "${label.text}" above every bar`);
      }
      for (const a of labels)
        for (const b of labels) {
          if (a === b) continue;
          const apart = Math.abs(a.y - b.y) >= rowHeight || a.x + a.width <= b.x || b.x + b.width <= a.x;
          assert.ok(apart, `${id}: "${a.text}" and "${b.text}" do not overlap`);
        }
    }
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
