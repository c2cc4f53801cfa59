/**
 * Seed data (issue 22 items 2 and 3): `--topics FILE` (CSV, JSONL or Parquet, one column of topics,
 * for example a Hugging Face dataset saved locally) and `--personas FILE` (YAML, JSON, CSV or JSONL),
 * read and checked before anything starts. CSV goes through `csv-parse` (quoting, embedded newlines
 * and BOMs are solved problems), Parquet through `parquet-wasm` and `apache-arrow`, already used by export.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parse as parseYaml } from 'yaml';
import {
  ATTRIBUTE_LIMITS,
  attributeAxesSchema,
  resolveAttributes,
  type RunAttributes,
} from '../method/attributes';
import { BUILTIN_TAXONOMY, TAXONOMY_LIMITS, taxonomySchema, type Taxonomy } from '../method/taxonomy';
import { ConfigError } from '../shared/errors';

/** Largest seed file read: a topic list far longer than a run can use is a mistake, not data. */
export const MAX_SEED_FILE_BYTES = 64 * 1024 * 1024;

/** The column a seed file's values are read from, unless `FILE:COLUMN` names another. */
export const DEFAULT_COLUMNS = { topics: 'topic', personas: 'persona' } as const;

/** `data.csv:question` → the file and the column; a bare path keeps the default column. */
export function splitColumn(given: string, fallback: string): { path: string; column: string } {
  const match = /^(.*\.(?:csv|tsv|jsonl|ndjson|parquet|json|ya?ml)):([^:/\\]+)$/i.exec(given);
  return match ? { path: match[1]!, column: match[2]! } : { path: given, column: fallback };
}

async function readBytes(field: string, path: string): Promise<Buffer> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ConfigError(field, `${path} is not a file`);
    if (info.size > MAX_SEED_FILE_BYTES)
      throw new ConfigError(field, `${path} is larger than ${MAX_SEED_FILE_BYTES} bytes`);
    return await readFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      field,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** The rows of a CSV, JSONL, JSON/YAML or Parquet file, as objects (a bare string is `{[column]: it}`). */
async function readRows(field: string, path: string, column: string): Promise<unknown[]> {
  const bytes = await readBytes(field, path);
  const ext = extname(path).toLowerCase();
  try {
    if (ext === '.csv' || ext === '.tsv')
      return parseCsv<Record<string, string>>(bytes, {
        columns: true,
        bom: true,
        skip_empty_lines: true,
        delimiter: ext === '.tsv' ? '\t' : ',',
      });
    if (ext === '.jsonl' || ext === '.ndjson')
      return bytes
        .toString('utf8')
        .split('\n')
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as unknown);
    if (ext === '.parquet') {
      // Loaded only here: Arrow and the Parquet WebAssembly module cost every CLI start about 100 ms.
      const [{ tableFromIPC }, parquet] = await Promise.all([import('apache-arrow'), import('parquet-wasm')]);
      const table = tableFromIPC(parquet.readParquet(new Uint8Array(bytes)).intoIPCStream());
      const values = table.getChild(column);
      if (!values) throw new ConfigError(field, `${path} has no column "${column}"`);
      return [...values].map((value) => ({ [column]: value as unknown }));
    }
    const value = parseYaml(bytes.toString('utf8')) as unknown;
    if (!Array.isArray(value)) throw new ConfigError(field, `${path} must hold a list`);
    return value as unknown[];
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(field, `${path}: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** One column's values, trimmed, blanks and repeats (case-insensitive) dropped, in file order. */
async function readColumn(
  field: string,
  given: string,
  fallback: string,
  baseDir: string,
): Promise<string[]> {
  const { path, column } = splitColumn(given, fallback);
  const rows = await readRows(field, resolve(baseDir, path), column);
  const seen = new Set<string>();
  const out: string[] = [];
  rows.forEach((row, i) => {
    const value = typeof row === 'string' ? row : (row as Record<string, unknown> | null)?.[column];
    if (value === undefined || value === null)
      throw new ConfigError(field, `${path} row ${i + 1} has no "${column}"`);
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new ConfigError(field, `${path} row ${i + 1}: "${column}" is not text`);
    const text = String(value).replace(/\s+/g, ' ').trim();
    if (!text || seen.has(text.toLowerCase())) return;
    seen.add(text.toLowerCase());
    out.push(text);
  });
  if (out.length === 0) throw new ConfigError(field, `${path} holds no ${column} values`);
  return out;
}

/**
 * `--topics FILE[:COLUMN]`: the run's intents all plan over these topics (the first
 * `TAXONOMY_LIMITS.topicsPerIntent`, each at most `textChars` long), in the run's taxonomy.
 */
export async function loadTopics(
  given: string,
  taxonomy: Taxonomy | undefined,
  baseDir: string,
): Promise<Taxonomy> {
  const field = '--topics';
  const topics = (await readColumn(field, given, DEFAULT_COLUMNS.topics, baseDir)).slice(
    0,
    TAXONOMY_LIMITS.topicsPerIntent,
  );
  const base = taxonomy ?? BUILTIN_TAXONOMY;
  const parsed = taxonomySchema.safeParse({ ...base, intents: base.intents.map((i) => ({ ...i, topics })) });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      field,
      `${issue?.path.slice(2).join('.') || 'topics'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/**
 * `--personas FILE[:COLUMN]`: one more attribute axis, `persona`, beside the run's attributes (the
 * built-in ones unless `--attributes` gives others): each dialogue is planned with one persona.
 */
export async function loadPersonas(
  given: string,
  attributes: RunAttributes | undefined,
  baseDir: string,
): Promise<RunAttributes> {
  const field = '--personas';
  const personas = await readColumn(field, given, DEFAULT_COLUMNS.personas, baseDir);
  if (personas.length > ATTRIBUTE_LIMITS.valuesPerAxis)
    throw new ConfigError(
      field,
      `holds ${personas.length} personas; at most ${ATTRIBUTE_LIMITS.valuesPerAxis}`,
    );
  const axes = [...(resolveAttributes(attributes ?? 'builtin') ?? []), { name: 'persona', values: personas }];
  const parsed = attributeAxesSchema.safeParse(axes);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      field,
      `${issue?.path.slice(1).join('.') || 'personas'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
