/**
 * The programmatic API, shaped like the reference operator:
 * `new ConsistentChatGenerator({ llmServing, numDialogsPerIntent, numTurnsPerDialog, temperature }).run(storage)`.
 */
import type { Logger } from '@temporalio/common';
import { z } from 'zod';
import type { IntentId } from '../method/intents';
import type { Taxonomy } from '../method/taxonomy';
import type { PromptTemplates } from '../method/templates';
import {
  DEFAULT_DIALOGS_PER_INTENT,
  DEFAULT_TEMPERATURE,
  DEFAULT_TURNS_PER_DIALOG,
} from '../shared/constants';
import type { RunProgress, RunSummary } from '../run/schemas';
import { ConfigError } from '../shared/errors';
import { resolve } from 'node:path';
import { writeSummaryFile } from '../report/stats';
import { RUN_FLAGS } from './run-flags';
import { generate, type TemporalOptions } from './generate';
import { loadMethodOptions } from './method-files';

export interface LlmServing {
  /** Model name sent to the endpoint, e.g. `gpt-4o-mini` or a vLLM served model. */
  model: string;
  /** OpenAI-compatible base URL. @default process.env.OPENAI_BASE_URL, else the OpenAI API */
  baseURL?: string;
  /**
   * The judge's own endpoint (its key in CONSISTENT_CHAT_JUDGE_API_KEY).
   * @default process.env.CONSISTENT_CHAT_JUDGE_BASE_URL, else `baseURL`
   */
  judgeBaseURL?: string;
}

export interface ConsistentChatGeneratorOptions {
  llmServing: LlmServing;
  /** @default 20 */
  numDialogsPerIntent?: number;
  /** User queries (and so assistant responses) per dialogue. @default 6 */
  numTurnsPerDialog?: number;
  /** @default 0.9 */
  temperature?: number;
  /** Sampling temperature per stage, over `temperature`. */
  temperatures?: { skeleton?: number; responses?: number };
  /** Completion token limits per stage. @default scaled with the number of turns */
  maxTokens?: { skeleton?: number; responses?: number };
  /** Scores each dialogue's consistency (README, "Judging consistency"). @default no judge */
  judge?: { model?: string; sample?: number; temperature?: number; maxTokens?: number };
  /** @default all intents of the taxonomy (the built-in nine) */
  intents?: IntentId[];
  /** A taxonomy, or the path of a YAML or JSON taxonomy file. @default the built-in one */
  taxonomy?: Taxonomy | string;
  /** Prompt templates, or the path of a prompts directory. @default the built-in ones */
  prompts?: PromptTemplates | string;
  /** Resume even if `taxonomy`/`prompts` differ from the run's recorded ones (which it keeps). @default false */
  keepRecordedMethod?: boolean;
  seed?: string;
  /** LLM calls in flight for the run. @default 16 */
  concurrency?: number;
  runId?: string;
  /** Where Temporal runs; by default an embedded dev server persisted in the output directory. */
  temporal?: TemporalOptions;
  onProgress?: (progress: RunProgress) => void;
  /**
   * Receives the Temporal SDK's log lines (any object with `log`, `info`, `warn`, … like the SDK's
   * `Logger`). @default none on stderr: they go to `<outDir>/consistent-chat.log` at `LOG_LEVEL` (INFO)
   */
  logger?: Logger;
}

/** Where `run` writes: a directory path, or an object naming one (like DataFlow's storage). */
export type GeneratorStorage = string | { outDir: string };

const optionsSchema = z.object({
  llmServing: z.object({
    model: z.string().min(1),
    // z.url() alone takes ftp: and file: too; the endpoint is an HTTP API.
    baseURL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    judgeBaseURL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  }),
});

export class ConsistentChatGenerator {
  constructor(private readonly options: ConsistentChatGeneratorOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(issue.path.join('.'), issue.message);
    }
  }

  /** Generates the dialogues into `storage` and resolves with the run's summary. */
  async run(storage: GeneratorStorage, signal?: AbortSignal): Promise<RunSummary> {
    const o = this.options;
    const method = await loadMethodOptions({ taxonomy: o.taxonomy, prompts: o.prompts }, process.cwd(), {
      taxonomy: 'taxonomy',
      prompts: 'prompts',
    });
    const outDir = typeof storage === 'string' ? storage : storage.outDir;
    const { summary } = await withApiFieldNames(() =>
      generate({
        run: {
          outDir,
          model: o.llmServing.model,
          numDialogsPerIntent: o.numDialogsPerIntent ?? DEFAULT_DIALOGS_PER_INTENT,
          numTurnsPerDialog: o.numTurnsPerDialog ?? DEFAULT_TURNS_PER_DIALOG,
          temperature: o.temperature ?? DEFAULT_TEMPERATURE,
          temperatures: o.temperatures,
          maxTokens: o.maxTokens,
          judge: o.judge,
          intents: o.intents,
          seed: o.seed,
          concurrency: o.concurrency,
          runId: o.runId,
          ...method,
        },
        keepRecordedMethod: o.keepRecordedMethod,
        llm: { baseURL: o.llmServing.baseURL, judgeBaseURL: o.llmServing.judgeBaseURL },
        temporal: o.temporal,
        onProgress: o.onProgress,
        logger: o.logger,
        signal,
      }),
    );
    // The same files as a CLI run, so `report` and the dataset card find the tokens and settings.
    await writeSummaryFile(resolve(outDir), summary);
    return summary;
  }
}

/** The option (path) of this API that each CLI flag of `generate`'s checks stands for. */
const API_FIELDS: Record<string, string> = {
  ...Object.fromEntries(RUN_FLAGS.map((row): [string, string] => [row.flag.split(' ')[0]!, row.field])),
  '--out': 'storage',
  '--model': 'llmServing.model',
  '--base-url': 'llmServing.baseURL',
  '--judge-base-url': 'llmServing.judgeBaseURL',
  '--temporal-address': 'temporal.address',
  '--namespace': 'temporal.namespace',
  '--task-queue': 'temporal.taskQueue',
  '--encryption-key-file': 'temporal.encryptionKeyFile',
  '--keep-recorded-method': 'keepRecordedMethod',
};

/**
 * `generate` checks its input for the CLI and names flags; a library caller set options, so its
 * errors name those (`numDialogsPerIntent: …`, not `--dialogs-per-intent: …`).
 */
async function withApiFieldNames<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const field = API_FIELDS[error.field];
    if (!field) throw error;
    const detail = error.message.slice(error.field.length + 2);
    const flag = new RegExp(`${error.field}(?![\\w-])`, 'g');
    throw new ConfigError(field, detail.replace(flag, field));
  }
}
