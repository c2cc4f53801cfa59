/**
 * Where recorded workflow histories live, what one file holds, and the conversion between a history
 * and Temporal's JSON history form (the one `temporal workflow show --output json` and the UI's
 * download write).
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as proto from '@temporalio/proto';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

export const HISTORIES_DIR = join(__dirname, 'histories');

export type History = proto.temporal.api.history.v1.IHistory;

export interface RecordedHistory {
  /** The run workflow checks its input against its id, so replay needs the real one. */
  workflowId: string;
  workflowType: string;
  /** Temporal's JSON history form (proto3 JSON of `temporal.api.history.v1.History`). */
  history: unknown;
}

// The SDK's own historyToJSON/historyFromJSON throw "type must be a Type" in this install:
// @temporalio/common and @temporalio/proto each carry their own copy of protobufjs 8, and protojson's
// `instanceof Type` check fails across copies. The same functions, taken from the copy that built the
// proto types, give the same JSON.
const protojson = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
};
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

export function historyToJson(history: History): unknown {
  return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history));
}

export function historyFromJson(json: unknown): History {
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}

/** Every committed history, as `{ name, recorded }`, sorted by path. */
export async function loadHistories(): Promise<{ name: string; recorded: RecordedHistory }[]> {
  const out: { name: string; recorded: RecordedHistory }[] = [];
  for (const scenario of (await readdir(HISTORIES_DIR)).sort()) {
    for (const file of (await readdir(join(HISTORIES_DIR, scenario))).sort()) {
      if (!file.endsWith('.json')) continue;
      const text = await readFile(join(HISTORIES_DIR, scenario, file), 'utf8');
      out.push({ name: `${scenario}/${file}`, recorded: JSON.parse(text) as RecordedHistory });
    }
  }
  return out;
}

/**
 * Replays every history in `histories` with one replay worker of `options`; returns one line per
 * history that failed (its name and error), and throws unless each history was replayed.
 */
export async function replayAll(
  options: ReplayWorkerOptions,
  histories: readonly { name: string; recorded: RecordedHistory }[],
): Promise<string[]> {
  const results = Worker.runReplayHistories(
    options,
    histories.map(({ recorded }) => ({
      workflowId: recorded.workflowId,
      history: historyFromJson(recorded.history),
    })),
  );
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of results) {
    const { name } = histories[replayed++]!;
    if (result.error) failures.push(`${name}: ${result.error.name}: ${result.error.message}`);
  }
  if (replayed !== histories.length) throw new Error(`${replayed} of ${histories.length} histories replayed`);
  return failures;
}

/** The patch ids whose markers a recorded history carries. */
export function patchMarkers(recorded: RecordedHistory): Set<string> {
  const ids = new Set<string>();
  const { events } = recorded.history as {
    events?: {
      markerRecordedEventAttributes?: { details?: Record<string, { payloads?: { data?: string }[] }> };
    }[];
  };
  for (const event of events ?? []) {
    for (const payload of event.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []) {
      const { id } = JSON.parse(Buffer.from(payload.data ?? '', 'base64').toString('utf8')) as {
        id?: string;
      };
      if (id) ids.add(id);
    }
  }
  return ids;
}
