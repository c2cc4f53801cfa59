/**
 * The one definition of how this package connects to Temporal, shared by the CLI, `worker`, `generate`
 * and the programmatic API. Settings come the way Temporal's own tools take them
 * (`@temporalio/envconfig`): a profile of `temporal.toml` (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`),
 * then `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`, then flags.
 * Credentials stay in this process: nothing here is written to `run.json`, a workflow input or a log.
 */
import { readFileSync } from 'node:fs';
import {
  Client,
  Connection,
  type ClientInterceptors,
  type ConnectionOptions,
  type TLSConfig,
} from '@temporalio/client';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { NativeConnection, NativeConnectionOptions } from '@temporalio/worker';
import {
  encryptionDataConverter,
  EncryptionKeyError,
  loadEncryptionKeys,
  type EncryptionKeys,
} from '../shared/encryption/codec';
import { DEFAULT_TEMPORAL_NAMESPACE } from '../shared/constants';
import { redact } from '../shared/redact';
import { ConfigError } from '../shared/errors';

/** What a caller can set on top of the environment and the profile; every field wins over both. */
export interface ConnectionFlags {
  /** `host:port` of the frontend. */
  address?: string;
  namespace?: string;
  /** Profile of `temporal.toml`. @default TEMPORAL_PROFILE, else "default" */
  profile?: string;
  /** Temporal Cloud API key; prefer TEMPORAL_API_KEY (flags show up in process lists). */
  apiKey?: string;
  /** Turns TLS on (true) or off (false); on by default with an API key or a client certificate. */
  tls?: boolean;
  /** PEM files of an mTLS client certificate and its key. */
  tlsCertPath?: string;
  tlsKeyPath?: string;
  /** PEM file of the CA that signed the server's certificate (self-hosted clusters). */
  tlsCaPath?: string;
  /** Name to check the server's certificate against, when it differs from the address's host. */
  tlsServerName?: string;
}

/** A resolved connection: what to dial and how. `address` is undefined when nothing names a server. */
export interface TemporalConnectionConfig {
  address?: string;
  namespace: string;
  apiKey?: string;
  tls?: TLSConfig | boolean;
  metadata?: NativeConnectionOptions['metadata'];
}

/** The flag each profile field can be set by, for one-line errors. */
const FIELD_SOURCES = {
  profile: '--profile (TEMPORAL_PROFILE)',
  tls: '--tls-cert/--tls-key/--tls-ca (TEMPORAL_TLS_*)',
} as const;

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(
      flag,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/**
 * Resolves where and how to connect: profile, then environment, then flags. Throws `ConfigError`
 * naming the setting on a missing profile, an unreadable certificate or a malformed config file.
 */
export function resolveConnection(flags: ConnectionFlags = {}, env = process.env): TemporalConnectionConfig {
  let profile;
  try {
    profile = loadClientConfigProfile({ profile: flags.profile, overrideEnvVars: stringEnv(env) });
  } catch (error) {
    const message = (error as Error).message.split('\n')[0]!;
    const field = /TOML|Validation error/i.test(message)
      ? 'TEMPORAL_CONFIG_FILE'
      : /not found|Profile/.test(message)
        ? FIELD_SOURCES.profile
        : FIELD_SOURCES.tls;
    throw new ConfigError(field, redact(message));
  }
  let resolved;
  try {
    resolved = toClientOptions(profile);
  } catch (error) {
    throw new ConfigError(FIELD_SOURCES.tls, redact((error as Error).message.split('\n')[0]!));
  }
  const options = resolved.connectionOptions;
  const apiKey = flags.apiKey ?? options.apiKey;
  let tls: TLSConfig | boolean | undefined = options.tls ?? (flags.apiKey ? true : undefined);
  if (flags.tlsCertPath || flags.tlsKeyPath || flags.tlsCaPath || flags.tlsServerName) {
    if (Boolean(flags.tlsCertPath) !== Boolean(flags.tlsKeyPath))
      throw new ConfigError(
        flags.tlsCertPath ? '--tls-key' : '--tls-cert',
        'an mTLS client certificate needs both --tls-cert and --tls-key',
      );
    const base: TLSConfig = typeof tls === 'object' ? tls : {};
    tls = {
      ...base,
      ...(flags.tlsServerName ? { serverNameOverride: flags.tlsServerName } : {}),
      ...(flags.tlsCaPath ? { serverRootCACertificate: readPem('--tls-ca', flags.tlsCaPath) } : {}),
      ...(flags.tlsCertPath && flags.tlsKeyPath
        ? {
            clientCertPair: {
              crt: readPem('--tls-cert', flags.tlsCertPath),
              key: readPem('--tls-key', flags.tlsKeyPath),
            },
          }
        : {}),
    };
  }
  if (flags.tls === false) tls = false;
  else if (flags.tls === true && !tls) tls = true;
  if (tls && typeof tls === 'object' && Boolean(tls.clientCertPair?.crt) !== Boolean(tls.clientCertPair?.key))
    throw new ConfigError(FIELD_SOURCES.tls, 'an mTLS client certificate needs both a certificate and a key');
  return {
    // An empty TEMPORAL_ADDRESS (or flag) names no server: the embedded one is used, as when unset.
    address: (flags.address ?? options.address) || undefined,
    namespace: flags.namespace ?? resolved.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    ...(apiKey ? { apiKey } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(options.metadata && Object.keys(options.metadata).length > 0 ? { metadata: options.metadata } : {}),
  };
}

/** Where a connection goes and whether it is protected, for messages: never a credential. */
export function describeConnection(config: TemporalConnectionConfig): string {
  const security = [config.tls ? 'TLS' : undefined, config.apiKey ? 'API key' : undefined]
    .filter(Boolean)
    .join(', ');
  return `${config.address ?? '(no address)'}${security ? ` (${security})` : ''}`;
}

function connectionOptions(config: TemporalConnectionConfig, address: string) {
  return {
    address,
    ...(config.tls !== undefined ? { tls: config.tls } : {}),
    ...(config.apiKey ? { apiKey: config.apiKey } : {}),
    ...(config.metadata ? { metadata: config.metadata } : {}),
  };
}

/** The same settings pointed at another address (the embedded server), keeping nothing else. */
export function embeddedConnection(address: string, namespace: string): TemporalConnectionConfig {
  return { address, namespace };
}

function requireAddress(config: TemporalConnectionConfig): string {
  if (!config.address)
    throw new ConfigError(
      '--temporal-address',
      'no Temporal server: pass --temporal-address, set TEMPORAL_ADDRESS, or name one in a temporal.toml profile',
    );
  return config.address;
}

/** A client connection, checked to reach the server and its namespace, or a one-line `ConfigError`. */
export async function connectClient(config: TemporalConnectionConfig): Promise<Connection> {
  const address = requireAddress(config);
  try {
    const connection = await Connection.connect({
      ...(connectionOptions(config, address) as ConnectionOptions),
      connectTimeout: 5_000,
    });
    try {
      await connection.workflowService.getSystemInfo({});
      await connection.workflowService.describeNamespace({ namespace: config.namespace });
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
    return connection;
  } catch (error) {
    throw new ConfigError(
      '--temporal-address',
      `cannot reach Temporal at ${describeConnection(config)} (namespace ${config.namespace}): ${redact((error as Error).message)}`,
    );
  }
}

/** A worker connection with the same settings. */
export async function connectWorker(config: TemporalConnectionConfig): Promise<NativeConnection> {
  const address = requireAddress(config);
  // Loaded here: commands that start no worker never load the SDK's worker.
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect(connectionOptions(config, address));
}

/** A client on `connection` that seals and opens payloads with `keys` (and names the variable without them). */
export function createClient(
  connection: Connection,
  namespace: string,
  keys: EncryptionKeys | undefined,
  interceptors?: ClientInterceptors,
): Client {
  return new Client({ connection, namespace, dataConverter: encryptionDataConverter(keys), interceptors });
}

/**
 * A tracing process's client: starting the run is the root span of its trace. Only the start: the
 * progress view's queries (one a second) would each be a trace of their own.
 */
export async function tracingClientInterceptors(): Promise<ClientInterceptors> {
  const { OpenTelemetryWorkflowClientInterceptor } = await import('@temporalio/interceptors-opentelemetry');
  const traced = new OpenTelemetryWorkflowClientInterceptor();
  return { workflow: [{ start: (input, next) => traced.start(input, next) }] };
}

/** The payload encryption keys from `--encryption-key-file` or CONSISTENT_CHAT_ENCRYPTION_KEY, as a `ConfigError`. */
export function resolveEncryptionKeys(
  keyFile: string | undefined,
  env = process.env,
): EncryptionKeys | undefined {
  try {
    return loadEncryptionKeys({ keyFile, env });
  } catch (error) {
    if (error instanceof EncryptionKeyError) throw new ConfigError(error.field, error.detail);
    throw error;
  }
}
