/**
 * Where a worker process serves Prometheus metrics: `--metrics-port` or `CONSISTENT_CHAT_METRICS_PORT`,
 * on `CONSISTENT_CHAT_METRICS_HOST` (127.0.0.1 unless set: metrics name runs and intents, which are
 * nobody else's business by default). Checked before any work, like every other input.
 */
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { ConfigError } from '../shared/errors';
import type { MetricsExport } from './logging';

/** @default 127.0.0.1 */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

const portSchema = z
  .string()
  .regex(/^\d+$/, 'must be a whole number')
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be 1-65535').max(65_535, 'must be 1-65535'));
// The SDK's exporter binds an IP socket address, not a host name.
const hostSchema = z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' });

/** The exporter's bind address (`HOST:PORT`) and the input it came from, or undefined when no port is asked for. */
export function metricsExport(flag: string | undefined, env: NodeJS.ProcessEnv): MetricsExport | undefined {
  const [field, raw] =
    flag !== undefined
      ? ['--metrics-port', flag]
      : ['CONSISTENT_CHAT_METRICS_PORT', env.CONSISTENT_CHAT_METRICS_PORT];
  if (raw === undefined || (flag === undefined && raw === '')) return undefined;
  const port = portSchema.safeParse(raw.trim());
  if (!port.success)
    throw new ConfigError(field, `${port.error.issues[0]!.message}, got ${JSON.stringify(raw)}`);
  const hostRaw = env.CONSISTENT_CHAT_METRICS_HOST?.trim() || DEFAULT_METRICS_HOST;
  const host = hostSchema.safeParse(hostRaw);
  if (!host.success)
    throw new ConfigError(
      'CONSISTENT_CHAT_METRICS_HOST',
      `${host.error.issues[0]!.message}, got ${JSON.stringify(hostRaw)}`,
    );
  const bindAddress = isIPv6(host.data) ? `[${host.data}]:${port.data}` : `${host.data}:${port.data}`;
  return { bindAddress, field };
}
