/**
 * `consistent-chat plan`: what a run of a given size would plan, with no Temporal server and no LLM
 * call (src/method/plan-stats.ts): distinct plans, repeats, coverage per intent, flow and attribute.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { expandSettingsSchema } from '../method/expansion';
import { BUILTIN_TAXONOMY, resolveIntent } from '../method/taxonomy';
import { formatPlanStats, planStats } from '../method/plan-stats';
import { ConfigError } from '../shared/errors';
import { loadAttributes, readTaxonomyFile } from './method-files';
import { loadPersonas, loadTopics } from './seed-files';

interface PlanFlags {
  dialogsPerIntent: string;
  intents?: string;
  seed: string;
  taxonomy?: string;
  topics?: string;
  attributes?: string;
  personas?: string;
  expand: boolean;
  json?: boolean;
}

async function plan(opts: PlanFlags): Promise<void> {
  const perIntent = Number(opts.dialogsPerIntent);
  if (!/^\d+$/.test(opts.dialogsPerIntent) || perIntent < 1 || perIntent > 10_000_000)
    throw new ConfigError(
      '--dialogs-per-intent',
      `must be a whole number from 1 to 10000000, got "${opts.dialogsPerIntent}"`,
    );
  const cwd = process.cwd();
  let taxonomy = opts.taxonomy ? await readTaxonomyFile(resolve(cwd, opts.taxonomy)) : undefined;
  if (opts.topics) taxonomy = await loadTopics(opts.topics, taxonomy, cwd);
  let attributes = await loadAttributes(opts.attributes ?? 'builtin', cwd, '--attributes');
  if (opts.personas) attributes = await loadPersonas(opts.personas, attributes, cwd);
  const intents = opts.intents?.split(',').map((name) => {
    const id = resolveIntent(name, taxonomy);
    if (!id) throw new ConfigError('--intents', `unknown intent "${name.trim()}"`);
    return id;
  });
  // As generate: a run with its own topic list does not expand.
  const expand = opts.expand && !taxonomy ? expandSettingsSchema.parse({}) : false;
  const stats = planStats({
    seed: opts.seed,
    intents: intents ?? (taxonomy ?? BUILTIN_TAXONOMY).intents.map((i) => i.id),
    perIntent,
    taxonomy,
    attributes,
    expand,
  });
  process.stdout.write(opts.json ? `${JSON.stringify(stats)}\n` : `${formatPlanStats(stats).join('\n')}\n`);
}

export function addPlanCommand(program: Command): void {
  program
    .command('plan')
    .description(
      'print what a run would plan: distinct plans, repeats, coverage per intent, flow and attribute (no LLM call)',
    )
    .requiredOption('--dialogs-per-intent <n>', 'dialogues per intent')
    .option('--intents <names>', 'comma-separated intents (default all)')
    .option(
      '--seed <seed>',
      "plan seed: a run's plan follows its seed (generate's default is the run id)",
      'plan',
    )
    .option('--taxonomy <file>', 'YAML or JSON taxonomy (default the built-in one)')
    .option('--topics <file>', 'your own topics: CSV, JSONL or Parquet, FILE:COLUMN (default column "topic")')
    .option('--attributes <file>', 'builtin (default), none, or a YAML/JSON file of axes')
    .option('--personas <file>', 'personas: YAML, JSON, CSV or JSONL, FILE:COLUMN (default column "persona")')
    .option('--no-expand', 'plan over the seed topics only (else counts over the leaves expansion aims for)')
    .option('--json', 'print the figures as one JSON object')
    .action(plan);
}
