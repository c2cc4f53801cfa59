/**
 * The floor under any orchestration overhead: the time one no-op activity takes, scheduled and
 * completed one after another by a workflow, on the same kind of dev server the benchmarks use.
 */
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { startDevServer } from '../src/client/dev-server';
import type { ShapedCall } from './round-trip-workflow';

export interface TemporalFloor {
  /** One no-op activity after another: ms per activity. */
  roundTripMs: number;
  /** No-op activities/s with `workflows` workflows each keeping `window` in flight. */
  noopActivitiesPerSecond: number;
}

export async function temporalFloor(options: {
  persisted: boolean;
  activities?: number;
  /** @default 9, as many as a run has intents */
  workflows?: number;
  /** @default 28 */
  window?: number;
  /** @default 4000 */
  burst?: number;
}): Promise<TemporalFloor> {
  const n = options.activities ?? 100;
  return withTemporal(
    {
      persisted: options.persisted,
      taskQueue: 'round-trip',
      activities: { noop: () => Promise.resolve() },
    },
    async ({ client }) => {
      await client.workflow.execute('sequentialNoops', {
        workflowId: 'warm-up',
        taskQueue: 'round-trip',
        args: [5],
      });
      let started = performance.now();
      await client.workflow.execute('sequentialNoops', {
        workflowId: 'measure',
        taskQueue: 'round-trip',
        args: [n],
      });
      const roundTripMs = (performance.now() - started) / n;
      const workflows = options.workflows ?? 9;
      const perWorkflow = Math.ceil((options.burst ?? 4000) / workflows);
      started = performance.now();
      await Promise.all(
        Array.from({ length: workflows }, (_, i) =>
          client.workflow.execute('windowedNoops', {
            workflowId: `burst-${i}`,
            taskQueue: 'round-trip',
            args: [perWorkflow, options.window ?? 28],
          }),
        ),
      );
      const noopActivitiesPerSecond = (workflows * perWorkflow) / ((performance.now() - started) / 1000);
      return { roundTripMs, noopActivitiesPerSecond };
    },
  );
}

/**
 * A dev server (on a SQLite file when `persisted`) and a worker of this directory's workflows in this
 * process, running while `fn` does; all of it stopped and removed after.
 */
async function withTemporal<T>(
  options: Pick<WorkerOptions, 'taskQueue' | 'activities' | 'maxConcurrentActivityTaskExecutions'> & {
    persisted: boolean;
  },
  fn: (env: { client: Client; serverPid: number }) => Promise<T>,
): Promise<T> {
  const { persisted, ...workerOptions } = options;
  quietRuntime();
  const dir = await mkdtemp(join(tmpdir(), 'cc-roundtrip-'));
  const server = await startDevServer({
    dbFile: persisted ? join(dir, 'temporal.db') : undefined,
    stateFile: join(dir, 'server.json'),
    logFile: join(dir, 'server.log'),
  });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      ...workerOptions,
      connection: nativeConnection,
      workflowsPath: require.resolve('./round-trip-workflow'),
    });
    const client = new Client({ connection });
    return await worker.runUntil(() => fn({ client, serverPid: server.pid }));
  } finally {
    await connection.close();
    await nativeConnection.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

let runtimeInstalled = false;
/** The SDK's info logs (webpack's report, worker states) would bury the benchmark's table. */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** CPU per call of Temporal alone (this process's worker and client, and the dev server) at a run's shape. */
export interface ShapedFloor {
  calls: number;
  seconds: number;
  workerCpuMsPerCall: number;
  serverCpuMsPerCall: number;
}

/**
 * The streams scenario's work with every LLM call replaced by a timer: `workflows` workflows (a run's
 * intents) of `dialogues` dialogues, `lanes` in flight in each, on a file-backed dev server like the
 * CLI's. Whatever a run of that shape costs beyond this is the package's own.
 */
export async function temporalShapedFloor(options: {
  workflows: number;
  dialogues: number;
  lanes: number;
  /** Both calls of a dialogue in one activity, a checkpoint heartbeat between them. @default one activity per call */
  oneActivity?: boolean;
  cpuMs: (pid: number) => Promise<number>;
}): Promise<ShapedFloor> {
  return withTemporal(
    {
      persisted: true,
      taskQueue: 'shaped',
      // Every lane's call runs at once, as the package's worker admits a run's concurrency.
      maxConcurrentActivityTaskExecutions: options.workflows * options.lanes,
      activities: {
        shapedCall: async (call: ShapedCall) => {
          await new Promise((r) => setTimeout(r, call.ms));
          return 'r'.repeat(call.bytes);
        },
        shapedDialogue: async (calls: ShapedCall[]) => {
          let reply = '';
          for (const call of calls) {
            // The previous call's reply is the checkpoint a retry would resume from.
            if (reply) Context.current().heartbeat(reply);
            await new Promise((r) => setTimeout(r, call.ms));
            reply = 'r'.repeat(call.bytes);
          }
          return reply;
        },
      },
    },
    async ({ client, serverPid }) => {
      await client.workflow.execute('dialogueShapedNoops', {
        workflowId: 'warm-up',
        taskQueue: 'shaped',
        args: [2, 2],
      });
      const before = { self: process.cpuUsage(), server: await options.cpuMs(serverPid) };
      const started = performance.now();
      await Promise.all(
        Array.from({ length: options.workflows }, (_, i) =>
          client.workflow.execute(options.oneActivity ? 'dialogueShapedOneActivity' : 'dialogueShapedNoops', {
            workflowId: `shaped-${i}`,
            taskQueue: 'shaped',
            args: [options.dialogues, options.lanes],
          }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const self = process.cpuUsage(before.self);
      const calls = options.workflows * options.dialogues * 2;
      return {
        calls,
        seconds,
        workerCpuMsPerCall: (self.user + self.system) / 1000 / calls,
        serverCpuMsPerCall: ((await options.cpuMs(serverPid)) - before.server) / calls,
      };
    },
  );
}
