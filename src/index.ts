/** consistent-chat: ConsistentChat dialogue datasets as durable Temporal workflows. */
export {
  ConsistentChatGenerator,
  type ConsistentChatGeneratorOptions,
  type LlmServing,
  type GeneratorStorage,
} from './client/api';
export { RunClosedError } from './shared/errors';
export {
  generate,
  readProgress,
  type GenerateOptions,
  type GenerateResult,
  type TemporalOptions,
} from './client/generate';
export { startDevServer, findTemporalCli, type DevServer, type DevServerOptions } from './client/dev-server';
export { readTaxonomyFile, readPromptsDir, methodHash } from './client/method-files';
export {
  createActivities,
  createLlmActivities,
  createStorageActivities,
  toLlmFailure,
  LLM_FAILURE_TYPES,
} from './activities';
export {
  createGenerationWorker,
  createStorageWorker,
  createOpenAiClient,
  workflowBundle,
  ConfigError,
} from './worker';
export {
  StallDetector,
  StallError,
  stallDetectorOptionsSchema,
  type StallDetectorSettings,
} from './activities/stall-detector';
export { JsonlStore, StoreRegistry } from './storage/jsonl-store';
export {
  EncryptionCodec,
  encryptionDataConverter,
  loadEncryptionKeys,
  parseEncryptionKeys,
  ENCRYPTION_KEY_ENV,
  type EncryptionKeys,
} from './shared/encryption/codec';
export { startCodecServer, type CodecServer, type CodecServerOptions } from './client/codec-server';
export {
  resolveConnection,
  connectClient,
  connectWorker,
  createClient,
  type ConnectionFlags,
  type TemporalConnectionConfig,
} from './client/connection';
export { redact } from './shared/redact';
export * from './method';
export * from './shared/constants';
export * from './run/schemas';
export * from './run/messages';
export * from './shared/pricing';
export {
  intentProgressSchema,
  runProgressSchema,
  runStatusSchema,
  runSummarySchema,
  type RunProgressDocument,
  type RunStatusDocument,
} from './run/status';
export { METRIC_NAMES, PackageMetrics } from './activities/metrics';
export { processMetrics } from './worker';
export { exportDataset, type ExportOptions, type ExportResult } from './export/export';
export { EXPORT_FORMATS, type ExportFormat } from './export/formats';
export { parseMetricFilter, FILTER_OPS, type MetricFilter } from './export/filters';
export { storedDialogueRecordSchema, type StoredDialogueRecord } from './export/records';
export { DuplicateIndex, type DedupOptions, type DuplicateMatch } from './export/dedup';
export { writeReport, formatReportTable } from './report/report';
