/**
 * The one table of `generate`'s run flags: each row says which run input field a flag sets, how its
 * text is read, and the default and limits its help shows. The commander options, the parsing, the
 * flag an error names and the help text all come from it, so a new run setting is one row.
 */
import { Option, type Command } from 'commander';
import { INTENT_IDS } from '../method/intents';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_DIALOGS_PER_INTENT,
  DEFAULT_LLM_RETRY,
  DEFAULT_TEMPERATURE,
  DEFAULT_TURNS_PER_DIALOG,
  MAX_CONCURRENCY,
  MAX_DIALOGS_PER_INTENT,
  MAX_TEMPERATURE,
  MAX_TURNS_PER_DIALOG,
  MIN_TURNS_PER_DIALOG,
  RESPONSE_FORMAT_MODES,
} from '../shared/constants';
import { ConfigError } from '../shared/errors';
import { BATCH_LIMITS } from '../run/batch';

/** How a flag's text becomes a value; `method` flags are read by the caller (files, the taxonomy). */
export const FLAG_KINDS = ['text', 'whole', 'decimal', 'choice', 'method', 'switch', 'duration'] as const;

export interface RunFlag {
  /** The run input path the flag sets (`rateLimit.requestsPerMinute`). */
  field: string;
  /** The flag as typed, with its argument: `--turns <n>`. */
  flag: string;
  kind: (typeof FLAG_KINDS)[number];
  /** What the value is, for the help text; limits and default are added from the row. */
  help: string;
  limits?: readonly [number, number];
  default?: string | number;
  choices?: readonly string[];
  required?: boolean;
  /** A `switch` row (a flag without argument): the value it sets. A `--no-…` switch is given when commander reads false. */
  value?: string | boolean;
}

export const RUN_FLAGS: readonly RunFlag[] = [
  {
    field: 'outDir',
    flag: '--out <dir>',
    kind: 'text',
    required: true,
    help: 'output directory of the run (required): dialogs.jsonl, run.json, logs',
  },
  {
    field: 'numDialogsPerIntent',
    flag: '--dialogs-per-intent <n>',
    kind: 'whole',
    help: 'dialogues per intent',
    limits: [1, MAX_DIALOGS_PER_INTENT],
    default: DEFAULT_DIALOGS_PER_INTENT,
  },
  {
    field: 'numTurnsPerDialog',
    flag: '--turns <n>',
    kind: 'whole',
    help: 'user queries per dialogue',
    limits: [MIN_TURNS_PER_DIALOG, MAX_TURNS_PER_DIALOG],
    default: DEFAULT_TURNS_PER_DIALOG,
  },
  {
    field: 'temperature',
    flag: '--temperature <t>',
    kind: 'decimal',
    help: 'sampling temperature',
    limits: [0, MAX_TEMPERATURE],
    default: DEFAULT_TEMPERATURE,
  },
  { field: 'model', flag: '--model <name>', kind: 'text', help: 'model name', default: 'OPENAI_MODEL' },
  {
    field: 'concurrency',
    flag: '--concurrency <n>',
    kind: 'whole',
    help: 'LLM calls in flight for the run',
    limits: [1, MAX_CONCURRENCY],
    default: DEFAULT_CONCURRENCY,
  },
  {
    field: 'intents',
    flag: '--intents <names>',
    kind: 'method',
    help: `comma-separated intents of the taxonomy (built-in: ${INTENT_IDS.join(', ')})`,
    default: 'all',
  },
  { field: 'seed', flag: '--seed <seed>', kind: 'text', help: 'plan seed', default: 'the run id' },
  {
    field: 'attributes',
    flag: '--attributes <file>',
    kind: 'method',
    help: 'user attributes the plan combines with topics: builtin, none, or a YAML/JSON file of axes',
    default: 'builtin',
  },
  {
    field: 'runId',
    flag: '--run-id <id>',
    kind: 'text',
    help: 'run id',
    default: 'the run in --out, else a new one',
  },
  {
    field: 'taxonomy',
    flag: '--taxonomy <file>',
    kind: 'method',
    help: 'YAML or JSON taxonomy: intents, info flows as steps, topics',
    default: 'the built-in one',
  },
  {
    field: 'prompts',
    flag: '--prompts <dir>',
    kind: 'method',
    help: 'directory of prompt templates: skeleton.txt, responses.txt [, *.system.txt]',
    default: 'the built-in ones',
  },
  {
    field: 'rateLimit.requestsPerMinute',
    flag: '--rpm <n>',
    kind: 'whole',
    help: 'requests per minute limit (per worker process)',
  },
  {
    field: 'rateLimit.tokensPerMinute',
    flag: '--tpm <n>',
    kind: 'whole',
    help: 'tokens per minute limit (per worker process)',
  },
  {
    field: 'retry.maximumAttempts',
    flag: '--max-attempts <n>',
    kind: 'whole',
    help: 'attempts per LLM call before a dialogue is recorded as failed',
    limits: [1, 100],
    default: DEFAULT_LLM_RETRY.maximumAttempts,
  },
  {
    field: 'temperatures.skeleton',
    flag: '--skeleton-temperature <t>',
    kind: 'decimal',
    help: 'temperature of the user-side skeleton calls',
    limits: [0, MAX_TEMPERATURE],
    default: '--temperature',
  },
  {
    field: 'temperatures.responses',
    flag: '--responses-temperature <t>',
    kind: 'decimal',
    help: 'temperature of the response calls',
    limits: [0, MAX_TEMPERATURE],
    default: '--temperature',
  },
  {
    field: 'maxTokens.skeleton',
    flag: '--skeleton-max-tokens <n>',
    kind: 'whole',
    help: 'completion token limit of skeleton calls',
    default: '200 + 100 per turn',
  },
  {
    field: 'maxTokens.responses',
    flag: '--responses-max-tokens <n>',
    kind: 'whole',
    help: 'completion token limit of response calls',
    default: '400 + 320 per turn',
  },
  {
    field: 'judge.model',
    flag: '--judge-model <name>',
    kind: 'text',
    help: "the judge's model (implies --judge)",
    default: '--model',
  },
  {
    field: 'judge.sample',
    flag: '--judge-sample <fraction>',
    kind: 'decimal',
    help: 'judge a seeded sample of the dialogues, above 0 and at most 1 (implies --judge)',
    default: '1: all',
  },
  {
    field: 'judge.calibrate',
    flag: '--no-calibrate',
    kind: 'switch',
    value: false,
    help: "with a judge: skip scoring the calibration set (a few dozen judge calls at the run's start that measure how well the judge separates consistent dialogues from planted failures)",
    default: 'calibrate',
  },
  {
    field: 'responseFormat',
    flag: '--response-format <mode>',
    kind: 'choice',
    help: 'structured output mode',
    choices: RESPONSE_FORMAT_MODES,
    default: 'auto',
  },
  {
    field: 'mode',
    flag: '--batch',
    kind: 'switch',
    value: 'batch',
    help: "send the calls through the provider's batch API: half price, results within 24 hours",
    default: 'real time',
  },
  {
    field: 'batch.requestsPerFile',
    flag: '--batch-requests-per-file <n>',
    kind: 'whole',
    help: 'most requests in one batch input file',
    limits: [1, BATCH_LIMITS.requestsPerFile],
    default: BATCH_LIMITS.requestsPerFile,
  },
  {
    field: 'batch.bytesPerFile',
    flag: '--batch-bytes-per-file <n>',
    kind: 'whole',
    help: 'most bytes in one batch input file',
    limits: [BATCH_LIMITS.minBytesPerFile, BATCH_LIMITS.bytesPerFile],
    default: BATCH_LIMITS.bytesPerFile,
  },
  {
    field: 'batch.deadlineMs',
    flag: '--batch-deadline <duration>',
    kind: 'duration',
    help: 'with --batch: what is not back this long after an intent starts runs in real time (30m, 6h, 2d)',
    default: 'none',
  },
  {
    field: 'batch.maxAttempts',
    flag: '--batch-attempts <n>',
    kind: 'whole',
    help: "batches a dialogue's request may go in before it is recorded as failed",
    limits: [1, BATCH_LIMITS.maxAttempts],
    default: BATCH_LIMITS.defaultAttempts,
  },
];

/** The help line of a row: what it is, its limits and its default, from the row itself. */
export function flagHelp(row: RunFlag): string {
  const limits = row.limits ? `, ${row.limits[0]}-${row.limits[1]}` : '';
  return `${row.help}${limits}${row.default !== undefined ? ` (default ${row.default})` : ''}`;
}

/** Adds the table's options to a command. */
export function addRunFlags(cmd: Command): Command {
  for (const row of RUN_FLAGS) {
    const option = new Option(row.flag, flagHelp(row));
    if (row.choices) option.choices(row.choices);
    if (row.required) option.makeOptionMandatory();
    cmd.addOption(option);
  }
  return cmd;
}

/** The flag that sets a run input path (or its parent), for errors; the path itself when none does. */
export function flagOf(path: string): string {
  const row =
    RUN_FLAGS.find((r) => r.field === path) ?? RUN_FLAGS.find((r) => r.field === path.split('.')[0]);
  return row ? longName(row) : path;
}

function longName(row: RunFlag): string {
  return row.flag.split(' ')[0]!;
}

const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `30m`, `6h`, `2d` (or `1.5h`) in milliseconds. */
export function parseDuration(flag: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw.trim());
  if (!match)
    throw new ConfigError(flag, `must be a duration like 30m, 6h or 2d, got ${JSON.stringify(raw)}`);
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS]);
}

/** A flag's text as a number, decimal only: Number() also reads "0x10", "0b1" and " 12 ". */
export function parseNumber(flag: string, raw: string, integer: boolean): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw))
    throw new ConfigError(
      flag,
      `must be ${integer ? 'a whole number' : 'a decimal number'}, got ${JSON.stringify(raw)}`,
    );
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new ConfigError(flag, `must be a number, got "${raw}"`);
  if (integer && !Number.isInteger(value))
    throw new ConfigError(flag, `must be a whole number, got "${raw}"`);
  return value;
}

/**
 * The run input the table's non-method flags give, nested by path (`rateLimit.requestsPerMinute`);
 * flags not given are absent. `method` rows are left to the caller: they read files.
 */
export function runFlagValues(opts: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const row of RUN_FLAGS) {
    const raw = opts[attributeName(row)];
    // commander reads a `--no-…` flag as false when given (and true when not).
    if (row.kind === 'switch' && raw === !row.flag.startsWith('--no-')) setPath(values, row.field, row.value);
    if (typeof raw !== 'string' || row.kind === 'method') continue;
    const value =
      row.kind === 'whole' || row.kind === 'decimal'
        ? parseNumber(longName(row), raw, row.kind === 'whole')
        : row.kind === 'duration'
          ? parseDuration(longName(row), raw)
          : raw;
    setPath(values, row.field, value);
  }
  return values;
}

/** The key commander stores a row's value under. */
export function attributeName(row: RunFlag): string {
  return new Option(row.flag).attributeName();
}

/** The raw text of a row's flag, by run input field. */
export function flagText(opts: Record<string, unknown>, field: string): string | undefined {
  const row = RUN_FLAGS.find((r) => r.field === field);
  const raw = row ? opts[attributeName(row)] : undefined;
  return typeof raw === 'string' ? raw : undefined;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) {
    target[head!] = value;
    return;
  }
  const inner = (target[head!] ??= {}) as Record<string, unknown>;
  setPath(inner, rest.join('.'), value);
}

/** Flags over a config file's values, field by field inside nested settings (`retry`, `rateLimit`). */
export function overFile(
  fromFile: Record<string, unknown>,
  fromFlags: Record<string, unknown>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(fromFlags)) {
    const base = merged[key];
    merged[key] = isPlain(value) && isPlain(base) ? { ...base, ...value } : value;
  }
  return merged;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
