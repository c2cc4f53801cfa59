/**
 * OpenTelemetry traces through Temporal's own interceptors (`@temporalio/interceptors-opentelemetry`),
 * exported over OTLP/HTTP only when the standard `OTEL_*` variables ask for it. A run's trace: the
 * client's start, the run workflow, each intent workflow, each activity and each HTTP call to the
 * endpoint. Span attributes carry ids, types, stages and counts, never prompt or reply text or a key.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResourcesSync, envDetectorSync, Resource } from '@opentelemetry/resources';
import type { Context } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { checkTracingEnv, tracingRequested } from './shared/otel-env';

/** `service.name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise. @default consistent-chat */
export const DEFAULT_SERVICE_NAME = 'consistent-chat';

export interface Tracing {
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Exports what is buffered and stops; call once the process's workers have stopped. */
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/**
 * Installs the process's tracer provider (global, with an async-local context so that an activity's
 * span parents its HTTP calls) when the environment asks for traces; undefined otherwise. Once per process.
 */
export function installTracing(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (installed || !tracingRequested(env)) return installed;
  checkTracingEnv(env);
  const resource = new Resource({ 'service.name': DEFAULT_SERVICE_NAME }).merge(
    detectResourcesSync({ detectors: [envDetectorSync] }),
  );
  // The exporter reads the endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_*.
  const spanProcessor = new TextFreeSpanProcessor(new BatchSpanProcessor(new OTLPTraceExporter()));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  installed = {
    resource,
    spanProcessor,
    shutdown: async () => {
      await provider.shutdown().catch(() => undefined);
      installed = undefined;
    },
  };
  return installed;
}

/**
 * Passes spans on without the text of failures. Temporal's interceptors record an activity's or a
 * workflow's exception (message and stack) and set it as the status message; a reply check's message
 * quotes the reply (`responses.2 repeats its query "…"`). The failure's type stays, its text does not.
 * Workflow spans reach the exporter through the same processor (the workflow sink).
 */
export class TextFreeSpanProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }
  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(withoutText(span));
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

const KEPT_EXCEPTION_ATTRIBUTES = new Set(['exception.type']);

function withoutText(span: ReadableSpan): ReadableSpan {
  const events = span.events.map((event) =>
    event.name === 'exception'
      ? {
          ...event,
          attributes: Object.fromEntries(
            Object.entries(event.attributes ?? {}).filter(([key]) => KEPT_EXCEPTION_ATTRIBUTES.has(key)),
          ),
        }
      : event,
  );
  const status = { code: span.status.code };
  // A view, not a copy: the span (a class with getters, or the workflow sink's plain object) stays as it is.
  return new Proxy(span, {
    get: (target, prop): unknown =>
      prop === 'events'
        ? events
        : prop === 'status'
          ? status
          : (Reflect.get(target, prop, target) as unknown),
  });
}
