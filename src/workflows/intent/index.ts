/** One intent of a run, as a folder: see workflow.ts for the loop, books.ts for its accounting. */
export { consistentChatIntent, MAX_PROGRESS_REPORTS, MIN_REPORT_INTERVAL_MS } from './workflow';
export type { IntentInput } from './workflow';
export type { IntentState } from './books';
