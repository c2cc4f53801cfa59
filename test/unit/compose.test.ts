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
}

async function compose(): Promise<{ raw: string; services: Record<string, Service> }> {
  const raw = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
  return { raw, services: (parse(raw) as { services: Record<string, Service> }).services };
}

test('docker-compose: names Temporal on PostgreSQL, the UI, LLM workers and a storage worker', async () => {
  const { services } = await compose();
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', 'storage'])
    assert.ok(services[name], name);
  assert.match(services.postgresql!.image!, /^postgres:/);
  assert.match(services.temporal!.image!, /temporalio\/auto-setup/);
  assert.equal(services.temporal!.environment!.DB, 'postgres12');
  assert.deepEqual(Object.keys(services.temporal!.depends_on as object), ['postgresql']);
  assert.equal(services['temporal-ui']!.environment!.TEMPORAL_ADDRESS, 'temporal:7233');
  assert.equal(services.worker!.build, '.');
  assert.equal(services.worker!.environment!.TEMPORAL_ADDRESS, 'temporal:7233');
  assert.deepEqual(services.storage!.command, ['worker', '--storage-only', '--out-root', '/data']);
});

test('docker-compose: secrets come from the environment, never from the file', async () => {
  const { raw, services } = await compose();
  assert.match(String(services.worker!.environment!.OPENAI_API_KEY), /^\$\{OPENAI_API_KEY/);
  assert.doesNotMatch(raw, /sk-[A-Za-z0-9]/);
  assert.equal(services.storage!.environment!.OPENAI_API_KEY, undefined);
  for (const match of raw.matchAll(/\$\{([^}]*)\}/g)) {
    assert.match(match[1]!, /^[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?$/, `interpolation ${match[0]}`);
  }
});

test('docker-compose: the Dockerfile builds the package and runs its CLI', async () => {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM node:20/m);
  assert.match(dockerfile, /RUN npm ci/);
  assert.match(dockerfile, /RUN npm run build/);
  assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/consistent-chat.js"\]/);
});
