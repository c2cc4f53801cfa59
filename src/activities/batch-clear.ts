/**
 * Removes staged batch files once nothing needs them: a responses batch's replies after its dialogues
 * are stored, and the intent's whole `.batch/<intent>/` when it completes (then `.batch/` itself once
 * no intent has files there). A resumed run still finds what it needs: the workflow asks for this only
 * after the step that read the files has completed in its history.
 */
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClearStagingInput } from '../run/batch';
import { openConfinedDirectory } from '../storage/confine';
import { repliesFile, STAGING_DIR, withStaging } from './batch-staging';
import type { BatchDeps } from './batch-submit';
import { toBatchFailure } from './errors';

export function createClearStaging(deps: BatchDeps) {
  return async function clearStaging(input: ClearStagingInput): Promise<void> {
    try {
      if (input.batch) {
        const { stage, batchId } = input.batch;
        await withStaging(deps.root, input.outDir, input.intent, (staging) =>
          staging.remove(repliesFile(stage, batchId)),
        );
        return;
      }
      if (!deps.root) return;
      const staging = await openConfinedDirectory(deps.root, join(input.outDir, STAGING_DIR));
      try {
        // fd-relative: a symlink put in the intent's place is unlinked, never followed.
        await rm(staging.child(input.intent), { recursive: true, force: true });
      } finally {
        await staging.close();
      }
      const out = await openConfinedDirectory(deps.root, input.outDir);
      // Another intent may still have files there: then it stays until that one completes.
      await rmdir(out.child(STAGING_DIR))
        .catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOTEMPTY' && error.code !== 'ENOENT' && error.code !== 'EEXIST') throw error;
        })
        .finally(() => out.close());
    } catch (error) {
      throw toBatchFailure(error);
    }
  };
}
