/**
 * The embedded LLM of `consistent-chat generate` when no endpoint is configured: llama.cpp's own
 * OpenAI-compatible server, run through xllamacpp in a Python process of its own on loopback, a free
 * port, health-checked, stopped with the run. The workers reach it through the same `openai` client
 * path as any endpoint. The default model is the one `scripts/setup-model.sh` assembles in the cache.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { defaultMaxTokens, planDialogue, responsesMessages, skeletonMessages } from '../method';
import { ConfigError } from '../shared/errors';
import defaultModelManifest from './default-model.json';
import { freePort } from './dev-server';

const manifestSchema = z.object({
  name: z.string(),
  file: z.string(),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  runtime: z.object({ package: z.string(), version: z.string() }),
});
/** The default model and the runtime version, one definition shared with scripts/setup-model.sh. */
export const DEFAULT_LOCAL_MODEL = manifestSchema.parse(defaultModelManifest);

export const LOCAL_MODEL_SETUP_HINT = `run scripts/setup-model.sh (or pip install ${DEFAULT_LOCAL_MODEL.runtime.package}==${DEFAULT_LOCAL_MODEL.runtime.version} and pass --local-model PATH.gguf)`;

/**
 * Sequences the server decodes in parallel: one per core, at least two. More slots than that make
 * each call slower on a CPU without making the run faster, and calls beyond the slots wait in the
 * server's queue. @default max(2, cores)
 */
export function defaultLocalSlots(cores = availableParallelism()): number {
  return Math.max(2, Math.min(8, cores));
}

/**
 * CPU threads for the server: the cores other work leaves idle, at least one. llama.cpp's threads meet
 * at a barrier after every operation, so one descheduled thread stalls the rest: on a loaded machine
 * one thread beats two (measured here: 0.15 generated tokens/s at 2 threads under a load of 20).
 * @default cores minus the 1-minute load average, between 1 and the number of cores
 */
export function defaultLocalThreads(cores = availableParallelism(), load = loadavg()[0] ?? 0): number {
  return Math.max(1, Math.min(cores, Math.round(cores - load)));
}

/** Where set-up puts models: CONSISTENT_CHAT_CACHE, else XDG_CACHE_HOME or ~/.cache, then consistent-chat/models. */
export function modelCacheDir(env = process.env): string {
  const root =
    env.CONSISTENT_CHAT_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'consistent-chat');
  return join(root, 'models');
}

export function defaultModelPath(env = process.env): string {
  return join(modelCacheDir(env), DEFAULT_LOCAL_MODEL.file);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Checks a model file before anything starts. The default model must have its pinned size and hash
 * (checked once; set-up's stamp file records the size and mtime it was verified at). Any other file
 * must be a GGUF file. Errors name the flag and say how to fix it.
 */
export async function checkModelFile(path: string, isDefault: boolean): Promise<void> {
  const field = isDefault ? 'local model' : '--local-model';
  let info;
  try {
    info = await stat(path, { bigint: true });
  } catch {
    throw new ConfigError(
      field,
      isDefault
        ? `no LLM endpoint configured and the default model is not installed at ${path}: ${LOCAL_MODEL_SETUP_HINT}, or set OPENAI_BASE_URL / OPENAI_API_KEY`
        : `${path} does not exist`,
    );
  }
  if (!info.isFile()) throw new ConfigError(field, `${path} is not a file`);
  if (!isDefault) {
    const magic = Buffer.alloc(4);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, magic, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    if (magic.toString('latin1') !== 'GGUF') throw new ConfigError(field, `${path} is not a GGUF file`);
    return;
  }
  const stampFile = `${path}.verified`;
  const stamp = `${DEFAULT_LOCAL_MODEL.sha256} ${info.size} ${info.mtimeNs}`;
  if ((await readFile(stampFile, 'utf8').catch(() => '')) === stamp) return;
  const corrupt = () =>
    new ConfigError(
      field,
      `${path} is corrupt (not the pinned size and sha256): delete it and ${LOCAL_MODEL_SETUP_HINT}`,
    );
  if (info.size !== BigInt(DEFAULT_LOCAL_MODEL.bytes)) throw corrupt();
  if ((await sha256(path)) !== DEFAULT_LOCAL_MODEL.sha256) throw corrupt();
  await writeFile(stampFile, stamp).catch(() => undefined);
}

/**
 * Tokens of context each slot needs: the longest prompt of a dialogue of `numTurns` (its responses
 * prompt, with queries three times the method's 20-word average) plus twice the responses' token limit,
 * since a reply cut at the limit is retried with up to twice the room.
 */
export function contextPerSlot(numTurns: number, maxTokens = defaultMaxTokens(numTurns)): number {
  const plan = planDialogue({ runId: 'sizing', seed: 'sizing', intent: 'problem_solving', index: 0 });
  const query = 'word '.repeat(60).trim();
  const prompts = [
    skeletonMessages(plan, numTurns),
    responsesMessages(plan, {
      category: 'Sizing The Context',
      queries: Array.from({ length: numTurns }, () => query),
    }),
  ];
  const chars = Math.max(
    ...prompts.map((m) => m.reduce((s, x) => s + (typeof x.content === 'string' ? x.content.length : 0), 0)),
  );
  // About 3 characters a token for English with JSON punctuation, plus the chat template's own tokens.
  const tokens = Math.ceil(chars / 3) + 64 + 2 * Math.max(maxTokens.skeleton, maxTokens.responses);
  return Math.ceil(tokens / 256) * 256;
}

/**
 * LLM activity timeouts of a run on the embedded model when the run sets none: a CPU shared with other
 * work can take minutes over one reply, and more than the default 90 s before its first token.
 */
export const LOCAL_MODEL_TIMEOUTS = {
  startToCloseMs: 30 * 60_000,
  heartbeatMs: 30_000,
  idleMs: 10 * 60_000,
} as const;

export interface LocalModelOptions {
  /** @default the default model in the cache (`defaultModelPath()`) */
  modelPath?: string;
  /** Sequences decoded in parallel. @default defaultLocalSlots() */
  slots?: number;
  /** Context of one slot, in tokens (`contextPerSlot`). */
  contextPerSlot: number;
  /** CPU threads. @default defaultLocalThreads() */
  threads?: number;
  /** Where the server's output goes. */
  logFile: string;
  /** @default 120 seconds (loading 1 GB from a cold disk on a loaded machine) */
  startTimeoutMs?: number;
  /** @default python3 on PATH, or CONSISTENT_CHAT_PYTHON */
  python?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LocalModel {
  /** OpenAI-compatible base URL, `http://127.0.0.1:PORT/v1`. */
  baseURL: string;
  /** The name the server answers to, and the run's model name. */
  model: string;
  /** Human name of the model, for the one-line notice. */
  displayName: string;
  slots: number;
  threads: number;
  pid: number;
  stop(): Promise<void>;
}

/** The model name a GGUF file is served under: its file name without `.gguf`. */
export function localModelName(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

/**
 * The server process. It exits when its stdin closes, so a killed parent never leaves a 2 GB server
 * behind; SIGTERM stops it at once.
 */
const LAUNCHER = String.raw`
import os, sys, signal, threading
print("local-model: pid " + str(os.getpid()), file=sys.stderr, flush=True)
try:
    import xllamacpp
except ImportError as e:
    print("local-model: cannot import xllamacpp (" + str(e) + ")", file=sys.stderr, flush=True)
    sys.exit(3)
model, port, slots, ctx, threads, alias = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
p = xllamacpp.CommonParams()
p.model.path = model
p.model_alias = {alias}
p.hostnames = ["127.0.0.1"]
p.port = port
p.n_parallel = slots
p.n_ctx = ctx * slots
p.cpuparams.n_threads = threads
p.cpuparams_batch.n_threads = threads
p.warmup = False
server = xllamacpp.Server(p)
print("local-model: listening on " + str(server.listening_address), file=sys.stderr, flush=True)
def watch_parent():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch_parent, daemon=True).start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
os._exit(0)
`;

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) =>
    child.exitCode !== null || child.signalCode ? r() : child.once('exit', () => r()),
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode) return;
  child.kill('SIGTERM');
  const done = await Promise.race([exited(child).then(() => true), sleep(10_000).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited(child);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `GET /health` answers 200 (the model is loaded), the process exits, or time runs out. */
async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode)
      throw new Error(`the llama.cpp server exited (${child.exitCode ?? child.signalCode})`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`the llama.cpp server did not become healthy within ${timeoutMs} ms`);
}

function lastLine(text: string): string | undefined {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim());
  const error = lines.reverse().find((l) => /error|failed|cannot|local-model:/i.test(l));
  return (error ?? lines[0])?.trim().slice(0, 300);
}

/** Starts the llama.cpp server on 127.0.0.1 and a free port; resolves once it serves the model. */
export async function startLocalModel(options: LocalModelOptions): Promise<LocalModel> {
  const env = options.env ?? process.env;
  const isDefault = options.modelPath === undefined;
  const modelPath = resolve(options.modelPath ?? defaultModelPath(env));
  await checkModelFile(modelPath, isDefault);
  const slots = options.slots ?? defaultLocalSlots();
  const threads = options.threads ?? defaultLocalThreads();
  const model = localModelName(modelPath);
  const python = options.python ?? env.CONSISTENT_CHAT_PYTHON ?? 'python3';
  const port = await freePort();
  const log = openSync(options.logFile, 'a');
  const logStart = fstatSync(log).size;
  const args = ['-c', LAUNCHER, modelPath, String(port), String(slots), String(options.contextPerSlot)];
  // Its own process group, as the Temporal dev server's: a terminal's Ctrl-C (SIGINT to the whole
  // foreground group) must not stop the model while the run drains its calls; it is stopped after
  // them, killed if this process exits, and exits by itself when its stdin closes (a SIGKILLed parent).
  const child = spawn(python, [...args, String(threads), model], {
    stdio: ['pipe', log, log],
    env,
    detached: true,
  });
  closeSync(log);
  const killOnExit = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', killOnExit);
  const spawned = new Promise<void>((ok, fail) => {
    child.once('spawn', ok);
    child.once('error', fail);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await spawned;
    await waitHealthy(url, child, options.startTimeoutMs ?? 120_000);
  } catch (error) {
    await stopChild(child);
    process.off('exit', killOnExit);
    const output = (await readFile(options.logFile, 'utf8').catch(() => '')).slice(logStart);
    const reason = lastLine(output);
    const hint = /xllamacpp|ENOENT/.test(`${reason} ${(error as Error).message}`)
      ? `; ${LOCAL_MODEL_SETUP_HINT}`
      : '';
    throw new Error(
      `cannot start the local model ${modelPath}: ${(error as Error).message}${reason ? `: ${reason}` : ''}${hint} (log: ${options.logFile})`,
    );
  }
  return {
    baseURL: `${url}/v1`,
    model,
    displayName: isDefault ? DEFAULT_LOCAL_MODEL.name : model,
    slots,
    threads,
    pid: child.pid!,
    stop: async () => {
      await stopChild(child);
      process.off('exit', killOnExit);
    },
  };
}
