import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Resources } from '../../src/client/resources';

test('resources: released last acquired first, once', async () => {
  const order: string[] = [];
  const resources = new Resources();
  resources.defer(() => order.push('server'));
  resources.defer(async () => {
    await Promise.resolve();
    order.push('connection');
  });
  resources.defer(() => order.push('workers'));
  await resources.releaseAll();
  await resources.releaseAll();
  assert.deepEqual(order, ['workers', 'connection', 'server']);
  assert.throws(() => resources.defer(() => undefined), /already released/);
});

test('resources: a failing release does not stop the others, and its error is thrown after them', async () => {
  const order: string[] = [];
  const resources = new Resources();
  resources.defer(() => order.push('storage'));
  resources.defer(() => {
    throw new Error('connection: already closed');
  });
  resources.defer(() => Promise.reject(new Error('second failure')));
  await assert.rejects(resources.releaseAll(), /second failure/);
  assert.deepEqual(order, ['storage']);
});
