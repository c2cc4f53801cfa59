/** The provisioned Grafana dashboard's panels and the metric names their queries use. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const OBSERVABILITY_DIR = join(__dirname, '..', '..', 'observability');
export const DASHBOARD_FILE = join(OBSERVABILITY_DIR, 'grafana', 'dashboards', 'consistent-chat.json');

export interface DashboardPanel {
  title: string;
  datasource?: { uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
}

export async function dashboardPanels(): Promise<DashboardPanel[]> {
  return (JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as { panels: DashboardPanel[] }).panels;
}

/** Metric names in a PromQL expression: ours and the SDK's are the only prefixes a panel may use. */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:consistent_chat|temporal)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}
