/**
 * The run's contract, above the method and below what runs it (workflows, activities, client): zod
 * schemas, and the types inferred from them, by concern: the workflow input (`input.ts`, also what the
 * CLI and the client API build), activity payloads (`activity-io.ts`) and progress (`progress.ts`).
 * `src/shared/` sits below it and imports nothing above.
 */
export * from './input';
export * from './activity-io';
export * from './progress';
export { dialogueRecordSchema, JUDGE_FLAGS, judgeVerdictSchema, turnSchema } from '../method/types';
export type {
  DialoguePlan,
  DialogueRecord,
  JudgeFlag,
  JudgeTally,
  JudgeVerdict,
  Skeleton,
} from '../method/types';
