/**
 * A span around each HTTP call to the endpoint, child of its activity's span (src/tracing.ts installs
 * the provider; without it the API's no-op tracer makes this nearly free). Only the OpenTelemetry API is
 * loaded here, so workers that do not trace never load the SDK or the exporter.
 */
import { context, trace, SpanStatusCode } from '@opentelemetry/api';
import type { StreamedReply } from './chat-stream';
import type { LlmStage } from './metrics';

/** The tracer of the package's own spans. */
export const TRACER_NAME = 'consistent-chat';

/** Stage, model and what came back (finish reason, token counts); never the request or reply text. */
export function tracedHttpCall(
  stage: LlmStage,
  model: string,
  call: () => Promise<StreamedReply>,
): Promise<StreamedReply> {
  const attributes = { 'llm.stage': stage, 'llm.model': model };
  return trace
    .getTracer(TRACER_NAME)
    .startActiveSpan('llm.http', { attributes }, context.active(), async (span) => {
      try {
        const reply = await call();
        span.setAttribute('llm.finish_reason', reply.finishReason ?? 'none');
        if (reply.usage) {
          span.setAttribute('llm.usage.prompt_tokens', reply.usage.promptTokens);
          span.setAttribute('llm.usage.completion_tokens', reply.usage.completionTokens);
        }
        return reply;
      } catch (error) {
        // The failure's kind only: an endpoint's message can quote the request.
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute('error.type', errorKind(error));
        throw error;
      } finally {
        span.end();
      }
    });
}

function errorKind(error: unknown): string {
  const { status, name } = (error ?? {}) as { status?: unknown; name?: unknown };
  if (typeof status === 'number') return String(status);
  return typeof name === 'string' ? name : 'Error';
}
