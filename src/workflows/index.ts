/** Workflow definitions: deterministic orchestration only. The worker bundles this file. */
export { consistentChatRun } from './run';
export { consistentChatIntent } from './intent';
export { consistentChatRetry } from './retry';
export { consistentChatJudgeRecords } from './judge-records';
export { consistentChatBatchIntent } from './batch-intent';
