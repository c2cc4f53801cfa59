import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createWorkers } from '../../src/client/workers';

function fakeWorker(name: string, released: string[]) {
  return {
    name,
    runUntil: async (until: Promise<unknown>) => {
      await until;
      released.push(name);
    },
  };
}

test('createWorkers: all created workers are returned in order', async () => {
  const released: string[] = [];
  const workers = await createWorkers([
    Promise.resolve(fakeWorker('storage', released)),
    Promise.resolve(fakeWorker('generation', released)),
  ]);
  assert.deepEqual(
    workers.map((w) => w.name),
    ['storage', 'generation'],
  );
  assert.deepEqual(released, []);
});

test('createWorkers: a failed creation releases the workers already created, then throws its error', async () => {
  const released: string[] = [];
  const boom = new Error('generation worker: bad bundle');
  await assert.rejects(
    createWorkers([Promise.resolve(fakeWorker('storage', released)), Promise.reject(boom)]),
    (error) => error === boom,
  );
  assert.deepEqual(released, ['storage']);
});
