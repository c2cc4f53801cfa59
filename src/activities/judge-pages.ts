/**
 * `judge DIR`'s storage: pages of dialogs.jsonl still to judge, verdicts appended to judgments.jsonl
 * exactly once per dialogue, and their merge into dialogs.jsonl at the end.
 */
import { z } from 'zod';
import { inJudgeSample } from '../method/judge';
import { describeIssues } from '../method/replies';
import type { JudgeVerdict } from '../run/schemas';
import { InvalidRecordError } from '../storage/judgments';
import { toStorageFailure } from './errors';
import { appendAll, type OpenStore } from './store-open';

export interface ReadJudgePageInput {
  outDir: string;
  runId: string;
  /** A line start of dialogs.jsonl: 0/0, or the previous page's `next`. */
  from: { line: number; byte: number };
  maxLines: number;
  /** The fraction judged, a seeded sample (`inJudgeSample`). */
  sample: number;
}

type JudgeableDialogue = ReadJudgePageResult['dialogues'][number];

export interface ReadJudgePageResult {
  dialogues: {
    line: number;
    id: string;
    /** The record's intent and info-flow names, as written. */
    intent: string;
    infoFlow: string;
    queries: string[];
    responses: string[];
  }[];
  /** Lines read, judged or not. */
  scanned: number;
  next: { line: number; byte: number };
  done: boolean;
}

export interface StoreJudgmentsInput {
  outDir: string;
  runId: string;
  judgments: { id: string; line: number; judge: JudgeVerdict }[];
}

/** What `judge DIR` reads of a record; the rest of the line is left as it is. */
const judgeableSchema = z.object({
  id: z.string().min(1),
  intent: z.string(),
  info_flow: z.string(),
  conversation: z.array(z.object({ role: z.string(), value: z.string() })),
  judge: z.object({ error: z.string().optional() }).passthrough().optional(),
});

function judgeableRecord(text: string, line: number): z.infer<typeof judgeableSchema> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRecordError(`dialogs.jsonl line ${line + 1}: not JSON`);
  }
  const parsed = judgeableSchema.safeParse(value);
  if (!parsed.success)
    throw new InvalidRecordError(`dialogs.jsonl line ${line + 1}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** What the judge needs of a record: its turns, the responses cut to the queries they answer. */
function judgeable(record: z.infer<typeof judgeableSchema>, line: number): JudgeableDialogue {
  const said = (role: string) => record.conversation.filter((t) => t.role === role).map((t) => t.value);
  const queries = said('user');
  return {
    line,
    id: record.id,
    intent: record.intent,
    infoFlow: record.info_flow,
    queries,
    responses: said('assistant').slice(0, queries.length),
  };
}

export function createJudgeDirStorage(open: OpenStore) {
  return {
    /**
     * A page of dialogs.jsonl for `judge DIR`: the records still to judge (no verdict, or a failed one;
     * in the sample; none already in judgments.jsonl), with what the judge needs and their line.
     */
    async readJudgePage(input: ReadJudgePageInput): Promise<ReadJudgePageResult> {
      const store = await open(input.outDir, [`${input.runId}.page.0`]);
      try {
        const page = await store.readDialoguesPage(input.from, input.maxLines);
        const dialogues: JudgeableDialogue[] = [];
        for (const { line, text } of page.lines) {
          const record = judgeableRecord(text, line);
          if (record.judge && record.judge.error === undefined) continue;
          if (!inJudgeSample(record.id, input.sample) || (await store.hasJudgment(record.id))) continue;
          dialogues.push(judgeable(record, line));
        }
        return { dialogues, scanned: page.lines.length, next: page.next, done: page.done };
      } catch (error) {
        throw toStorageFailure(error);
      }
    },
    /** Appends verdicts to judgments.jsonl, in the order given; an id already there is skipped. */
    async storeJudgments(input: StoreJudgmentsInput): Promise<{ written: number }> {
      const store = await open(input.outDir, [`${input.runId}.judge.0`]);
      const results = await appendAll(
        input.judgments.map((j) => store.appendJudgment(j.id, j.line, j.judge)),
      );
      return { written: results.filter((r) => r.status === 'written').length };
    },
    /** Merges judgments.jsonl into dialogs.jsonl (an atomic replace); see `JsonlStore.applyJudgments`. */
    async applyJudgments(input: { outDir: string; runId: string }): Promise<{ merged: number }> {
      const store = await open(input.outDir, [`${input.runId}.judge.0`]);
      try {
        return { merged: await store.applyJudgments() };
      } catch (error) {
        throw toStorageFailure(error);
      }
    },
  };
}
