/**
 * The storage layer's exports, from one place. By concern:
 * - `run-store.ts`: `JsonlStore`, the durable, exactly-once writer of one run's output directory;
 * - `jsonl-file.ts`: one append-only file with its id index, checkpoints and group commit;
 * - `directory-lock.ts`: one writer per directory (`LockLostError` once taken over);
 * - `marker.ts`: which directories are this package's output; `small-files.ts`: their guard files;
 * - `store-registry.ts`: one store per directory in a process, closed when idle.
 */
export { ForbiddenDirectoryError } from './confine';
export { DirectoryInUseError, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, LockLostError } from './directory-lock';
export { MARKER_FILE } from './marker';
export { DEFAULT_JSONL_STORE_OPTIONS, JsonlStore, type JsonlStoreOptions, type SideFile } from './run-store';
export { STORE_IDLE_CLOSE_MS, StoreRegistry } from './store-registry';
