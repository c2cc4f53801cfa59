/**
 * `consistent-chat judge DIR`'s workflow (src/workflows/judge-records.ts) as the client and the
 * progress query see it: its input, its running books and its result.
 */
import type { JudgeTally } from '../method/types';
import type { RunConfig } from './input';

type Tokens = { prompt: number; completion: number };

/** What `judge DIR` has done so far: carried across continue-as-new, returned at the end. */
export interface JudgeRecordsBooks {
  /** Lines of dialogs.jsonl read. */
  scanned: number;
  /** Records given a verdict, and records whose judge call failed (they stay to judge). */
  judged: number;
  failed: number;
  llmCalls: number;
  tokens: Tokens;
  failedAttempts: Tokens & { calls: number };
  tally: JudgeTally;
  systemicInARow: number;
  /** Why judging stopped early: the judge failed systemically this many times in a row. */
  stopped?: string;
}

export interface JudgeRecordsInput {
  /** The run's input as `run.json` records it, with `judge` set to this command's judge. */
  config: RunConfig;
  /** The next page's start in dialogs.jsonl; absent at first. */
  from?: { line: number; byte: number };
  books?: JudgeRecordsBooks;
}

export interface JudgeRecordsSummary extends JudgeRecordsBooks {
  runId: string;
  judgeModel: string;
  /** Records given a verdict by the merge into dialogs.jsonl. */
  merged: number;
  /** USD for the judge's calls and failed attempts at the judge model's price; absent without one. */
  estimatedCostUsd?: number;
}
