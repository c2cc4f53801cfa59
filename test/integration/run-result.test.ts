/**
 * Waiting for a run's result long-polls the server's history for as long as the run goes (about one
 * call per 20 s; 1 s here). The SDK hangs an abort listener on the call's signal for every such call
 * and never takes it off, so waiting under one signal collected one per poll for the whole run
 * (src/client/run-result.ts). A workflow with no worker stays running, so the polls go on.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, test } from 'node:test';
import {
  Client,
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type ConnectionOptions,
} from '@temporalio/client';
import { runResult } from '../../src/client/run-result';
import { devServer, unique, type TestDevServer } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

let temporal: TestDevServer;
before(async () => {
  temporal = await devServer({ 'history.longPollExpirationInterval': '1s' });
});
after(async () => {
  await temporal?.dispose();
});

test('run result: many long polls for a running run leave at most one abort listener on the stop signal, and stopping rejects', async () => {
  let historyCalls = 0;
  const counting: Interceptor = (options, next) => {
    if (options.method_definition.path.endsWith('/GetWorkflowExecutionHistory')) historyCalls++;
    // A pass-through: the SDK's type is grpc-js's class, `next` gives its interface.
    return next(options) as ReturnType<Interceptor>;
  };
  const connection = await Connection.connect({
    address: temporal.address,
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions()), counting],
  });
  const client = new Client({ connection });
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => {
    if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning);
  };
  process.on('warning', onWarning);
  try {
    const handle = await client.workflow.start('nobodyServesThis', {
      workflowId: unique('run-result'),
      taskQueue: unique('tq-nobody'),
    });
    const stop = new AbortController();
    const result = runResult(client, handle, stop.signal);
    result.catch(() => undefined);
    await waitFor(() => historyCalls >= 15, 120_000, '15 long polls of the history');
    assert.ok(getEventListeners(stop.signal, 'abort').length <= 1, 'listeners left on the stop signal');
    stop.abort(new Error('stopped waiting'));
    await assert.rejects(result, /stopped waiting|cancel/i);
    await handle.terminate('test over');
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    await connection.close();
  }
});
