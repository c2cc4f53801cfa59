/**
 * The package's layers point down (README, "From the CLI to a stored record"): `shared/` imports
 * nothing of the package above it, `method/` only `shared/`, `run/` only those two; and no module
 * reaches itself again through value imports (a cycle's modules see each other half-initialised).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

const SRC = join(__dirname, '..', '..', 'src');
const LAYERS = ['shared', 'method', 'run'] as const;
const IMPORT =
  /^\s*(?:import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm;

interface Edge {
  to: string;
  typeOnly: boolean;
}

function sources(): Map<string, Edge[]> {
  const files = (readdirSync(SRC, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => normalize(f));
  const known = new Set(files);
  const resolve = (from: string, spec: string) =>
    [`${spec}.ts`, join(spec, 'index.ts'), spec]
      .map((c) => normalize(join(dirname(from), c)))
      .find((c) => known.has(c));
  const graph = new Map<string, Edge[]>();
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8');
    const edges: Edge[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const to = resolve(file, (m[2] ?? m[3] ?? m[4])!);
      if (to) edges.push({ to, typeOnly: m[1] !== undefined });
    }
    graph.set(file, edges);
  }
  return graph;
}

const layerOf = (file: string) => LAYERS.indexOf(file.split(/[/\\]/)[0] as (typeof LAYERS)[number]);

test('layers: shared, method and run import only their own layer and the ones below', () => {
  const upward: string[] = [];
  for (const [file, edges] of sources()) {
    const layer = layerOf(file);
    if (layer < 0) continue;
    for (const { to } of edges) {
      const target = layerOf(to);
      if (target < 0 || target > layer) upward.push(`${file} -> ${to}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('layers: no cycle of value imports among the modules of src/', () => {
  const graph = sources();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const { to, typeOnly } of graph.get(file) ?? []) {
      if (typeOnly) continue;
      if (state.get(to) === 'open') cycles.push([...path.slice(path.indexOf(to)), to].join(' -> '));
      else if (!state.has(to)) visit(to);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  assert.deepEqual(cycles, []);
  assert.ok(graph.size > 50, `read ${graph.size} modules from ${relative(process.cwd(), SRC)}`);
});
