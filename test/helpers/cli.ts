import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const CLI = resolve(ROOT, 'src', 'client', 'cli.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI from source in its own process, as a user's shell would. */
export function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: {
    /** In a process group of its own, as a terminal's foreground job: signal it with `process.kill(-pid)`. */
    detached?: boolean;
  } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'ERROR', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolveDone) =>
    child.on('exit', (code, signal) => resolveDone({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return spawnCli(args, env).done;
}

/** The `generate` settings tests vary; each becomes its flag. */
export interface GenerateSettings {
  /** @default 'test-model' */
  model?: string;
  dialogs?: number;
  turns?: number;
  intents?: string;
  concurrency?: number;
  runId?: string;
}

/** `generate --out OUT --model test-model …` with the settings given, then `extra` as it is. */
export function generateArgs(out: string, settings: GenerateSettings = {}, ...extra: string[]): string[] {
  const flags: [string, string | number | undefined][] = [
    ['--model', settings.model ?? 'test-model'],
    ['--run-id', settings.runId],
    ['--dialogs-per-intent', settings.dialogs],
    ['--turns', settings.turns],
    ['--concurrency', settings.concurrency],
    ['--intents', settings.intents],
  ];
  const given = flags.flatMap(([flag, value]) => (value === undefined ? [] : [flag, String(value)]));
  return ['generate', '--out', out, ...given, ...extra];
}
