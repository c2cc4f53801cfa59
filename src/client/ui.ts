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
import { startCodecServer } from './codec-server';
import { connectClient, createClient, embeddedConnection, resolveEncryptionKeys } from './connection';
import { isRecordedServer, startDevServer, type ServerState } from './dev-server';
import { checkRunDecodes } from './generate';

export interface UiOptions {
  dir: string;
  /** Resolves when the UI should stop (Ctrl-C). */
  until: Promise<unknown>;
  print: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /**
   * Payload keys, as for every command that talks to Temporal. @default CONSISTENT_CHAT_ENCRYPTION_KEY;
   * with none, an encrypted run's payloads show as ciphertext, and the command says so.
   */
  encryptionKeyFile?: string;
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
  const keys = resolveEncryptionKeys(options.encryptionKeyFile, options.env);
  // As `generate` does: the UI decodes through a codec endpoint served by this process.
  const codec = keys ? await startCodecServer({ keys }) : undefined;
  try {
    const server = await startDevServer({
      dbFile,
      stateFile,
      logFile: join(stateDir, 'server.log'),
      uiCodecEndpoint: codec?.endpoint,
      env: options.env,
    });
    try {
      // The UI's port is only known now; the browser may call it by either name.
      const port = new URL(server.uiUrl).port;
      for (const host of ['127.0.0.1', 'localhost']) codec?.allowOrigin(`http://${host}:${port}`);
      if (runId) await warnIfUnreadable(server.address, runId, keys, options.print);
      options.print(`Temporal UI of ${dir}: ${runUrl(server.uiUrl, runId)}`);
      options.print(`Temporal server ${server.address}; Ctrl-C stops it`);
      await options.until;
    } finally {
      await server.stop();
    }
  } finally {
    await codec?.close();
  }
}

/** The UI still opens without the run's key (ids, statuses and timings are readable); it says what is missing. */
async function warnIfUnreadable(
  address: string,
  runId: string,
  keys: Parameters<typeof checkRunDecodes>[2],
  print: (line: string) => void,
): Promise<void> {
  const connection = await connectClient(embeddedConnection(address, DEFAULT_TEMPORAL_NAMESPACE));
  try {
    await checkRunDecodes(createClient(connection, DEFAULT_TEMPORAL_NAMESPACE, keys), runId, keys);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    print(
      `warning: ${error.message}; the UI shows its payloads encrypted: pass --encryption-key-file F or set CONSISTENT_CHAT_ENCRYPTION_KEY`,
    );
  } finally {
    await connection.close();
  }
}
