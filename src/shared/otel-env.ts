/**
 * Whether the standard OpenTelemetry variables ask for traces, checked without loading the SDK, so
 * that processes that do not trace never load it (src/tracing.ts installs it).
 */
import { ConfigError } from './errors';

const HTTP_PROTOCOLS = new Set(['http/protobuf', 'http/json']);

/**
 * Whether the environment asks for traces: an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `…_TRACES_ENDPOINT`), `OTEL_TRACES_EXPORTER` is not `none` and `OTEL_SDK_DISABLED` is not `true`.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/** Checks the variables before any work: only OTLP over HTTP is built in. */
export function checkTracingEnv(env: NodeJS.ProcessEnv): void {
  if (!tracingRequested(env)) return;
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const) {
    const value = env[name]?.trim();
    if (value && !HTTP_PROTOCOLS.has(value))
      throw new ConfigError(
        name,
        `only http/protobuf and http/json are supported, got ${JSON.stringify(value)}`,
      );
  }
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter && exporter !== 'otlp')
    throw new ConfigError(
      'OTEL_TRACES_EXPORTER',
      `only otlp (or none) is supported, got ${JSON.stringify(exporter)}`,
    );
}
