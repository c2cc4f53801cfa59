/** No Docker engine runs here: check that the stack's files parse and name what they must. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';

const ROOT = join(__dirname, '..', '..');

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  volumes?: string[];
  healthcheck?: { test: string[] | string };
  deploy?: { replicas?: string | number };
  stop_grace_period?: string;
}

async function compose(): Promise<{ raw: string; services: Record<string, Service> }> {
  const raw = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
  return { raw, services: (parse(raw) as { services: Record<string, Service> }).services };
}

const dependsOn = (service: Service): string[] =>
  Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});

const buildContext = (service: Service): string | undefined =>
  typeof service.build === 'string' ? service.build : service.build?.context;

test('docker-compose: names Temporal on PostgreSQL, the UI, LLM workers and a storage worker', async () => {
  const { services } = await compose();
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', 'storage'])
    assert.ok(services[name], name);
  const { postgresql, temporal, worker, storage } = services;
  assert.match(postgresql!.image!, /^postgres:/);
  assert.ok(postgresql!.healthcheck, 'postgresql has a healthcheck');
  assert.match(temporal!.image!, /^temporalio\/auto-setup:/);
  assert.match(String(temporal!.environment!.DB), /^postgres/);
  assert.equal(temporal!.environment!.POSTGRES_SEEDS, 'postgresql');
  assert.deepEqual(dependsOn(temporal!), ['postgresql']);
  assert.ok(temporal!.healthcheck, 'temporal has a healthcheck');
  assert.equal(services['temporal-ui']!.environment!.TEMPORAL_ADDRESS, 'temporal:7233');
  assert.deepEqual(dependsOn(services['temporal-ui']!), ['temporal']);
  for (const [name, service] of Object.entries({ worker, storage })) {
    assert.equal(buildContext(service!), '.', `${name} build context`);
    assert.equal(service!.environment!.TEMPORAL_ADDRESS, 'temporal:7233', `${name} TEMPORAL_ADDRESS`);
    assert.deepEqual(dependsOn(service!), ['temporal'], `${name} depends_on`);
  }
  assert.equal(worker!.image, storage!.image, 'worker and storage run the same image');
  assert.equal(worker!.command![0], 'worker');
  assert.match(String(worker!.deploy!.replicas), /\$\{WORKER_REPLICAS/);
  assert.ok(worker!.stop_grace_period, 'workers get time to drain on SIGTERM');
  assert.deepEqual(storage!.command, ['worker', '--storage-only', '--out-root', '/data']);
  assert.ok(storage!.volumes!.includes('dialogues:/data'), 'storage mounts the dialogues volume');
});

test('docker-compose: secrets come from the environment, never from the file', async () => {
  const { raw, services } = await compose();
  assert.ok(String(services.worker!.environment!.OPENAI_API_KEY).includes('${OPENAI_API_KEY'));
  assert.doesNotMatch(raw, /\bsk-[A-Za-z0-9_-]{16,}/);
  assert.equal(services.storage!.environment!.OPENAI_API_KEY, undefined);
});

test('docker-compose: every ${VAR} interpolation is well formed', async () => {
  const { raw } = await compose();
  const interpolations = [...raw.matchAll(/\$\{([^}]*)\}/g)];
  assert.ok(interpolations.length > 0);
  for (const match of interpolations) {
    assert.match(match[1]!, /^[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?$/, `interpolation ${match[0]}`);
  }
  // A `$` that opens no `${...}` and is not an escaped `$$` would be read as an interpolation.
  assert.doesNotMatch(raw.replace(/\$\$/g, ''), /\$(?!\{)/);
});

test('docker-compose: the Dockerfile builds the package and runs its CLI', async () => {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM node:20\S* AS build$/m);
  assert.match(dockerfile, /RUN npm ci/);
  assert.match(dockerfile, /RUN npm run build/);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^ENTRYPOINT \["node", "bin\/consistent-chat\.js"\]$/m);
});
