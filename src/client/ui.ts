/**
 * `consistent-chat ui DIR`: the Temporal UI over a run's embedded history after its `generate` has
 * exited (finished or crashed). Starts the dev server on `DIR/.temporal/temporal.db` and stops it on
 * Ctrl-C. While the run's own server is up, its address is printed instead: two servers must never
 * share one database file.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_TEMPORAL_NAMESPACE, OUTPUT_FILES } from '../shared/constants';
import { ConfigError } from '../shared/errors';
import { isRecordedServer, startDevServer, type ServerState } from './dev-server';

export interface UiOptions {
  dir: string;
  /** Resolves when the UI should stop (Ctrl-C). */
  until: Promise<unknown>;
  print: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export function runUrl(
  uiUrl: string,
  runId: string | undefined,
  namespace = DEFAULT_TEMPORAL_NAMESPACE,
): string {
  const base = `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows`;
  return runId ? `${base}/${encodeURIComponent(runId)}` : base;
}

export async function serveUi(options: UiOptions): Promise<void> {
  const dir = resolve(options.dir);
  const stateDir = join(dir, '.temporal');
  const dbFile = join(stateDir, 'temporal.db');
  if (!existsSync(dbFile))
    throw new ConfigError('DIR', `${dir} holds no embedded Temporal history (${dbFile} is missing)`);
  const runId = await readFile(join(dir, OUTPUT_FILES.run), 'utf8').then(
    (text) => (JSON.parse(text) as { runId?: string }).runId,
    () => undefined,
  );
  const stateFile = join(stateDir, 'server.json');
  const running = await readFile(stateFile, 'utf8').then(
    (text) => JSON.parse(text) as ServerState,
    () => undefined,
  );
  // Checked, not just alive: after a reboot or a crash the recorded pid may be another process's now.
  if (running && running.dbFile === dbFile && isRecordedServer(running)) {
    options.print(`the run's server is up (pid ${running.pid}): ${runUrl(running.uiUrl, runId)}`);
    return;
  }
  const server = await startDevServer({
    dbFile,
    stateFile,
    logFile: join(stateDir, 'server.log'),
    env: options.env,
  });
  try {
    options.print(`Temporal UI of ${dir}: ${runUrl(server.uiUrl, runId)}`);
    options.print(`Temporal server ${server.address}; Ctrl-C stops it`);
    await options.until;
  } finally {
    await server.stop();
  }
}
