/**
 * The `topics` stage of a run (issue 22): before an intent's child starts, its seed topics grow into a
 * tree with enough leaves for its dialogues (src/method/expansion.ts), one LLM activity per parent, a
 * few in flight at once. The leaves are recorded in history (the activities' results) and written to
 * `topics.jsonl`; the child plans over them as its taxonomy's topics, so a resumed or replayed run
 * plans the same dialogues. A parent whose call fails for good stays a leaf: the run goes on.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  log,
  patched,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  EXPANSION_LIMITS,
  expansionCallBudget,
  expansionRound,
  leavesNeeded,
  parentsPerRound,
  TopicDedup,
  type ExpandSettings,
  type TopicLeaf,
} from '../method/expansion';
import type { IntentId } from '../method/intents';
import { seededPermutation } from '../method/plan';
import { BUILTIN_TAXONOMY, sliceTaxonomy, taxonomyIntent, type Taxonomy } from '../method/taxonomy';
import { attemptUsageSchema, type LlmCallSettings, type RunConfig, type Usage } from '../run/schemas';
import { llmActivityOptions, storageActivityOptions, storageQueueOf } from './intent/options';
import { PATCHES } from './patches';

/** The `topics` stage's calls and tokens, kept apart from the dialogues' stages. */
export interface TopicBooks {
  calls: number;
  prompt: number;
  completion: number;
  failed: { calls: number; prompt: number; completion: number };
  /** Subtopics dropped: by the reply checks, as exact or near duplicates. */
  dropped: number;
  duplicates: number;
}

export function openTopicBooks(): TopicBooks {
  return {
    calls: 0,
    prompt: 0,
    completion: 0,
    failed: { calls: 0, prompt: 0, completion: 0 },
    dropped: 0,
    duplicates: 0,
  };
}

/** A node of the growing tree: a leaf until its expansion returns children. */
interface Node extends TopicLeaf {
  children?: Node[];
}

const TOPICS_PER_STORE = 500;

/**
 * The leaves `intent` plans over, or undefined when its seed topics already suffice (no call made).
 * `settings` carries the run's bound for the worker gate, as the dialogues' calls do.
 */
export async function expandTopics(
  config: RunConfig,
  intent: IntentId,
  expand: ExpandSettings,
  settings: LlmCallSettings,
  books: TopicBooks,
): Promise<TopicLeaf[] | undefined> {
  const entry = taxonomyIntent(config.taxonomy ?? BUILTIN_TAXONOMY, intent);
  const target = leavesNeeded(config.numDialogsPerIntent, expand);
  if (target <= entry.topics.length) return undefined;
  const llm = proxyActivities<Activities>(llmActivityOptions(config));
  const dedup = new TopicDedup();
  const roots: Node[] = entry.topics.map((topic) => ({ topic, path: [topic] }));
  for (const root of roots) dedup.add(root.topic);
  let leaves = roots.length;
  let level = roots;
  // Before this patch every call asked `subtopicsPerCall`, growing a few seeds only in smaller runs.
  const spread = patched(PATCHES.expansionSpread);
  const budget = expansionCallBudget(config.numDialogsPerIntent);
  let asked = 0;
  for (let depth = 1; depth <= EXPANSION_LIMITS.maxDepth && leaves < target; depth++) {
    // Parents in a seeded order: which topics grow first is part of the plan, reproducible from the seed.
    const order = seededPermutation(level.length, `${config.seed ?? config.runId}/${intent}/expand/${depth}`);
    const queue = order.map((i) => level[i]!);
    const next: Node[] = [];
    while (queue.length > 0 && leaves < target) {
      const missing = target - leaves;
      const round = spread
        ? expansionRound(missing, queue.length, budget - asked, expand)
        : { per: expand.subtopicsPerCall, parents: parentsPerRound(missing, expand.subtopicsPerCall) };
      const per = round.per;
      const parents = queue.splice(0, round.parents);
      asked += parents.length;
      const replies = await Promise.all(
        parents.map((parent) =>
          llm.expandTopic
            .executeWithOptions(
              { ...llmActivityOptions(config), summary: `topics: ${parent.path.join(' → ')}` },
              [{ intent: entry.name, path: parent.path, count: per, llm: settings }],
            )
            .catch((error: unknown) => failedExpansion(error, books, parent)),
        ),
      );
      // Taken in the parents' order, whatever order the replies came in: the tree is deterministic.
      parents.forEach((parent, i) => {
        const reply = replies[i];
        if (!reply) return;
        countExpansion(books, reply.usage, reply.failedAttempts);
        books.dropped += reply.dropped;
        const children = reply.subtopics.filter((topic) => {
          const duplicate = dedup.add(topic) !== undefined;
          if (duplicate) books.duplicates++;
          return !duplicate;
        });
        if (children.length < 2) return;
        parent.children = children.map((topic) => ({ topic, path: [...parent.path, topic] }));
        leaves += children.length - 1;
        next.push(...parent.children);
      });
    }
    level = next;
  }
  const result = leavesOf(roots).slice(0, EXPANSION_LIMITS.maxLeaves);
  await storeTopics(config, intent, result);
  return result;
}

function leavesOf(nodes: Node[]): TopicLeaf[] {
  return nodes.flatMap((node) =>
    node.children ? leavesOf(node.children) : [{ topic: node.topic, path: node.path }],
  );
}

function countExpansion(
  books: TopicBooks,
  usage: Usage,
  paid: { calls: number; promptTokens: number; completionTokens: number } | undefined,
) {
  books.calls++;
  books.prompt += usage.promptTokens;
  books.completion += usage.completionTokens;
  if (paid) countFailed(books, paid);
}

function countFailed(
  books: TopicBooks,
  paid: { calls: number; promptTokens: number; completionTokens: number },
) {
  books.failed.calls += paid.calls;
  books.failed.prompt += paid.promptTokens;
  books.failed.completion += paid.completionTokens;
}

/** A parent whose expansion failed for good stays a leaf; its paid attempts are counted. */
function failedExpansion(error: unknown, books: TopicBooks, parent: Node): undefined {
  if (isCancellation(error)) throw error;
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (cause instanceof TimeoutFailure) countFailed(books, { calls: 1, promptTokens: 0, completionTokens: 0 });
  const paid = attemptUsageSchema.safeParse(
    cause instanceof ApplicationFailure ? cause.details?.[0] : undefined,
  );
  if (paid.success) countFailed(books, paid.data);
  log.warn('topic expansion failed; the topic stays a leaf', {
    topic: parent.topic,
    error: cause?.message ?? String(error),
  });
  return undefined;
}

/** `topics.jsonl`: every leaf with its path, in batches that keep each activity's input small. */
async function storeTopics(config: RunConfig, intent: IntentId, leaves: TopicLeaf[]): Promise<void> {
  const storage = proxyActivities<Activities>(storageActivityOptions(storageQueueOf(config)));
  for (let from = 0; from < leaves.length; from += TOPICS_PER_STORE)
    await storage.storeTopics({
      outDir: config.outDir,
      runId: config.runId,
      intent,
      from,
      leaves: leaves.slice(from, from + TOPICS_PER_STORE),
    });
}

/** The intent's part of the run's taxonomy with its leaves as topics, each with its path. */
export function expandedTaxonomy(taxonomy: Taxonomy, intent: IntentId, leaves: TopicLeaf[]): Taxonomy {
  const slice = sliceTaxonomy(taxonomy, intent);
  return {
    ...slice,
    intents: slice.intents.map((i) => ({
      ...i,
      topics: leaves.map((l) => l.topic),
      topicPaths: leaves.map((l) => l.path),
    })),
  };
}
