/**
 * Where the SDK's own log lines go. A terminal shows the progress view and our one-line messages; the
 * SDK's worker-state INFO lines and the WARN lines of a connection being retried go to
 * `DIR/consistent-chat.log` instead (or to the `logger` a library user passes).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { formatWithOptions } from 'node:util';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import type { Runtime, RuntimeOptions } from '@temporalio/worker';
import { ConfigError } from '../shared/errors';

export const LOG_FILE = 'consistent-chat.log';

const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/** Messages the SDK logs that describe intended behaviour, not a problem (the storage worker runs no workflows). */
const EXPECTED_MESSAGES = new Set(['No workflows registered, not polling for workflow tasks']);

/** `LOG_LEVEL` if it names a level. @default fallback */
export function logLevelFromEnv(env: NodeJS.ProcessEnv, fallback: LogLevel): LogLevel {
  const value = env.LOG_LEVEL?.trim().toUpperCase();
  return LEVELS.includes(value as LogLevel) ? (value as LogLevel) : fallback;
}

abstract class FilteringLogger implements Logger {
  abstract log(level: LogLevel, message: string, meta?: LogMetadata): void;
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}

/**
 * The process's one SDK logger. It writes to the current run's log file (or to the logger a caller
 * set); lines logged before a run's directory exists wait in a small buffer.
 */
class RoutingLogger extends FilteringLogger {
  private fd: number | undefined;
  private target: Logger | undefined;
  private pending: string[] = [];
  level: LogLevel = 'INFO';

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.level) || EXPECTED_MESSAGES.has(message)) return;
    if (this.target) {
      this.target.log(level, message, meta);
      return;
    }
    const fields = meta ? Object.fromEntries(Object.entries(meta)) : {};
    const line = `${new Date().toISOString()} [${level}] ${message}${Object.keys(fields).length ? ` ${formatWithOptions({ breakLength: Infinity }, '%o', fields)}` : ''}\n`;
    if (this.fd === undefined) {
      if (this.pending.length < 1_000) this.pending.push(line);
      return;
    }
    try {
      writeSync(this.fd, line);
    } catch {
      // A full disk must not take the run down with it.
    }
  }

  /** Sends lines to `file` (appending) or to `logger`, until the returned function is called. */
  route(to: { file: string } | { logger: Logger }): () => void {
    this.close();
    if ('logger' in to) this.target = to.logger;
    else {
      this.fd = openSync(to.file, 'a', 0o600);
      for (const line of this.pending.splice(0)) writeSync(this.fd, line);
    }
    return () => this.close();
  }

  private close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.target = undefined;
  }
}

/** Writes to stderr like the SDK's default, without the lines that only describe intended behaviour. */
class QuietStderrLogger extends FilteringLogger {
  constructor(private readonly inner: Logger) {
    super();
  }
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (!EXPECTED_MESSAGES.has(message)) this.inner.log(level, message, meta);
  }
}

let routing: RoutingLogger | undefined;

/** Native (Rust core) lines are forwarded to the same logger; the SDK's default prints them to stderr. */
const FORWARD_NATIVE_LOGS = { logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } } } as const;

/** A Prometheus exporter for the runtime: `bindAddress` (`HOST:PORT`), `field` the input it came from. */
export interface MetricsExport {
  bindAddress: string;
  field: string;
}

/** The runtime's telemetry: native log forwarding, plus the Prometheus exporter when asked for. */
function telemetry(metrics: MetricsExport | undefined) {
  return metrics
    ? { ...FORWARD_NATIVE_LOGS, metrics: { prometheus: { bindAddress: metrics.bindAddress } } }
    : FORWARD_NATIVE_LOGS;
}

/** Installs the runtime; an exporter that cannot bind is the input's fault (a port in use), named as such. */
function install(options: RuntimeOptions, metrics: MetricsExport | undefined, runtime: typeof Runtime): void {
  try {
    runtime.install(options);
  } catch (error) {
    if (metrics && /prometheus/i.test((error as Error).message))
      throw new ConfigError(
        metrics.field,
        `cannot serve metrics on ${metrics.bindAddress}: ${(error as Error).message}`,
      );
    throw error;
  }
}

/**
 * The process's routing logger; the SDK sends its lines there once `installRoutedRuntime` ran. Apart
 * from the install, so the CLI can route its run log before it loads the SDK's worker.
 */
export function routedRuntimeLogger(env: NodeJS.ProcessEnv = process.env): RoutingLogger {
  if (!routing) {
    routing = new RoutingLogger();
    routing.level = logLevelFromEnv(env, 'INFO');
  }
  return routing;
}

/**
 * Installs the SDK runtime with the routing logger, unless the process already has one (a library
 * user's own `Runtime.install` wins). Signals stay with the caller: the CLI stops its workers itself.
 * Must run before the first worker connection, which would install the SDK's default runtime.
 */
export async function installRoutedRuntime(
  env: NodeJS.ProcessEnv = process.env,
  metrics?: MetricsExport,
): Promise<void> {
  const { Runtime } = await import('@temporalio/worker');
  if (Runtime._instance !== undefined) return;
  install(
    { logger: routedRuntimeLogger(env), telemetryOptions: telemetry(metrics), shutdownSignals: [] },
    metrics,
    Runtime,
  );
}

/** For `consistent-chat worker`, a service that logs to stderr: warnings and up unless LOG_LEVEL says otherwise. */
export async function installStderrRuntime(
  env: NodeJS.ProcessEnv = process.env,
  metrics?: MetricsExport,
): Promise<void> {
  const { DefaultLogger, Runtime } = await import('@temporalio/worker');
  if (Runtime._instance !== undefined) return;
  install(
    {
      logger: new QuietStderrLogger(new DefaultLogger(logLevelFromEnv(env, 'WARN'))),
      telemetryOptions: telemetry(metrics),
      shutdownSignals: [], // the CLI's own handler stops the worker (and exits 143 / 130)
    },
    metrics,
    Runtime,
  );
}
