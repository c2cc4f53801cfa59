/**
 * Estimated cost of a run: a price per million prompt and completion tokens for each model. The table
 * holds list prices of common hosted models; a run's `prices` (the config file's `prices:` key) adds
 * or replaces entries, e.g. `prices: {my-model: {prompt: 0.2, completion: 0.8}}`. A model with no
 * entry (a local server) has no estimate rather than a wrong one.
 */
import { z } from 'zod';

export const priceSchema = z
  .object({
    /** USD per 1,000,000 prompt tokens. */
    prompt: z.number().min(0).max(10_000),
    /** USD per 1,000,000 completion tokens. */
    completion: z.number().min(0).max(10_000),
    /** The provider's batch price, when it is not `BATCH_PRICE_FACTOR` of the real-time one. */
    batch: z
      .object({ prompt: z.number().min(0).max(10_000), completion: z.number().min(0).max(10_000) })
      .strict()
      .optional(),
  })
  .strict();
export type Price = z.infer<typeof priceSchema>;

export const pricesSchema = z.record(z.string().min(1).max(200), priceSchema);
export type Prices = z.infer<typeof pricesSchema>;

/** USD per million tokens, OpenAI list prices (standard tier) as of 2025; override them per run. */
export const DEFAULT_PRICES: Readonly<Prices> = {
  'gpt-5': { prompt: 1.25, completion: 10 },
  'gpt-5-mini': { prompt: 0.25, completion: 2 },
  'gpt-5-nano': { prompt: 0.05, completion: 0.4 },
  'gpt-4.1': { prompt: 2, completion: 8 },
  'gpt-4.1-mini': { prompt: 0.4, completion: 1.6 },
  'gpt-4.1-nano': { prompt: 0.1, completion: 0.4 },
  'gpt-4o': { prompt: 2.5, completion: 10 },
  'gpt-4o-mini': { prompt: 0.15, completion: 0.6 },
  'o4-mini': { prompt: 1.1, completion: 4.4 },
  'o3-mini': { prompt: 1.1, completion: 4.4 },
  'gpt-3.5-turbo': { prompt: 0.5, completion: 1.5 },
};

/** Batch APIs (OpenAI, Anthropic, Gemini) charge half the real-time price for the same tokens. */
export const BATCH_PRICE_FACTOR = 0.5;

/** The price of a model's tokens sent through its provider's batch API. */
export function batchPrice(price: Price): Price {
  return (
    price.batch ?? {
      prompt: price.prompt * BATCH_PRICE_FACTOR,
      completion: price.completion * BATCH_PRICE_FACTOR,
    }
  );
}

/** What tokens sent through a batch saved against their real-time price (0 without a price). */
export function batchSavings(
  price: Price | undefined,
  tokens: { prompt: number; completion: number },
): number {
  if (!price) return 0;
  return (costOf(price, tokens) ?? 0) - (costOf(batchPrice(price), tokens) ?? 0);
}

/**
 * The price of `model`: an exact entry, else the longest entry the name starts with followed by `-`
 * (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`). The run's own prices win over the table.
 */
export function priceFor(model: string, prices: Prices = {}): Price | undefined {
  for (const table of [prices, DEFAULT_PRICES]) {
    if (Object.hasOwn(table, model)) return table[model];
    const prefix = Object.keys(table)
      .filter((name) => model.startsWith(`${name}-`))
      .sort((a, b) => b.length - a.length)[0];
    if (prefix) return table[prefix];
  }
  return undefined;
}

/** USD for the given tokens, or undefined when the model has no price. */
export function costOf(
  price: Price | undefined,
  tokens: { prompt: number; completion: number },
): number | undefined {
  if (!price) return undefined;
  return (tokens.prompt * price.prompt + tokens.completion * price.completion) / 1_000_000;
}

/** `$0.0123`, `$12.35`, or `n/a` without a price. */
export function formatCost(usd: number | undefined): string {
  if (usd === undefined) return 'cost n/a';
  return `est. $${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

type Tokens = { prompt: number; completion: number };

interface PaidCounts {
  tokens: Tokens;
  failedAttempts?: { skeleton: Tokens; responses: Tokens; judge?: Tokens };
  stageTokens?: { judge?: Tokens };
  /** Batch runs: the share of `tokens` that went through the provider's batches. */
  batch?: { tokens: Tokens };
}

/** Every paid token of some intents: successful calls and failed attempts of both stages. */
export function paidTokens(intents: readonly PaidCounts[]): { prompt: number; completion: number } {
  const total = { prompt: 0, completion: 0 };
  for (const i of intents) {
    total.prompt += i.tokens.prompt;
    total.completion += i.tokens.completion;
    for (const stage of [i.failedAttempts?.skeleton, i.failedAttempts?.responses, i.failedAttempts?.judge]) {
      total.prompt += stage?.prompt ?? 0;
      total.completion += stage?.completion ?? 0;
    }
  }
  return total;
}

/** The judge's share of `paidTokens`: its calls and failed attempts. */
export function judgePaidTokens(intents: readonly PaidCounts[]): Tokens {
  const total = { prompt: 0, completion: 0 };
  for (const i of intents) {
    for (const part of [i.stageTokens?.judge, i.failedAttempts?.judge]) {
      total.prompt += part?.prompt ?? 0;
      total.completion += part?.completion ?? 0;
    }
  }
  return total;
}

/**
 * USD for a run's paid tokens, the judge's at its own model's price; undefined when a model that was
 * paid for has no price.
 */
export function runCostUsd(
  intents: readonly PaidCounts[],
  models: { model: string; judgeModel?: string },
  prices?: Prices,
): number | undefined {
  const ownJudge = models.judgeModel !== undefined && models.judgeModel !== models.model;
  return splitCostUsd(
    intents,
    priceFor(models.model, prices),
    ownJudge ? { price: priceFor(models.judgeModel!, prices) } : undefined,
  );
}

/**
 * `runCostUsd` from prices already looked up (the live progress carries them): `judge` when the judge
 * is another model than the run's, its price undefined when that model has none.
 */
export function splitCostUsd(
  intents: readonly PaidCounts[],
  price: Price | undefined,
  judge?: { price: Price | undefined },
): number | undefined {
  const all = paidTokens(intents);
  const judged = judgePaidTokens(intents);
  if (!judge || judged.prompt + judged.completion === 0) return costOf(price, all);
  const generation = costOf(price, {
    prompt: all.prompt - judged.prompt,
    completion: all.completion - judged.completion,
  });
  const judging = costOf(judge.price, judged);
  return generation === undefined || judging === undefined ? undefined : generation + judging;
}

/**
 * The estimate a run's live views show (the CLI's progress, `status`, the UI's details): `splitCostUsd`
 * with the tokens that went through batches at the batch price.
 */
export function liveCostUsd(
  intents: readonly PaidCounts[],
  price: Price | undefined,
  judge?: { price: Price | undefined },
): number | undefined {
  const usd = splitCostUsd(intents, price, judge);
  const batched = { prompt: 0, completion: 0 };
  for (const i of intents) {
    batched.prompt += i.batch?.tokens.prompt ?? 0;
    batched.completion += i.batch?.tokens.completion ?? 0;
  }
  return usd === undefined ? undefined : usd - batchSavings(price, batched);
}
