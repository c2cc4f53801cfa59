/**
 * The ConsistentChat method in one place: read this folder first.
 * - intents.ts: the nine interaction intents and their information flows
 * - topics.ts: the topic seeds drawn for each intent
 * - plan.ts: the seeded, spread draw of (info flow, topic) per dialogue
 * - prompts.ts: the skeleton prompt (stage 1) and the responses prompt (stage 2)
 * - replies.ts: the reply schemas, strict JSON schemas and tolerant parsing
 * - dialogue.ts: how a skeleton and its responses become an output record
 */
export * from './intents';
export * from './topics';
export * from './plan';
export * from './prompts';
export * from './replies';
export * from './dialogue';
