/**
 * The files every route to a finished run leaves beside its records, as `generate` does: summary.json
 * (so `report` shows tokens), and run.json and the method copies when no client wrote them (a run
 * started with `temporal workflow start`), so the dataset card has the run's settings.
 */
import type { RunFile } from '../client/generate';
import { methodCopies, methodHash } from '../client/method-files';
import { packageVersion } from '../client/version';
import { summaryFileText, SUMMARY_FILE } from '../report/stats';
import type { WriteRunFilesInput } from '../run/schemas';
import { OUTPUT_FILES } from '../shared/constants';
import type { SideFile } from '../storage/jsonl-store';

export function runFiles({ config, summary, startedAt }: WriteRunFilesInput): SideFile[] {
  const hash = config.taxonomy && config.prompts ? methodHash(config.taxonomy, config.prompts) : undefined;
  const record: RunFile = {
    runId: config.runId,
    input: config,
    createdAt: startedAt,
    packageVersion: packageVersion(),
    ...(hash && { methodHash: hash }),
  };
  // A client's run.json stays: it holds the input as that client recorded it.
  const copies =
    config.taxonomy && config.prompts && hash
      ? methodCopies(config.taxonomy, config.prompts, hash).map(([name, text]) => ({
          name,
          text,
          ifAbsent: true,
        }))
      : [];
  return [
    { name: SUMMARY_FILE, text: summaryFileText(summary, config.prices) },
    { name: OUTPUT_FILES.run, text: JSON.stringify(record, null, 2), ifAbsent: true },
    ...copies,
  ];
}
