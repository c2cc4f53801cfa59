/**
 * Parquet shards of HF rows, streamed: rows are turned into Arrow record batches (`apache-arrow`) a
 * batch at a time and fed to `parquet-wasm` (Rust's arrow-rs Parquet writer compiled to WebAssembly)
 * through its streaming writer, which flushes a row group whenever one fills. Memory holds one batch
 * and one row group, whatever the size of the run.
 */
import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { Field, List, Struct, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { METADATA_COLUMNS, type HfRow } from './formats';

export interface ParquetShardOptions {
  /** Rows per shard file. @default 100_000 */
  rowsPerShard: number;
  /** Rows per Arrow batch handed to the writer. @default 1_000 */
  batchRows: number;
  /** Rows per Parquet row group. @default 10_000 */
  rowGroupRows: number;
}

export const DEFAULT_PARQUET_OPTIONS: ParquetShardOptions = {
  rowsPerShard: 100_000,
  batchRows: 1_000,
  rowGroupRows: 10_000,
};

const utf8 = () => new Utf8();
/** `messages`: list<struct<role: string, content: string>>, what `datasets` shows as a chat column. */
const messagesType = new List(
  new Field(
    'item',
    new Struct([new Field('role', utf8(), false), new Field('content', utf8(), false)]),
    false,
  ),
);

/** `topic_path`: list<string>, null in runs without topic expansion. */
const topicPathType = new List(new Field('item', utf8(), false));

function toRecordBatches(rows: HfRow[]): parquet.RecordBatch[] {
  const columns: Record<string, Vector> = {
    id: vectorFromArray(
      rows.map((r) => r.id),
      utf8(),
    ),
    messages: vectorFromArray(
      rows.map((r) => r.messages),
      messagesType,
    ),
  };
  for (const column of METADATA_COLUMNS.slice(1))
    columns[column] = vectorFromArray(
      rows.map((r) => r[column]),
      utf8(),
    );
  // After the fixed columns, so readers that pick columns by position still find those where they were.
  columns.topic_path = vectorFromArray(
    rows.map((r) => r.topic_path),
    topicPathType,
  );
  columns.attributes = vectorFromArray(
    rows.map((r) => r.attributes),
    utf8(),
  );
  const table = parquet.Table.fromIPCStream(tableToIPC(new Table(columns), 'stream'));
  try {
    return table.recordBatches();
  } finally {
    table.free();
  }
}

/**
 * Writes `rows` into shard files named by `shardPath(index)`, `rowsPerShard` rows each (the last one
 * fewer). Returns the number of shards and rows written; no file when there are no rows.
 */
export async function writeParquetShards(
  rows: AsyncIterator<HfRow>,
  shardPath: (index: number) => string,
  options: Partial<ParquetShardOptions> = {},
): Promise<{ shards: number; rows: number }> {
  const { rowsPerShard, batchRows, rowGroupRows } = { ...DEFAULT_PARQUET_OPTIONS, ...options };
  let pending = await rows.next();
  let total = 0;
  let shards = 0;
  while (!pending.done) {
    let inShard = 0;
    // The writer reports a failed source only as "Dyn casting error": keep the source's own error.
    let sourceError: Error | undefined;
    const source = new ReadableStream<parquet.RecordBatch>(
      {
        pull: async (controller) => {
          try {
            const batch: HfRow[] = [];
            while (!pending.done && batch.length < batchRows && inShard < rowsPerShard) {
              batch.push(pending.value);
              inShard++;
              pending = await rows.next();
            }
            if (batch.length === 0) return controller.close();
            for (const recordBatch of toRecordBatches(batch)) controller.enqueue(recordBatch);
          } catch (error) {
            sourceError = error instanceof Error ? error : new Error(String(error));
            controller.error(sourceError);
          }
        },
      },
      { highWaterMark: 0 },
    );
    const properties = new parquet.WriterPropertiesBuilder()
      .setCompression(parquet.Compression.ZSTD)
      .setMaxRowGroupSize(rowGroupRows)
      .setCreatedBy('consistent-chat (parquet-wasm)')
      .build();
    try {
      const bytes = await parquet.transformParquetStream(source, properties);
      await bytes.pipeTo(Writable.toWeb(createWriteStream(shardPath(shards), { flags: 'wx' })));
    } catch (error) {
      throw sourceError ?? (error instanceof Error ? error : new Error(String(error)));
    }
    if (sourceError) throw sourceError;
    total += inShard;
    shards++;
  }
  return { shards, rows: total };
}
