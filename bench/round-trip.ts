/**
 * The floor under any orchestration overhead: the time one no-op activity takes, scheduled and
 * completed one after another by a workflow, on the same kind of dev server the benchmarks use.
 */
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { startDevServer } from '../src/client/dev-server';

export async function activityRoundTripMs(options: {
  persisted: boolean;
  activities?: number;
}): Promise<number> {
  const n = options.activities ?? 100;
  const dir = await mkdtemp(join(tmpdir(), 'cc-roundtrip-'));
  const server = await startDevServer({
    dbFile: options.persisted ? join(dir, 'temporal.db') : undefined,
    stateFile: join(dir, 'server.json'),
    logFile: join(dir, 'server.log'),
  });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue: 'round-trip',
      workflowsPath: require.resolve('./round-trip-workflow'),
      activities: { noop: () => Promise.resolve() },
    });
    const client = new Client({ connection });
    return await worker.runUntil(async () => {
      await client.workflow.execute('sequentialNoops', {
        workflowId: 'warm-up',
        taskQueue: 'round-trip',
        args: [5],
      });
      const started = performance.now();
      await client.workflow.execute('sequentialNoops', {
        workflowId: 'measure',
        taskQueue: 'round-trip',
        args: [n],
      });
      return (performance.now() - started) / n;
    });
  } finally {
    await connection.close();
    await nativeConnection.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
