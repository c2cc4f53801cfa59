/** Failure types of the storage activities: workflow code reads them, so they live apart from the activities. */
export const STORAGE_FAILURE_TYPES = {
  invalidRecord: 'Storage.InvalidRecord',
  /** A directory outside the storage worker's output root, behind a symlink, or another run's. */
  forbiddenDir: 'Storage.ForbiddenDirectory',
  /** Another worker took the directory's lock over: retried, the write goes to the worker that holds it. */
  lockLost: 'Storage.LockLost',
} as const;
