/** Temporal servers for tests: the time-skipping test server, and a real dev server on loopback. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
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

let runtimeInstalled = false;
/** SDK logs at WARN and above only, so test output stays readable. Call before any worker exists. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}
