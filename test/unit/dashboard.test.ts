/**
 * The compose stack's Grafana dashboard and Prometheus configuration against what the package exports.
 * The SDK's `temporal_*` names are checked against a real worker's scrape in
 * test/integration/observability.test.ts.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { METRIC_NAMES } from '../../src/activities/metrics';
import { dashboardPanels, metricNames, OBSERVABILITY_DIR } from '../helpers/dashboard';

const HISTOGRAM_SERIES = /_(sum|count|bucket)$/;
const exported = new Set<string>(Object.values(METRIC_NAMES));

test('dashboard: every panel queries Prometheus and names only metrics the package exports', async () => {
  const panels = await dashboardPanels();
  assert.ok(panels.length >= 7);
  for (const panel of panels) {
    const exprs = (panel.targets ?? []).map((t) => t.expr ?? '');
    assert.ok(exprs.length > 0 && exprs.every(Boolean), `${panel.title}: has queries`);
    assert.equal(panel.datasource?.uid, 'prometheus', panel.title);
    const names = exprs.flatMap(metricNames);
    assert.ok(names.length > 0, `${panel.title}: names a metric`);
    for (const name of names.filter((n) => n.startsWith('consistent_chat_')))
      assert.ok(
        exported.has(name) || exported.has(name.replace(HISTOGRAM_SERIES, '')),
        `${panel.title}: ${name} is one of METRIC_NAMES`,
      );
  }
  // What the issue asks the dashboard to show.
  const all = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
  for (const name of [
    METRIC_NAMES.dialoguesWritten,
    METRIC_NAMES.dialoguesFailed,
    METRIC_NAMES.llmCostUsd,
    METRIC_NAMES.llmCallsInFlight,
    METRIC_NAMES.llmRateLimited,
    'temporal_worker_task_slots_used',
  ])
    assert.ok(all.includes(name), name);
});

test('dashboard: Grafana provisions the Prometheus data source the panels use, and Prometheus scrapes the workers', async () => {
  const datasources = parse(
    await readFile(
      join(OBSERVABILITY_DIR, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'),
      'utf8',
    ),
  ) as { datasources: { uid: string; url: string }[] };
  assert.deepEqual(
    datasources.datasources.map((d) => [d.uid, d.url]),
    [['prometheus', 'http://prometheus:9090']],
  );
  const prometheus = parse(await readFile(join(OBSERVABILITY_DIR, 'prometheus.yml'), 'utf8')) as {
    scrape_configs: {
      dns_sd_configs?: { names: string[]; port: number }[];
      static_configs?: { targets: string[] }[];
    }[];
  };
  const targets = prometheus.scrape_configs.flatMap((c) => [
    ...(c.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)),
    ...(c.static_configs ?? []).flatMap((s) => s.targets),
  ]);
  assert.deepEqual(targets.sort(), ['storage:9464', 'worker:9464']);
});
