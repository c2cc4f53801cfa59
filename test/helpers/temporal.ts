/** Temporal servers for tests: the time-skipping test server, and a real dev server on loopback. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { findTestServer, startDevServer, type DevServer } from '../../src/client/dev-server';

let counter = 0;
/** A task queue or workflow id nobody else in this process uses. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

export async function tempDir(prefix = 'cc-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const path = findTestServer();
  if (!path)
    throw new Error('temporal-test-server not found: run scripts/setup.sh or set TEMPORAL_TEST_SERVER_PATH');
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path } },
  });
}

export interface TestDevServer extends DevServer {
  dir: string;
  dispose(): Promise<void>;
}

/** A real `temporal server start-dev` on loopback, persisted to a file in a fresh temp dir. */
export async function devServer(
  dynamicConfig?: Record<string, string | number | boolean>,
  dir?: string,
): Promise<TestDevServer> {
  quietRuntime();
  const root = dir ?? (await tempDir('cc-temporal-'));
  const server = await startDevServer({
    dbFile: join(root, 'temporal.db'),
    stateFile: join(root, 'server.json'),
    logFile: join(root, 'server.log'),
    dynamicConfig,
  });
  return {
    ...server,
    dir: root,
    async dispose() {
      await server.stop();
      if (!dir) await rm(root, { recursive: true, force: true });
    },
  };
}

/** A dev server with a client and a worker connection to it. */
export interface TemporalFixture {
  readonly server: TestDevServer;
  readonly client: Client;
  readonly connection: NativeConnection;
}

/** A dev server and its connections; `close` ends all three, and a failed start leaves no server behind. */
export async function openTemporal(
  dynamicConfig?: Record<string, string | number | boolean>,
): Promise<TemporalFixture & { close(): Promise<void> }> {
  const server = await devServer(dynamicConfig);
  let client: Client | undefined;
  try {
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const connection = await NativeConnection.connect({ address: server.address });
    return {
      server,
      client,
      connection,
      async close() {
        await client!.connection.close();
        await connection.close();
        await server.dispose();
      },
    };
  } catch (error) {
    await client?.connection.close();
    await server.dispose();
    throw error;
  }
}

/**
 * One dev server for the whole test file: started in `before`, closed in `after`. Read the fields
 * inside tests only; before the hook has run they throw rather than hand out `undefined`.
 */
export function useTemporal(dynamicConfig?: Record<string, string | number | boolean>): TemporalFixture {
  let open: Awaited<ReturnType<typeof openTemporal>> | undefined;
  before(async () => {
    open = await openTemporal(dynamicConfig);
  });
  after(async () => {
    await open?.close();
  });
  const started = () => {
    if (!open) throw new Error('useTemporal: the dev server is not up yet (read it inside a test)');
    return open;
  };
  return {
    get server() {
      return started().server;
    },
    get client() {
      return started().client;
    },
    get connection() {
      return started().connection;
    },
  };
}

let runtimeInstalled = false;
/** SDK logs at WARN and above only, so test output stays readable. Call before any worker exists. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}
