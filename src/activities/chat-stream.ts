/**
 * Reads a streamed chat completion (server-sent events) into its text, finish reason and usage.
 *
 * The openai client still sends the request and turns non-2xx answers into its error classes; only the
 * body is read here. Its own stream reader costs about 20 µs of CPU per event (an async generator
 * step, a byte-array copy and a line split per chunk), and real servers send one event per token: a
 * 1,000-token reply cost more CPU than the rest of the call. `eventsource-parser` takes the decoded
 * text as it arrives and calls back per event, with no promise per event.
 */
import OpenAI from 'openai';
import type { IncomingMessage } from 'node:http';
import { createParser } from 'eventsource-parser';
import { nodeBody } from './node-fetch';
import type { Usage } from '../run/schemas';

export interface StreamedReply {
  content: string;
  finishReason: string | null;
  usage: Usage | undefined;
}

/** The fields of a `chat.completion.chunk` this package reads; anything else in it is ignored. */
interface ChunkData {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: object;
}

/**
 * Reads the body of a streamed completion to its end (or its `[DONE]`), calling `onData` whenever bytes
 * arrive and `onFirstToken` once, at the first event with content or a finish reason (the end of
 * prefill, which a role-only first event or a keep-alive comment is not). An event carrying `error` (how vLLM and llama.cpp report a failure after the 200) throws the
 * client's `APIError`, as its own reader does; an event that is not JSON throws a `SyntaxError`.
 */
export async function readChatStream(
  response: Response,
  onData: () => void,
  onFirstToken?: () => void,
): Promise<StreamedReply> {
  const reply: StreamedReply = { content: '', finishReason: null, usage: undefined };
  let tokened = onFirstToken === undefined;
  let done = false;
  let failure: Error | undefined;
  const parser = createParser({
    onEvent(event) {
      if (done || failure !== undefined) return;
      if (event.data.startsWith('[DONE]')) {
        done = true;
        return;
      }
      let chunk: ChunkData;
      try {
        chunk = JSON.parse(event.data) as ChunkData;
      } catch (error) {
        failure = error as SyntaxError;
        return;
      }
      if (chunk?.error) {
        failure = new OpenAI.APIError(undefined, chunk.error, undefined, response.headers);
        return;
      }
      const choice = chunk?.choices?.[0];
      if (choice?.delta?.content) reply.content += choice.delta.content;
      if (choice?.finish_reason) reply.finishReason = choice.finish_reason;
      if (!tokened && (choice?.delta?.content || choice?.finish_reason)) {
        tokened = true;
        onFirstToken?.();
      }
      if (chunk?.usage) {
        reply.usage = {
          promptTokens: chunk.usage.prompt_tokens,
          completionTokens: chunk.usage.completion_tokens,
        };
      }
    },
  });
  const feed = (text: string) => {
    onData();
    parser.feed(text);
    return failure !== undefined || done;
  };
  const message = nodeBody(response);
  if (message) await readNode(message, feed);
  else await readWeb(response, feed);
  if (failure !== undefined) throw failure;
  return reply;
}

/** Feeds each piece of the body's text to `feed` until it returns true (done, or a failure). */
type Feed = (text: string) => boolean;

async function readWeb(response: Response, feed: Feed): Promise<void> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  // Leaving the loop early cancels the body and frees the connection.
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (feed(decoder.decode(bytes, { stream: true }))) return;
  }
  feed(decoder.decode());
}

/** The Node stream of `nodeFetch`: a listener per chunk, no promise per chunk. */
function readNode(message: IncomingMessage, feed: Feed): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    message.setEncoding('utf8');
    const onData = (text: string) => {
      if (!feed(text)) return;
      message.off('data', onData);
      resolve();
      if (message.complete) return;
      // Done before the body's end (its last bytes are usually in flight): read them so the connection
      // goes back to the agent for the next call, unless they do not come soon.
      message.resume();
      const give = setTimeout(() => message.destroy(), DRAIN_MS);
      message.once('close', () => clearTimeout(give));
    };
    message.on('data', onData);
    message.once('end', resolve);
    message.once('error', reject);
    // Closed before its end (a cut connection): an error, as the web stream's "terminated".
    message.once('close', () => {
      if (!message.complete) reject(new Error('terminated: the connection closed mid-reply'));
    });
  });
}

/** How long the rest of a body after `[DONE]` (or a failure) may take before its connection is closed. */
const DRAIN_MS = 2_000;
