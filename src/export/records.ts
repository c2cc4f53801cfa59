/**
 * Streaming readers of a run's output directory, for export and report: one line at a time, so a
 * million-record file never sits in memory. A line that does not parse or fails the record schema is
 * a ConfigError naming the file, the line and the field.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { OUTPUT_FILES } from '../shared/constants';
import { dialogueRecordSchema } from '../run/schemas';
import { ConfigError } from '../shared/errors';

async function* jsonLines(file: string, label: string): AsyncGenerator<{ value: unknown; line: number }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ConfigError(`${label} line ${line}`, 'not valid JSON');
    }
    yield { value, line };
  }
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(record)' : path.map(String).join('.');
}

/** Checks that DIR is a run directory with a dialogs.jsonl; the error names `DIR`. */
export async function checkRunDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new ConfigError('DIR', `${dir} is not a directory`);
  const file = await stat(join(dir, OUTPUT_FILES.dialogues)).catch(() => undefined);
  if (!file?.isFile())
    throw new ConfigError('DIR', `${dir} has no ${OUTPUT_FILES.dialogues}: is it a run's output directory?`);
}

/**
 * A line of dialogs.jsonl: the record the workflow built, plus the `metrics` the storage activity adds
 * (src/method/metrics.ts). Any object is accepted there and checked by `metricsOf`, which recomputes
 * what is missing or of another version, so records from before metrics existed read as before.
 * Kept out of src/run/schemas.ts: that module is in the workflow bundle, whose hash is the build id.
 */
export const storedDialogueRecordSchema = dialogueRecordSchema.extend({
  metrics: z.looseObject({ version: z.number() }).optional(),
});
export type StoredDialogueRecord = z.infer<typeof storedDialogueRecordSchema>;

/** Every dialogue record of a run, validated, in file order. */
export async function* readDialogueRecords(dir: string): AsyncGenerator<StoredDialogueRecord> {
  for await (const { value, line } of jsonLines(join(dir, OUTPUT_FILES.dialogues), OUTPUT_FILES.dialogues)) {
    const parsed = storedDialogueRecordSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(`${OUTPUT_FILES.dialogues} line ${line} ${issuePath(issue.path)}`, issue.message);
    }
    yield parsed.data;
  }
}

/** The fields of a failures.jsonl line the report uses; other fields are kept but not required. */
export const failureLineSchema = z.looseObject({
  id: z.string(),
  stage: z.string(),
  type: z.string(),
  intent: z.string().optional(),
});
export type FailureLine = z.infer<typeof failureLineSchema>;

export async function* readFailureLines(dir: string): AsyncGenerator<FailureLine> {
  const file = join(dir, OUTPUT_FILES.failures);
  if (!(await stat(file).catch(() => undefined))) return;
  for await (const { value, line } of jsonLines(file, OUTPUT_FILES.failures)) {
    const parsed = failureLineSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(`${OUTPUT_FILES.failures} line ${line} ${issuePath(issue.path)}`, issue.message);
    }
    yield parsed.data;
  }
}

/**
 * `run.json` as far as export and report need it. Loose: other helpers add fields (method hash,
 * package version, prices) that are shown as they are.
 */
export const runFileSchema = z.looseObject({
  runId: z.string(),
  createdAt: z.string().optional(),
  input: z.looseObject({
    model: z.string(),
    intents: z.array(z.string()).optional(),
    numDialogsPerIntent: z.number().optional(),
    numTurnsPerDialog: z.number().optional(),
    temperature: z.number().optional(),
    seed: z.string().optional(),
  }),
});
export type RunFileInfo = z.infer<typeof runFileSchema>;

/** run.json, or undefined when the directory has none (records copied from elsewhere). */
export async function readRunFile(dir: string): Promise<RunFileInfo | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, OUTPUT_FILES.run), 'utf8');
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(OUTPUT_FILES.run, 'not valid JSON');
  }
  const parsed = runFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${OUTPUT_FILES.run} ${issuePath(issue.path)}`, issue.message);
  }
  return parsed.data;
}

/** The package's own version, for dataset cards and reports (dist/… and src/… both sit two levels down). */
export async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
