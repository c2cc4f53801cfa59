/** The run's directory itself: checked before any LLM call, and its side files written at the end. */
import type {
  CheckOutputDirectoryInput,
  CheckOutputDirectoryResult,
  WriteRunFilesInput,
} from '../run/schemas';
import type { StoreRegistry } from '../storage/jsonl-store';
import { toStorageFailure } from './errors';
import { runFiles } from './run-files';

export function createRunDirectoryStorage(storage: StoreRegistry) {
  return {
    /**
     * Opens (creating) the run's directory as a store would, before the run pays for any LLM call: a
     * directory this worker refuses fails at once as `Storage.ForbiddenDirectory`, naming it and the root.
     */
    async checkOutputDirectory(input: CheckOutputDirectoryInput): Promise<CheckOutputDirectoryResult> {
      try {
        await storage.get(input.outDir, input.runId);
      } catch (error) {
        throw toStorageFailure(error, storage.root);
      }
      return { root: storage.root };
    },
    writeRunFiles: runFilesWriter(storage),
  };
}

/** The run's last step: summary.json, and run.json and the method copies if no client wrote them. */
function runFilesWriter(storage: StoreRegistry) {
  return async function writeRunFiles(input: WriteRunFilesInput): Promise<{ written: string[] }> {
    let store;
    try {
      store = await storage.get(input.config.outDir, input.config.runId);
    } catch (error) {
      throw toStorageFailure(error, storage.root);
    }
    try {
      return { written: await store.writeSideFiles(runFiles(input)) };
    } catch (error) {
      throw toStorageFailure(error);
    }
  };
}
