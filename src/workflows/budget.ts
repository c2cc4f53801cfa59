/**
 * When an intent workflow stops taking new dialogues and continues as new. Dialogues in flight must
 * still fit in the current history, so the check projects their cost before dispatching one more.
 */
import { HISTORY_BUDGET } from '../shared/constants';

/** Generous per-dialogue history cost: 3 activities (9 events) plus workflow tasks around them. */
export const EVENTS_PER_DIALOGUE = 20;
/** Before a run has measured itself: skeleton, responses and stored record, each once or twice in history. */
export const INITIAL_BYTES_PER_DIALOGUE = 24 * 1024;
/** In-flight dialogues one intent workflow may hold: its drain reserve stays well inside the budget. */
export const MAX_WINDOW_PER_WORKFLOW = 200;

export interface HistoryReading {
  historyLength: number;
  historySize: number;
  continueAsNewSuggested: boolean;
  /** Dialogues finished within this workflow run, to measure bytes per dialogue. */
  finishedThisRun: number;
  /** History size when this run started its first dialogue. */
  baseSize: number;
}

export function hasRoomForAnother(reading: HistoryReading, inFlight: number): boolean {
  if (reading.continueAsNewSuggested) return false;
  const measured =
    reading.finishedThisRun >= 10 ? (reading.historySize - reading.baseSize) / reading.finishedThisRun : 0;
  const bytesPerDialogue = Math.max(
    INITIAL_BYTES_PER_DIALOGUE / 2,
    measured * 1.5,
    measured ? 0 : INITIAL_BYTES_PER_DIALOGUE,
  );
  const projectedEvents = reading.historyLength + (inFlight + 1) * EVENTS_PER_DIALOGUE;
  const projectedBytes = reading.historySize + (inFlight + 1) * bytesPerDialogue;
  return projectedEvents < HISTORY_BUDGET.maxEvents && projectedBytes < HISTORY_BUDGET.maxBytes;
}

/**
 * LLM activities an intent schedules beyond its share of the run's concurrency. They wait at the
 * worker's gate for the run (src/activities/run-gate.ts) and start the moment a call ends, so a freed
 * slot is refilled without a workflow round trip, and activities waiting out a retry delay leave
 * their slot to others. The run's bound holds at each worker; across several workers the run has at
 * most its concurrency plus these in flight.
 */
export function scheduleAhead(share: number): number {
  return Math.ceil(share / 4);
}

/** Splits the run's concurrency across the intents still running, largest shares first. */
export function splitConcurrency(total: number, intents: readonly string[]): Map<string, number> {
  const shares = new Map<string, number>();
  const base = Math.floor(total / Math.max(1, intents.length));
  const extra = total - base * intents.length;
  intents.forEach((intent, i) =>
    shares.set(intent, Math.min(MAX_WINDOW_PER_WORKFLOW, base + (i < extra ? 1 : 0))),
  );
  return shares;
}

/**
 * Bytes of finished dialogues one storage activity carries. Temporal refuses payloads over 2 MB; one
 * record is at most ~0.6 MB (20 turns of the longest query and response the reply schemas allow, 3
 * UTF-8 bytes per character), so a batch always fits at least one and stays well under the limit.
 */
export const STORE_BATCH_BYTES = 1024 * 1024;

/**
 * How long a storage batch waits for more finished dialogues while LLM calls are still finishing. A
 * storage activity costs the server and the worker about what an LLM call does; one per few seconds
 * instead of one per dialogue saves a third of the orchestration's work. Records wait in the history
 * meanwhile (a crash loses nothing), and the batch goes at once when no call is left to wait for.
 */
export const STORE_GROUP_MS = 2_000;

/** UTF-8 length of a string, without TextEncoder (workflow code). */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair is one 4-byte character; a lone surrogate becomes U+FFFD (3 bytes).
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** How many of the queued records (their sizes in bytes, in order) the next storage batch takes: at least one. */
export function storeBatchLength(sizes: readonly number[], maxCount: number, maxBytes: number): number {
  let bytes = 0;
  let n = 0;
  while (n < sizes.length && n < maxCount) {
    bytes += sizes[n]!;
    if (n > 0 && bytes > maxBytes) break;
    n++;
  }
  return n;
}
