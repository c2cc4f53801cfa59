/**
 * The ConsistentChat method in one place: read this folder first.
 * - builtin-taxonomy.json: the shipped taxonomy: nine intents, their info flows as steps, their topics
 * - taxonomy.ts: the taxonomy schema (built-in or `--taxonomy FILE`), lookups and intent names
 * - intents.ts, topics.ts: typed views of the built-in taxonomy
 * - templates.ts: prompt templates with named placeholders (built-in or `--prompts DIR`)
 * - plan.ts: the seeded, spread draw of (info flow, topic) per dialogue
 * - prompts.ts: the skeleton prompt (stage 1) and the responses prompt (stage 2)
 * - replies.ts: the reply schemas, strict JSON schemas and tolerant parsing
 * - dialogue.ts: how a skeleton and its responses become an output record
 * - judge.ts: the judge's rubric (stage 3, optional): facts first, then a score and flags per reply
 * - metrics.ts: cheap per-dialogue metrics (distinct-n, words against the paper, repetition), no model
 */
export * from './taxonomy';
export * from './templates';
export * from './intents';
export * from './topics';
export * from './plan';
export * from './prompts';
export * from './replies';
export * from './dialogue';
export * from './metrics';
export * from './judge';
