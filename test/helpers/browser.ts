/**
 * Headless Chromium for page checks: Debian's `chromium` (installed by scripts/setup.sh) driven by
 * `playwright-core`, which downloads no browser of its own.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The system Chromium: CHROMIUM_PATH, else the distribution's (scripts/setup.sh installs it). */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => Boolean(p) && existsSync(p!));
  if (!found) throw new Error('no Chromium found: run scripts/setup.sh or set CHROMIUM_PATH');
  return found;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: ['--headless', '--no-sandbox'] });
}

export interface ChartProbe {
  id: string | null;
  /** Listed in `window.reportCharts` by the page's own script. */
  drawn: boolean;
  /** Sum of every number the chart's series draw (a heatmap cell's count, a bar's height, a bin's y). */
  total: number;
  canvas: { width: number; height: number } | undefined;
  /** x positions of the first series' mark lines (the histograms' paper means and run mean). */
  marks: number[];
}

/** Runs in the page: each `[data-chart]` element's ECharts instance, its data and its canvas. */
export const PROBE_CHARTS = `[...document.querySelectorAll('[data-chart]')].map((el) => {
  const instance = window.echarts.getInstanceByDom(el);
  const canvas = el.querySelector('canvas');
  let total = 0;
  for (const s of instance ? instance.getOption().series : [])
    for (const d of s.data || []) {
      const v = Array.isArray(d) ? d[d.length - 1] : d;
      if (typeof v === 'number') total += v;
    }
  const id = el.getAttribute('data-chart');
  const first = instance ? instance.getOption().series[0] : undefined;
  const marks = ((first && first.markLine && first.markLine.data) || []).map((m) => m.xAxis);
  return {
    id,
    drawn: (window.reportCharts || []).includes(id),
    total,
    canvas: canvas ? { width: canvas.width, height: canvas.height } : undefined,
    marks,
  };
})`;
