import type { TopicLeaf } from '../method/expansion';
import { appendAll, type OpenStore } from './store-open';

export interface StoreTopicsInput {
  outDir: string;
  runId: string;
  intent: string;
  /** Index of the first leaf: a long list goes in several batches. */
  from: number;
  leaves: TopicLeaf[];
}

export function createTopicStorage(open: OpenStore) {
  return {
    /** Writes an intent's topic leaves to `topics.jsonl`; ids already there are skipped (retries, resumes). */
    async storeTopics(input: StoreTopicsInput): Promise<{ written: number }> {
      const ids = input.leaves.map((_, i) => `${input.runId}.${input.intent}.t${input.from + i}`);
      const store = await open(input.outDir, ids);
      const results = await appendAll(
        input.leaves.map((leaf, i) => store.appendTopic(ids[i]!, { intent: input.intent, ...leaf })),
      );
      return { written: results.filter((r) => r.status === 'written').length };
    },
  };
}
