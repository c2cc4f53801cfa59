/**
 * A run's own method: `--taxonomy FILE` (YAML or JSON) and `--prompts DIR` (template files), read and
 * checked before anything starts, the content hash that `run.json` and the run's memo record, and the
 * copies written beside the output so the run can be read and repeated from its directory.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, stat, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { z } from 'zod';
import { BUILTIN_PROMPTS } from '../method/prompts';
import { BUILTIN_TAXONOMY, taxonomySchema, type Taxonomy } from '../method/taxonomy';
import { promptTemplatesSchema, type PromptTemplates, type Stage } from '../method/templates';
import { BUILTIN_JUDGE_PROMPT } from '../method/judge';
import { ConfigError } from '../shared/errors';
import { attributeAxesSchema, type RunAttributes } from '../method/attributes';

/** Largest taxonomy file or template file read. Taxonomies are bounded far below this once parsed. */
export const MAX_METHOD_FILE_BYTES = 2 * 1024 * 1024;

/**
 * The files of a prompts directory and the template each holds. The system files are optional, and so
 * is the judge's rubric (`judge.txt`): without it the built-in one applies.
 */
export const PROMPT_FILES = {
  'skeleton.txt': ['skeleton', 'user'],
  'skeleton.system.txt': ['skeleton', 'system'],
  'responses.txt': ['responses', 'user'],
  'responses.system.txt': ['responses', 'system'],
  'judge.txt': ['judge', 'user'],
  'judge.system.txt': ['judge', 'system'],
} as const satisfies Record<string, readonly [Stage, 'system' | 'user']>;

/** Names of the copies written into a run's directory. */
export const METHOD_COPIES = { taxonomy: 'taxonomy.yaml', prompts: 'prompts' } as const;

const issueText = (error: z.ZodError): { path: string; message: string } => {
  const issue = error.issues[0];
  return { path: issue?.path.join('.') ?? '', message: issue?.message ?? 'invalid' };
};

async function readText(field: string, path: string): Promise<string> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ConfigError(field, `${path} is not a file`);
    size = info.size;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      field,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  if (size > MAX_METHOD_FILE_BYTES)
    throw new ConfigError(field, `${path} is ${size} bytes; the limit is ${MAX_METHOD_FILE_BYTES}`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path));
  } catch {
    throw new ConfigError(field, `${path} is not valid UTF-8`);
  }
}

/** Checks a taxonomy given as a value (a config file's inline one, an API option). */
export function checkTaxonomy(value: unknown, field = '--taxonomy', source?: string): Taxonomy {
  const parsed = taxonomySchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { path, message } = issueText(parsed.error);
  throw new ConfigError(field, `${source ? `${source}: ` : ''}${path || '(taxonomy)'}: ${message}`);
}

/** Reads and checks a taxonomy file (YAML or JSON). */
export async function readTaxonomyFile(path: string, field = '--taxonomy'): Promise<Taxonomy> {
  const text = await readText(field, path);
  let value: unknown;
  try {
    // A handful of aliases is plenty for a taxonomy; more is how an alias bomb starts.
    value = parse(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(
      field,
      `${path} is not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  return checkTaxonomy(value, field, path);
}

/** Checks prompt templates given as a value. */
export function checkPrompts(value: unknown, field = '--prompts', source?: string): PromptTemplates {
  const parsed = promptTemplatesSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const [stage, role] = (issue?.path ?? []) as string[];
  const file = Object.entries(PROMPT_FILES).find(([, [s, r]]) => s === stage && r === role)?.[0];
  const where = file ? (source ? join(source, file) : file) : (issue?.path.join('.') ?? '') || '(prompts)';
  throw new ConfigError(field, `${where}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Reads a prompts directory: `skeleton.txt` and `responses.txt` (the user messages of the two stages),
 * optionally `judge.txt` (the judge's rubric), and optionally each one's `.system.txt` (the built-in
 * system message is used when absent). One trailing newline of a file is dropped; any other file is
 * refused, so a misspelt name does not go unnoticed.
 */
export async function readPromptsDir(dir: string, field = '--prompts'): Promise<PromptTemplates> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (error) {
    throw new ConfigError(
      field,
      `cannot read directory ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  for (const name of names) {
    if (!Object.hasOwn(PROMPT_FILES, name))
      throw new ConfigError(
        field,
        `${join(dir, name)}: unknown file; a prompts directory holds ${Object.keys(PROMPT_FILES).join(', ')}`,
      );
  }
  const builtin = { ...BUILTIN_PROMPTS, judge: BUILTIN_JUDGE_PROMPT };
  const templates: Partial<Record<Stage, { system: string; user?: string }>> = {};
  for (const [name, [stage, role]] of Object.entries(PROMPT_FILES)) {
    if (!names.includes(name)) {
      if (role === 'user' && stage !== 'judge') throw new ConfigError(field, `${join(dir, name)}: missing`);
      continue;
    }
    templates[stage] ??= { system: builtin[stage].system };
    templates[stage][role] = (await readText(field, join(dir, name))).replace(/\r?\n$/, '');
  }
  if (templates.judge && templates.judge.user === undefined)
    throw new ConfigError(field, `${join(dir, 'judge.txt')}: missing (judge.system.txt needs it)`);
  return checkPrompts(templates, field, dir);
}

/**
 * A run's method as given in a config file or by the API: a path (relative to `baseDir`) or the value
 * itself. Undefined stays undefined: the built-in (or, on resume, the recorded) one applies.
 */
export async function loadMethodOptions(
  given: { taxonomy?: unknown; prompts?: unknown },
  baseDir: string,
  fields: { taxonomy: string; prompts: string },
): Promise<{ taxonomy?: Taxonomy; prompts?: PromptTemplates }> {
  const out: { taxonomy?: Taxonomy; prompts?: PromptTemplates } = {};
  if (typeof given.taxonomy === 'string')
    out.taxonomy = await readTaxonomyFile(resolve(baseDir, given.taxonomy), fields.taxonomy);
  else if (given.taxonomy !== undefined) out.taxonomy = checkTaxonomy(given.taxonomy, fields.taxonomy);
  if (typeof given.prompts === 'string')
    out.prompts = await readPromptsDir(resolve(baseDir, given.prompts), fields.prompts);
  else if (given.prompts !== undefined) out.prompts = checkPrompts(given.prompts, fields.prompts);
  return out;
}

/**
 * `--attributes`: `builtin`, `none`, or a YAML or JSON file of axes (`[{name, values: [...]}, ...]`, or
 * a mapping of axis name to values), checked as the run's input checks them.
 */
export async function loadAttributes(given: unknown, baseDir: string, field: string): Promise<RunAttributes> {
  if (given === 'builtin' || given === 'none') return given;
  let value = given;
  if (typeof given === 'string') value = parse(await readText(field, resolve(baseDir, given))) as unknown;
  if (value !== null && typeof value === 'object' && !Array.isArray(value))
    value = Object.entries(value as Record<string, unknown>).map(([name, values]) => ({ name, values }));
  const parsed = attributeAxesSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(field, `${issue?.path.join('.') || 'attributes'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** JSON with object keys sorted, so the same content always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

const sha256 = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

/** Content hash of a taxonomy (its intents, flows and topic lists) and prompt templates. */
export function methodHash(
  taxonomy: Taxonomy = BUILTIN_TAXONOMY,
  prompts: PromptTemplates = BUILTIN_PROMPTS,
): string {
  return `sha256:${sha256({ taxonomy, prompts })}`;
}

export const sameContent = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/**
 * Writes the run's taxonomy and templates beside its output: `--taxonomy DIR/taxonomy.yaml --prompts
 * DIR/prompts` gives the same method (and hash) again.
 */
export async function writeMethodCopies(
  outDir: string,
  taxonomy: Taxonomy,
  prompts: PromptTemplates,
  hash: string,
): Promise<void> {
  for (const [name, text] of methodCopies(taxonomy, prompts, hash))
    await writeAtomically(join(outDir, name), text);
}

/** The copies' paths (relative to the run's directory) and texts; a run without its own rubric has no judge.txt. */
export function methodCopies(taxonomy: Taxonomy, prompts: PromptTemplates, hash: string): [string, string][] {
  const copies: [string, string][] = [
    [
      METHOD_COPIES.taxonomy,
      `# The taxonomy of the run in this directory (${hash}); pass it with --taxonomy to reuse it.\n` +
        stringify(taxonomy, { lineWidth: 0 }),
    ],
  ];
  for (const [name, [stage, role]] of Object.entries(PROMPT_FILES)) {
    const template = prompts[stage];
    if (template) copies.push([`${METHOD_COPIES.prompts}/${name}`, `${template[role]}\n`]);
  }
  return copies;
}
