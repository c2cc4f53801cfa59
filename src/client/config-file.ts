/**
 * `--config FILE`: the run's settings in YAML or JSON, with the workflow input's field names. Checked
 * like any input: size, encoding, syntax and unknown keys each give one line naming the file.
 */
import { readFile, stat } from 'node:fs/promises';
import { parse } from 'yaml';
import type { z } from 'zod';
import { INTENT_IDS, resolveIntent } from '../method/intents';
import { runInputObjectSchema, type RunInput } from '../run/schemas';
import { ConfigError } from '../shared/errors';

/** Option files are a few hundred bytes; anything past this is a mistake. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

const ALLOWED_KEYS = new Set(Object.keys(runInputObjectSchema.shape).filter((k) => k !== 'outDir'));

export async function readConfigFile(
  path: string,
  options: { customTaxonomy?: boolean } = {},
): Promise<Partial<RunInput>> {
  const field = '--config';
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new ConfigError(
      field,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  if (size > MAX_CONFIG_FILE_BYTES)
    throw new ConfigError(field, `${path} is ${size} bytes; the limit is ${MAX_CONFIG_FILE_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path));
  } catch {
    throw new ConfigError(field, `${path} is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 10 });
  } catch (error) {
    throw new ConfigError(
      field,
      `${path} is not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(field, `${path} must hold a mapping of settings`);
  for (const key of Object.keys(value)) {
    if (!ALLOWED_KEYS.has(key))
      // The key is quoted, not followed by a colon: a key named like a secret would read as one.
      throw new ConfigError(
        field,
        `unknown setting "${key}" in ${path}; known: ${[...ALLOWED_KEYS].join(', ')}`,
      );
  }
  // Values are checked here too, key by key, so a wrong type names the file's key rather than a flag.
  // `taxonomy` and `prompts` may be paths here: `loadMethodOptions` reads and checks them.
  const shape = runInputObjectSchema.shape as Record<string, z.ZodType>;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'taxonomy' || key === 'prompts') continue;
    const parsed = shape[key]!.safeParse(v);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(`${field} ${[key, ...issue.path].join('.')}`, `${issue.message} (in ${path})`);
    }
  }
  // Intents of the built-in taxonomy, unless a taxonomy of the run's own names others.
  const intents = (value as { intents?: string[]; taxonomy?: unknown }).intents;
  if (intents && !options.customTaxonomy && (value as { taxonomy?: unknown }).taxonomy === undefined) {
    intents.forEach((name, i) => {
      if (!resolveIntent(name))
        throw new ConfigError(
          `${field} intents.${i}`,
          `unknown intent "${name}" (in ${path}); known: ${INTENT_IDS.join(', ')}`,
        );
    });
  }
  return value;
}
