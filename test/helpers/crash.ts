/**
 * What the crash tests and the soak kill and bring back: a Temporal server on a file it restarts on,
 * and `consistent-chat worker` processes; and how they count what reached the output.
 */
import type { WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/client/dev-server';
import { spawnCli } from './cli';
import { sleep } from './wait';

/** Lines in a JSONL file; 0 while it does not exist yet. */
export async function countLines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** A dev server persisting to `dir/temporal.db`, SIGKILLed and started again on the same port. */
export interface RestartableServer {
  readonly address: string;
  readonly dbFile: string;
  /** SIGKILL, then the same database on the same port, so connected workers find it again. */
  killAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableServer(dir: string): Promise<RestartableServer> {
  const files = {
    dbFile: join(dir, 'temporal.db'),
    stateFile: join(dir, 'server.json'),
    logFile: join(dir, 'server.log'),
  };
  let server: DevServer = await startDevServer(files);
  const port = Number(server.address.split(':')[1]);
  return {
    get address() {
      return server.address;
    },
    dbFile: files.dbFile,
    async killAndRestart() {
      process.kill(server.pid, 'SIGKILL');
      // A crash is followed by a moment of absence; the start below waits for the port itself.
      await sleep(1_000);
      server = await startDevServer({ ...files, port });
    },
    stop: () => server.stop(),
  };
}

/** `consistent-chat worker` on `taskQueue` against a test LLM server; its stderr to `log` when given. */
export function spawnWorker(options: {
  address: string;
  taskQueue: string;
  outRoot: string;
  llm: { url: string; apiKey: string };
  log?: WriteStream;
}): ReturnType<typeof spawnCli> {
  const started = spawnCli(
    [
      'worker',
      '--temporal-address',
      options.address,
      '--task-queue',
      options.taskQueue,
      '--out-root',
      options.outRoot,
    ],
    { OPENAI_API_KEY: options.llm.apiKey, OPENAI_BASE_URL: options.llm.url },
  );
  if (options.log) started.child.stderr!.pipe(options.log, { end: false });
  return started;
}
