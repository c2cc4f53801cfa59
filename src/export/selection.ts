/**
 * Which of a run's records an export keeps: `--filter`s first (so a dropped dialogue is never the kept
 * original), then `--dedup`; each dropped record is listed with why. What is kept is counted for the
 * dataset card.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MetricsAccumulator, metricsOf } from '../method/metrics';
import { QualityAccumulator } from '../report/quality';
import { DuplicateIndex, dialogueText, type DedupOptions, type DuplicateKind } from './dedup';
import { describeFilter, firstFailedFilter, type MetricFilter } from './filters';
import { EXPORT_FILES, type DuplicateLine, type FilteredLine } from './files';
import type { JsonlWriter } from './jsonl-writer';
import { readDialogueRecords, type StoredDialogueRecord } from './records';

const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

export class Selection {
  /** Records read, kept or not. */
  read = 0;
  readonly duplicates: Record<DuplicateKind, number> = { exact: 0, near: 0 };
  readonly filtered: { filter: string; removed: number }[];
  readonly metrics = new MetricsAccumulator();
  readonly quality = new QualityAccumulator();
  readonly counts = {
    perIntent: new Map<string, number>(),
    perFlow: new Map<string, number>(),
    perIntentFlow: new Map<string, number>(),
    models: new Map<string, number>(),
  };

  private constructor(
    private readonly filters: MetricFilter[],
    readonly dedup: (DedupOptions & { index: DuplicateIndex }) | undefined,
    private readonly lists: { duplicates?: JsonlWriter; filtered?: JsonlWriter },
  ) {
    this.filtered = filters.map((f) => ({ filter: describeFilter(f), removed: 0 }));
  }

  /** `openList` opens a list's writer in the output directory (only for the lists this export keeps). */
  static async open(
    filters: MetricFilter[],
    dedup: DedupOptions | undefined,
    openList: (name: string) => Promise<JsonlWriter>,
  ): Promise<Selection> {
    const duplicates = dedup ? await openList(EXPORT_FILES.duplicates) : undefined;
    const filtered = filters.length ? await openList(EXPORT_FILES.filtered) : undefined;
    const index = dedup && { ...dedup, index: new DuplicateIndex(dedup) };
    return new Selection(filters, index, { duplicates, filtered });
  }

  /** The records of `dir` that pass the filters and are no duplicate, counted as they go. */
  async *kept(dir: string): AsyncGenerator<StoredDialogueRecord> {
    for await (const record of readDialogueRecords(dir)) {
      this.read++;
      const measured = metricsOf(record);
      if (await this.filteredOut(record, measured.metrics)) continue;
      if (await this.duplicate(record)) continue;
      bump(this.counts.perIntent, record.intent);
      bump(this.counts.perFlow, record.info_flow);
      bump(this.counts.perIntentFlow, `${record.intent} / ${record.info_flow}`);
      bump(this.counts.models, record.model);
      this.metrics.add(measured.metrics, record.conversation.length / 2, measured.stored);
      this.quality.add(record);
      yield record;
    }
  }

  private async filteredOut(
    record: StoredDialogueRecord,
    metrics: ReturnType<typeof metricsOf>['metrics'],
  ): Promise<boolean> {
    const failed = firstFailedFilter(metrics, this.filters, record.judge);
    if (!failed) return false;
    const entry = this.filtered[failed.index]!;
    entry.removed++;
    const line: FilteredLine = { id: record.id, filter: entry.filter, value: failed.value };
    await this.lists.filtered!.write(line);
    return true;
  }

  private async duplicate(record: StoredDialogueRecord): Promise<boolean> {
    const match = this.dedup?.index.add(record.id, dialogueText(record.conversation));
    if (!match) return false;
    this.duplicates[match.kind]++;
    const line: DuplicateLine = {
      id: record.id,
      duplicate_of: match.of,
      kind: match.kind,
      similarity: Math.round(match.similarity * 1000) / 1000,
    };
    await this.lists.duplicates!.write(line);
    return true;
  }

  /**
   * Puts the lists in place (adding their names to `files`); a list this export did not make is
   * removed, since one from an earlier export would no longer describe this one.
   */
  async commitLists(out: string, files: string[]): Promise<void> {
    const lists = [
      [this.lists.duplicates, EXPORT_FILES.duplicates],
      [this.lists.filtered, EXPORT_FILES.filtered],
    ] as const;
    for (const [writer, name] of lists) {
      if (!writer) {
        await rm(join(out, name), { force: true });
        continue;
      }
      await writer.close();
      await writer.commit();
      files.push(name);
    }
  }

  async abort(): Promise<void> {
    await this.lists.duplicates?.abort();
    await this.lists.filtered?.abort();
  }
}
