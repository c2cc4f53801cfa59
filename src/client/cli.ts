#!/usr/bin/env node
/**
 * `consistent-chat`: generate (embedded or against a cluster), worker, status, pause, resume, cancel.
 * Bad input gets one line naming the field and exit code 2 before any workflow starts.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CancelledFailure, type Client, WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { Command, CommanderError, Option } from 'commander';
import { INTENT_IDS, resolveIntent, type IntentId } from '../method/intents';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_DIALOGS_PER_INTENT,
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPERATURE,
  DEFAULT_TEMPORAL_NAMESPACE,
  DEFAULT_TURNS_PER_DIALOG,
  MAX_CONCURRENCY,
  MAX_DIALOGS_PER_INTENT,
  OUTPUT_FILES,
  RESPONSE_FORMAT_MODES,
} from '../shared/constants';
import { pauseSignal, resumeSignal } from '../shared/messages';
import { redact } from '../shared/redact';
import type { RunInput, RunSummary } from '../shared/schemas';
import { StoreRegistry } from '../storage/jsonl-store';
import {
  ConfigError,
  createGenerationWorker,
  createOpenAiClient,
  createStorageWorker,
  DEFAULT_MAX_CACHED_WORKFLOWS,
} from '../worker';
import { startCodecServer } from './codec-server';
import {
  connectClient,
  connectWorker,
  createClient,
  describeConnection,
  embeddedConnection,
  resolveConnection,
  resolveEncryptionKeys,
  type ConnectionFlags,
} from './connection';
import { checkRunDecodes, generate, readProgress } from './generate';
import { readConfigFile } from './config-file';
import { preflightEndpoint } from './preflight';
import { createProgressView, formatSummary } from './progress';

export const EXIT_CODES = { ok: 0, failures: 1, badInput: 2, interrupted: 130 } as const;

function number(flag: string, raw: string | undefined, integer = true): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value))
    throw new ConfigError(flag, `must be a number, got "${raw}"`);
  if (integer && !Number.isInteger(value))
    throw new ConfigError(flag, `must be a whole number, got "${raw}"`);
  return value;
}

function intents(raw: string | undefined): IntentId[] | undefined {
  if (raw === undefined) return undefined;
  return raw.split(',').map((name) => {
    const id = resolveIntent(name);
    if (!id)
      throw new ConfigError('--intents', `unknown intent "${name.trim()}"; known: ${INTENT_IDS.join(', ')}`);
    return id;
  });
}

interface TemporalFlags {
  temporalAddress?: string;
  namespace?: string;
  taskQueue?: string;
  profile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
  encryptionKeyFile?: string;
}

/** The connection flags of a command, in the shape `resolveConnection` takes. */
function connectionFlags(opts: TemporalFlags): ConnectionFlags {
  return {
    address: opts.temporalAddress,
    namespace: opts.namespace,
    profile: opts.profile,
    tlsCertPath: opts.tlsCert,
    tlsKeyPath: opts.tlsKey,
    tlsCaPath: opts.tlsCa,
    tlsServerName: opts.tlsServerName,
  };
}

const temporalOptions = (cmd: Command) =>
  cmd
    .option(
      '--temporal-address <host:port>',
      'Temporal frontend; default TEMPORAL_ADDRESS, else an embedded dev server',
    )
    .option(
      '--namespace <ns>',
      `Temporal namespace (default TEMPORAL_NAMESPACE or "${DEFAULT_TEMPORAL_NAMESPACE}")`,
    )
    .option(
      '--task-queue <queue>',
      `task queue (default CONSISTENT_CHAT_TASK_QUEUE or "${DEFAULT_TASK_QUEUE}")`,
    )
    .option('--profile <name>', 'temporal.toml profile (default TEMPORAL_PROFILE or "default")')
    .option('--tls-cert <file>', 'mTLS client certificate, PEM (default TEMPORAL_TLS_CLIENT_CERT_PATH)')
    .option('--tls-key <file>', 'mTLS client key, PEM (default TEMPORAL_TLS_CLIENT_KEY_PATH)')
    .option('--tls-ca <file>', 'CA of the server certificate, PEM (default TEMPORAL_TLS_SERVER_CA_CERT_PATH)')
    .option('--tls-server-name <name>', 'server name to verify (default TEMPORAL_TLS_SERVER_NAME)')
    .option(
      '--encryption-key-file <file>',
      'payload encryption keys, [KEYID:]BASE64 per line (default CONSISTENT_CHAT_ENCRYPTION_KEY)',
    );

/** Quiet SDK logs on the terminal: warnings and errors only, unless LOG_LEVEL says otherwise. */
function installRuntime(): void {
  const level = (process.env.LOG_LEVEL?.toUpperCase() ?? 'WARN') as LogLevel;
  Runtime.install({ logger: new DefaultLogger(level) });
}

async function runGenerate(opts: Record<string, string | boolean | undefined>): Promise<number> {
  const str = (key: string) => (typeof opts[key] === 'string' ? opts[key] : undefined);
  const fromFile = str('config') ? await readConfigFile(str('config')!) : {};
  const flags: Partial<RunInput> & { outDir: string } = {
    outDir: str('out')!,
    runId: str('runId'),
    model: str('model'),
    numDialogsPerIntent: number('--dialogs-per-intent', str('dialogsPerIntent')),
    numTurnsPerDialog: number('--turns', str('turns')),
    temperature: number('--temperature', str('temperature'), false),
    concurrency: number('--concurrency', str('concurrency')),
    intents: intents(str('intents')),
    seed: str('seed'),
    responseFormat: str('responseFormat') as RunInput['responseFormat'],
    rateLimit:
      str('rpm') || str('tpm')
        ? { requestsPerMinute: number('--rpm', str('rpm')), tokensPerMinute: number('--tpm', str('tpm')) }
        : undefined,
    maxAttempts: undefined,
  } as Partial<RunInput> & { outDir: string };
  const attempts = number('--max-attempts', str('maxAttempts'));
  if (attempts !== undefined) flags.retry = { ...fromFile.retry, maximumAttempts: attempts };
  delete (flags as Record<string, unknown>).maxAttempts;
  // Flags win over the file; fields neither sets stay unset so an earlier run in --out can supply them.
  const run = {
    ...fromFile,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  } as typeof flags;

  installRuntime();
  const view = createProgressView();
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let summary: RunSummary;
  try {
    const result = await generate({
      run,
      temporal: {
        ...connectionFlags(opts),
        taskQueue: str('taskQueue'),
        encryptionKeyFile: str('encryptionKeyFile'),
      },
      llm: { baseURL: str('baseUrl') },
      localWorker: opts.worker !== false,
      signal: controller.signal,
      onStarted: ({ runId, resumed, attached, address, uiUrl }) => {
        const verb = attached ? 'attached to' : resumed ? 'resuming' : 'started';
        process.stderr.write(`${verb} run ${runId} on Temporal ${address}${uiUrl ? `, UI ${uiUrl}` : ''}\n`);
      },
      onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
      onProgress: (p) => view.update(p),
    });
    view.stop();
    summary = result.summary;
    if (result.alreadyFinished) process.stderr.write(`run ${summary.runId} had already finished\n`);
  } catch (error) {
    view.stop();
    if (controller.signal.aborted) {
      process.stderr.write('interrupted: the run is saved; run the same command again to resume it\n');
      return EXIT_CODES.interrupted;
    }
    if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
      process.stderr.write(`the run was cancelled; what was written in ${resolve(run.outDir)} stays valid\n`);
      return EXIT_CODES.failures;
    }
    throw error;
  }
  process.stdout.write(`${formatSummary(summary)}\n`);
  return summary.failed > 0 ? EXIT_CODES.failures : EXIT_CODES.ok;
}

async function runWorker(opts: Record<string, string | boolean | undefined>): Promise<number> {
  const str = (key: string) => (typeof opts[key] === 'string' ? opts[key] : undefined);
  const target = resolveConnection(connectionFlags(opts));
  const keys = resolveEncryptionKeys(str('encryptionKeyFile'));
  const address = target.address;
  if (!address)
    throw new ConfigError(
      '--temporal-address',
      'a worker needs a Temporal server: pass --temporal-address, set TEMPORAL_ADDRESS or use a temporal.toml profile',
    );
  const namespace = target.namespace;
  const taskQueue = str('taskQueue') ?? process.env.CONSISTENT_CHAT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const maxConcurrent = number('--max-concurrent-calls', str('maxConcurrentCalls'));
  const maxCachedWorkflows = number('--max-cached-workflows', str('maxCachedWorkflows'));
  if (maxCachedWorkflows !== undefined && maxCachedWorkflows < 1)
    throw new ConfigError('--max-cached-workflows', `must be at least 1, got ${maxCachedWorkflows}`);
  const storageOnly = opts.storageOnly === true;
  const openai = storageOnly ? undefined : createOpenAiClient({ baseURL: str('baseUrl') });
  if (openai) {
    const { warning } = await preflightEndpoint(openai, undefined);
    if (warning) process.stderr.write(`warning: ${warning}\n`);
  }
  await (await connectClient(target)).close();
  installRuntime();
  const connection = await connectWorker(target);
  const storage = opts.storage === false ? undefined : new StoreRegistry();
  const outRoot = str('outRoot') ? resolve(str('outRoot')!) : undefined;
  const worker = storageOnly
    ? await createStorageWorker({
        connection,
        namespace,
        taskQueue: str('storageTaskQueue') ?? `${taskQueue}.storage`,
        storage: storage!,
        outRoot,
        encryption: keys,
      })
    : await createGenerationWorker({
        connection,
        namespace,
        taskQueue,
        openai: openai!,
        storage,
        outRoot,
        maxConcurrentLlmCalls: maxConcurrent,
        maxCachedWorkflows,
        encryption: keys,
      });
  process.stderr.write(
    `worker on ${describeConnection(target)}${keys ? ', payloads encrypted' : ''}, task queue ${storageOnly ? (str('storageTaskQueue') ?? `${taskQueue}.storage`) : taskQueue}; SIGTERM drains calls in flight\n`,
  );
  try {
    await worker.run();
  } finally {
    await storage?.closeAll();
    await connection.close();
  }
  return EXIT_CODES.ok;
}

/** Finds the Temporal server of a run: a flag, the environment, or the embedded server of `--out DIR`. */
async function clientFor(opts: TemporalFlags & { out?: string }): Promise<Client> {
  const target = resolveConnection(connectionFlags(opts));
  const keys = resolveEncryptionKeys(opts.encryptionKeyFile);
  let address = target.address;
  if (!address && opts.out) {
    try {
      address = (
        JSON.parse(await readFile(join(resolve(opts.out), '.temporal', 'server.json'), 'utf8')) as {
          address: string;
        }
      ).address;
    } catch {
      throw new ConfigError(
        '--out',
        `no running embedded Temporal server for ${opts.out}; is its generate command running?`,
      );
    }
  }
  if (!address)
    throw new ConfigError(
      '--temporal-address',
      'pass --temporal-address, set TEMPORAL_ADDRESS, or pass --out DIR of an embedded run',
    );
  const connection = await connectClient(
    target.address ? target : embeddedConnection(address, target.namespace),
  );
  return createClient(connection, target.namespace, keys);
}

/** `status` and the signals read the run's payloads: a wrong or missing key is a one-line error. */
async function checkedClientFor(runId: string, opts: TemporalFlags & { out?: string }): Promise<Client> {
  const client = await clientFor(opts);
  await checkRunDecodes(client, runId, resolveEncryptionKeys(opts.encryptionKeyFile));
  return client;
}

async function runCodecServer(opts: Record<string, string | undefined>): Promise<number> {
  const keys = resolveEncryptionKeys(opts.encryptionKeyFile);
  if (!keys)
    throw new ConfigError(
      'CONSISTENT_CHAT_ENCRYPTION_KEY',
      'a codec server needs the keys: set CONSISTENT_CHAT_ENCRYPTION_KEY or pass --encryption-key-file',
    );
  const port = number('--port', opts.port) ?? 8888;
  if (port < 0 || port > 65_535) throw new ConfigError('--port', `must be 0-65535, got ${port}`);
  let token: string | undefined;
  const tokenFile = opts.tokenFile;
  if (tokenFile) {
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new ConfigError(
        '--token-file',
        `cannot read ${tokenFile}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  } else token = process.env.CONSISTENT_CHAT_CODEC_TOKEN || undefined;
  if (token !== undefined && token.length < 16)
    throw new ConfigError(
      tokenFile ? '--token-file' : 'CONSISTENT_CHAT_CODEC_TOKEN',
      'use a token of 16 characters or more',
    );
  const origins = (opts.corsOrigin ?? 'http://localhost:8233,http://127.0.0.1:8233')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    try {
      if (new URL(origin).origin !== origin) throw new Error('not an origin');
    } catch {
      throw new ConfigError('--cors-origin', `not an origin (scheme://host[:port]): ${origin}`);
    }
  }
  const server = await startCodecServer({
    keys,
    host: opts.host ?? '127.0.0.1',
    port,
    corsOrigins: origins,
    token,
  });
  process.stderr.write(
    `codec server on ${server.url} (POST /encode, /decode; CORS for ${origins.join(', ')}${token ? '; bearer token required' : ''}); point the Temporal UI's codec endpoint at it\n`,
  );
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  await server.close();
  return EXIT_CODES.ok;
}

async function countLines(file: string): Promise<number | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').filter((l) => l.length > 0).length;
  } catch {
    return undefined;
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name('consistent-chat')
    .description('Generate ConsistentChat multi-turn dialogue datasets as durable Temporal workflows')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  temporalOptions(
    program
      .command('generate')
      .description('generate a dataset (resumes the run already in --out)')
      .requiredOption('--out <dir>', 'output directory of the run')
      .option(
        '--dialogs-per-intent <n>',
        `dialogues per intent, 1-${MAX_DIALOGS_PER_INTENT} (default ${DEFAULT_DIALOGS_PER_INTENT})`,
      )
      .option('--turns <n>', `user queries per dialogue, 1-20 (default ${DEFAULT_TURNS_PER_DIALOG})`)
      .option('--temperature <t>', `sampling temperature, 0-2 (default ${DEFAULT_TEMPERATURE})`)
      .option('--model <name>', 'model name (default OPENAI_MODEL)')
      .option('--base-url <url>', 'OpenAI-compatible endpoint (default OPENAI_BASE_URL)')
      .option(
        '--concurrency <n>',
        `LLM calls in flight for the run, 1-${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY})`,
      )
      .option('--intents <names>', `comma-separated intents (default all): ${INTENT_IDS.join(', ')}`)
      .option('--seed <seed>', 'plan seed (default the run id)')
      .option('--run-id <id>', 'run id (default: the run in --out, else a new one)')
      .option('--config <file>', 'YAML or JSON file of run settings (workflow input names); flags win')
      .option('--rpm <n>', 'requests per minute limit (per worker process)')
      .option('--tpm <n>', 'tokens per minute limit (per worker process)')
      .option(
        '--max-attempts <n>',
        'attempts per LLM call before a dialogue is recorded as failed (default 6)',
      )
      .addOption(
        new Option('--response-format <mode>', 'structured output mode').choices(RESPONSE_FORMAT_MODES),
      )
      .option('--no-worker', 'run no LLM worker in this process (workers run elsewhere)'),
  ).action(async (opts: Record<string, string | boolean | undefined>) => {
    process.exitCode = await runGenerate(opts);
  });

  temporalOptions(
    program
      .command('worker')
      .description('run a worker against a Temporal cluster, for scaling out')
      .option('--base-url <url>', 'OpenAI-compatible endpoint (default OPENAI_BASE_URL)')
      .option('--max-concurrent-calls <n>', 'LLM activities this worker runs at once (default 500)')
      .option(
        '--max-cached-workflows <n>',
        `workflows kept in memory between tasks (default ${DEFAULT_MAX_CACHED_WORKFLOWS})`,
      )
      .option('--no-storage', 'do not serve storage activities (they run where the output directory is)')
      .option('--storage-only', 'serve only storage activities, on --storage-task-queue')
      .option(
        '--storage-task-queue <queue>',
        'task queue of storage activities (default <task-queue>.storage)',
      )
      .option('--out-root <dir>', 'only write output directories below this directory'),
  ).action(async (opts: Record<string, string | boolean | undefined>) => {
    process.exitCode = await runWorker(opts);
  });

  temporalOptions(
    program
      .command('status')
      .description('print per-intent progress, tokens and failures')
      .argument('<run-id>')
      .option('--out <dir>', 'output directory of an embedded run'),
  ).action(async (runId: string, opts: TemporalFlags & { out?: string }) => {
    const client = await checkedClientFor(runId, opts);
    const description = await client.workflow.getHandle(runId).describe();
    process.stdout.write(`run ${runId}: ${description.status.name}\n`);
    if (description.status.name === 'COMPLETED') {
      process.stdout.write(
        `${formatSummary((await client.workflow.getHandle(runId).result()) as RunSummary)}\n`,
      );
    } else if (description.status.name === 'RUNNING') {
      const p = await readProgress(client, runId);
      for (const i of p.intents) {
        process.stdout.write(
          `  ${i.intent.padEnd(22)} ${i.written}/${i.planned} written, ${i.failed} failed, ${i.inFlight} in flight, tokens ${i.tokens.prompt}+${i.tokens.completion}${i.paused ? ', paused' : ''}\n`,
        );
      }
    }
    if (opts.out) {
      const written = await countLines(join(resolve(opts.out), OUTPUT_FILES.dialogues));
      const failed = await countLines(join(resolve(opts.out), OUTPUT_FILES.failures));
      process.stdout.write(`files: ${written ?? 0} dialogues, ${failed ?? 0} failures\n`);
    }
  });

  for (const [name, signal, description] of [
    ['pause', pauseSignal, 'stop starting LLM calls (calls in flight finish)'],
    ['resume', resumeSignal, 'start LLM calls again'],
  ] as const) {
    temporalOptions(
      program.command(name).description(description).argument('<run-id>').option('--out <dir>'),
    ).action(async (runId: string, opts: TemporalFlags & { out?: string }) => {
      await (await checkedClientFor(runId, opts)).workflow.getHandle(runId).signal(signal);
      process.stdout.write(`${name}d ${runId}\n`);
    });
  }
  temporalOptions(
    program
      .command('cancel')
      .description('cancel a run; what was written stays')
      .argument('<run-id>')
      .option('--out <dir>'),
  ).action(async (runId: string, opts: TemporalFlags & { out?: string }) => {
    await (await checkedClientFor(runId, opts)).workflow.getHandle(runId).cancel();
    process.stdout.write(`cancel requested for ${runId}\n`);
  });
  program
    .command('codec-server')
    .description('serve the Temporal codec protocol so the Temporal UI shows encrypted payloads decoded')
    .option('--host <ip>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on (default 8888)')
    .option(
      '--cors-origin <origins>',
      'comma-separated browser origins of the Temporal UI (default http://localhost:8233,http://127.0.0.1:8233)',
    )
    .option(
      '--token-file <file>',
      'require Authorization: Bearer <token> (default CONSISTENT_CHAT_CODEC_TOKEN)',
    )
    .option(
      '--encryption-key-file <file>',
      'payload encryption keys, [KEYID:]BASE64 per line (default CONSISTENT_CHAT_ENCRYPTION_KEY)',
    )
    .action(async (opts: Record<string, string | undefined>) => {
      process.exitCode = await runCodecServer(opts);
    });
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.badInput;
    }
    // Redacted: an endpoint's or a server's error text can quote a credential.
    if (error instanceof ConfigError) {
      process.stderr.write(`error: ${redact(error.message)}\n`);
      return EXIT_CODES.badInput;
    }
    process.stderr.write(`error: ${redact(error instanceof Error ? error.message : String(error))}\n`);
    return EXIT_CODES.failures;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
