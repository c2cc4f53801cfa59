/**
 * The OpenAI Batch API for the test server: files (`/v1/files`), batches (`/v1/batches`: create,
 * retrieve, list with `after`/`limit`, cancel), the lifecycle validating → in_progress → finalizing →
 * completed (or failed, expired, cancelling → cancelled), `request_counts`, output and error files with
 * lines out of input order. Each line is answered by the real-time endpoint's own chat logic (`answer`).
 */

/** What the batches do wrong on demand, besides the chat faults their lines draw. */
export interface BatchFaults {
  /** Time between lifecycle steps. @default 10 */
  stepMs: number;
  /**
   * While true, batches stay in their current state (a test keeps one mid-way). Validation is not
   * held: a batch that fails it fails at once, as a provider checks a file before queueing it. @default false
   */
  hold: boolean;
  /** Probability that a line's answer is a 500 error line. @default 0 */
  failLines: number;
  /** The next this many batches expire after answering `expireAfterLines` lines. @default 0 */
  expireBatches: number;
  /** @default 0 */
  expireAfterLines: number;
  /** The next this many batches fail validation (their first line named in `errors`). @default 0 */
  failValidationBatches: number;
  /**
   * While true, a create is committed (the batch exists and runs) but its answer is held: a client
   * killed meanwhile never learns the batch's id, as a worker SIGKILLed mid-submission. @default false
   */
  holdCreate: boolean;
}

export const BATCH_DEFAULTS: BatchFaults = {
  stepMs: 10,
  hold: false,
  failLines: 0,
  expireBatches: 0,
  expireAfterLines: 0,
  failValidationBatches: 0,
  holdCreate: false,
};

export interface BatchStats {
  files: number;
  created: number;
  cancelled: number;
  expired: number;
  failed: number;
  /** Looks at one batch (`GET /v1/batches/:id`): a client polling. */
  looks: number;
  /** Lines answered, by outcome. */
  lines: { completed: number; failed: number };
}

export const freshBatchStats = (): BatchStats => ({
  files: 0,
  created: 0,
  cancelled: 0,
  expired: 0,
  failed: 0,
  looks: 0,
  lines: { completed: 0, failed: 0 },
});

/** A chat answer as the real-time endpoint would send it without streaming; status 0 if it never answered. */
export interface ChatAnswer {
  status: number;
  body: string;
}

export interface BatchDeps {
  faults(): BatchFaults;
  stats(): BatchStats;
  rand(): number;
  models(): string[];
  answer(body: unknown): Promise<ChatAnswer>;
}

interface StoredFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'processed';
  content: string;
}

type Status =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

interface StoredBatch {
  id: string;
  object: 'batch';
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: Status;
  created_at: number;
  in_progress_at?: number;
  finalizing_at?: number;
  completed_at?: number;
  failed_at?: number;
  expired_at?: number;
  cancelling_at?: number;
  cancelled_at?: number;
  expires_at: number;
  output_file_id?: string;
  error_file_id?: string;
  errors: { object: 'list'; data: BatchError[] } | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
}

interface InputLine {
  custom_id: string;
  method: string;
  url: string;
  body: { model?: string; stream?: boolean } & Record<string, unknown>;
}

export interface HttpReply {
  status: number;
  body: string;
  contentType?: string;
}

const json = (status: number, value: unknown): HttpReply => ({ status, body: JSON.stringify(value) });
const error = (status: number, message: string, param: string | null = null): HttpReply =>
  json(status, { error: { message, type: 'invalid_request_error', param, code: null } });
const now = () => Math.floor(Date.now() / 1000);
// A function, not an inline test: the status changes under the lifecycle's awaits.
const cancelling = (batch: StoredBatch) => batch.status === 'cancelling';

export function createBatchApi(deps: BatchDeps) {
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, StoredBatch>();
  /** Batch ids, oldest first: the list is newest first, as OpenAI's. */
  const order: string[] = [];
  let seq = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // A held batch still notices its cancellation, as a provider's queued batch does.
  const step = async (batch: StoredBatch) => {
    do await sleep(deps.faults().stepMs);
    while (deps.faults().hold && !cancelling(batch));
  };

  function addFile(filename: string, purpose: string, content: string): StoredFile {
    const file: StoredFile = {
      id: `file-${(++seq).toString().padStart(6, '0')}`,
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: now(),
      filename,
      purpose,
      status: 'processed',
      content,
    };
    files.set(file.id, file);
    return file;
  }
  const fileView = ({ content: _content, ...view }: StoredFile) => view;

  async function upload(contentType: string | undefined, raw: Buffer): Promise<HttpReply> {
    let form: FormData;
    try {
      form = await new Request('http://local/', {
        method: 'POST',
        headers: { 'content-type': contentType ?? '' },
        body: raw,
      }).formData();
    } catch {
      return error(400, 'the body is not multipart/form-data');
    }
    const purpose = form.get('purpose');
    const file = form.get('file');
    if (purpose !== 'batch')
      return error(
        400,
        `purpose must be batch, got ${typeof purpose === 'string' ? purpose : 'a file'}`,
        'purpose',
      );
    if (!file || typeof file === 'string') return error(400, "Missing required parameter: 'file'.", 'file');
    deps.stats().files++;
    return json(200, fileView(addFile(file.name, 'batch', await file.text())));
  }

  /** The input file's lines, or the first error in it (as OpenAI's `errors.data`). */
  function validate(batch: StoredBatch): InputLine[] | BatchError {
    const text = files.get(batch.input_file_id)?.content ?? '';
    const lines: InputLine[] = [];
    const ids = new Set<string>();
    const rows = text.split('\n').filter((l) => l.trim() !== '');
    let model: string | undefined;
    for (const [i, row] of rows.entries()) {
      const bad = (code: string, message: string, param: string | null): BatchError => ({
        code,
        message,
        param,
        line: i + 1,
      });
      let line: InputLine;
      try {
        line = JSON.parse(row) as InputLine;
      } catch {
        return bad('invalid_json_line', 'This line is not parseable as valid JSON.', null);
      }
      if (typeof line.custom_id !== 'string' || ids.has(line.custom_id))
        return bad('duplicate_custom_id', 'custom_id is missing or not unique.', 'custom_id');
      if (line.url !== batch.endpoint) return bad('invalid_url', `url must be ${batch.endpoint}.`, 'url');
      if (!line.body?.model || !deps.models().includes(line.body.model))
        return bad('model_not_found', `The model ${String(line.body?.model)} does not exist.`, 'body.model');
      if (model !== undefined && line.body.model !== model)
        return bad('mismatched_model', 'All lines of a batch must use the same model.', 'body.model');
      model = line.body.model;
      ids.add(line.custom_id);
      lines.push(line);
    }
    if (lines.length === 0)
      return { code: 'empty_file', message: 'The input file is empty.', param: null, line: null };
    return lines;
  }

  async function answerLine(line: InputLine, n: number): Promise<{ ok: boolean; text: string }> {
    const id = `batch_req_${seq}_${n}`;
    const failed = deps.rand() < deps.faults().failLines;
    const answer = failed
      ? { status: 500, body: JSON.stringify({ error: { message: 'line failed', type: 'server_error' } }) }
      : await deps.answer({ ...line.body, stream: false });
    const status = answer.status || 500;
    const body = answer.status
      ? (JSON.parse(answer.body) as unknown)
      : { error: { message: 'the model never answered', type: 'server_error' } };
    const ok = status === 200;
    const response = { status_code: status, request_id: id, body };
    return { ok, text: JSON.stringify({ id, custom_id: line.custom_id, response, error: null }) };
  }

  /** Drives one batch through its lifecycle; cancellation and expiry stop it between lines. */
  async function drive(batch: StoredBatch): Promise<void> {
    await sleep(deps.faults().stepMs);
    const faults = deps.faults();
    const lines = validate(batch);
    if (!Array.isArray(lines) || faults.failValidationBatches > 0) {
      if (Array.isArray(lines)) faults.failValidationBatches--;
      const reason = Array.isArray(lines)
        ? { code: 'invalid_request', message: 'body.messages: required', param: 'body.messages', line: 1 }
        : lines;
      Object.assign(batch, {
        status: 'failed',
        failed_at: now(),
        errors: { object: 'list', data: [reason] },
      });
      deps.stats().failed++;
      return;
    }
    await step(batch);
    if (cancelling(batch)) return finish(batch, [], [], 'cancelled');
    // The faults as they are once the batch leaves the queue (a test may have changed them meanwhile).
    const queued = deps.faults();
    const expireAfter = queued.expireBatches > 0 ? queued.expireAfterLines : Infinity;
    if (queued.expireBatches > 0) queued.expireBatches--;
    Object.assign(batch, { status: 'in_progress', in_progress_at: now() });
    batch.request_counts.total = lines.length;
    await step(batch);
    const output: string[] = [];
    const errors: string[] = [];
    for (const [n, line] of lines.entries()) {
      if (cancelling(batch)) return finish(batch, output, errors, 'cancelled');
      if (n >= expireAfter) {
        for (const rest of lines.slice(n)) errors.push(expiredLine(rest));
        return finish(batch, output, errors, 'expired');
      }
      const { ok, text } = await answerLine(line, n);
      (ok ? output : errors).push(text);
      batch.request_counts[ok ? 'completed' : 'failed']++;
      deps.stats().lines[ok ? 'completed' : 'failed']++;
    }
    Object.assign(batch, { status: 'finalizing', finalizing_at: now() });
    await step(batch);
    finish(batch, output, errors, cancelling(batch) ? 'cancelled' : 'completed');
  }

  const expiredLine = (line: InputLine) =>
    JSON.stringify({
      id: `batch_req_expired_${line.custom_id}`,
      custom_id: line.custom_id,
      response: null,
      error: {
        code: 'batch_expired',
        message: 'This request could not be executed before the completion window expired.',
      },
    });

  /** Writes the output and error files, their lines shuffled: output order is not input order. */
  function finish(batch: StoredBatch, output: string[], errors: string[], status: Status): void {
    const shuffled = (lines: string[]) =>
      lines
        .map((l) => ({ l, k: deps.rand() }))
        .sort((a, b) => a.k - b.k)
        .map((x) => `${x.l}\n`)
        .join('');
    if (output.length > 0)
      batch.output_file_id = addFile(`${batch.id}_output.jsonl`, 'batch_output', shuffled(output)).id;
    if (errors.length > 0)
      batch.error_file_id = addFile(`${batch.id}_error.jsonl`, 'batch_output', shuffled(errors)).id;
    if (status === 'expired') deps.stats().expired++;
    if (status === 'cancelled') deps.stats().cancelled++;
    Object.assign(batch, { status, [`${status}_at`]: now() });
  }

  async function create(raw: string): Promise<HttpReply> {
    let body: {
      input_file_id?: string;
      endpoint?: string;
      completion_window?: string;
      metadata?: Record<string, string>;
    };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      return error(400, 'We could not parse the JSON body of your request.');
    }
    if (!body.input_file_id || !files.has(body.input_file_id))
      return error(404, `No such File object: ${String(body.input_file_id)}`, 'input_file_id');
    if (body.endpoint !== '/v1/chat/completions')
      return error(400, 'endpoint must be /v1/chat/completions', 'endpoint');
    if (body.completion_window !== '24h')
      return error(400, 'completion_window must be 24h', 'completion_window');
    const batch: StoredBatch = {
      id: `batch_${(++seq).toString().padStart(6, '0')}`,
      object: 'batch',
      endpoint: body.endpoint,
      input_file_id: body.input_file_id,
      completion_window: '24h',
      status: 'validating',
      created_at: now(),
      expires_at: now() + 86_400,
      errors: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: body.metadata ?? null,
    };
    batches.set(batch.id, batch);
    order.push(batch.id);
    deps.stats().created++;
    void drive(batch);
    while (deps.faults().holdCreate) await sleep(20);
    return json(200, batch);
  }

  function list(query: URLSearchParams): HttpReply {
    const limit = Math.max(1, Math.min(100, Number(query.get('limit') ?? 20) || 20));
    const newestFirst = [...order].reverse();
    const after = query.get('after');
    const from = after ? newestFirst.indexOf(after) + 1 : 0;
    const page = newestFirst.slice(from, from + limit).map((id) => batches.get(id)!);
    return json(200, {
      object: 'list',
      data: page,
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: from + limit < newestFirst.length,
    });
  }

  function cancel(id: string): HttpReply {
    const batch = batches.get(id);
    if (!batch) return error(404, `No such Batch object: ${id}`);
    if (batch.status === 'validating' || batch.status === 'in_progress' || batch.status === 'finalizing')
      Object.assign(batch, { status: 'cancelling', cancelling_at: now() });
    return json(200, batch);
  }

  /** Answers a Batch API route, or undefined for a route that is not one. */
  async function route(method: string, url: string, contentType: string | undefined, raw: Buffer) {
    const [path = '', search = ''] = url.split('?');
    if (method === 'POST' && path === '/v1/files') return upload(contentType, raw);
    if (method === 'POST' && path === '/v1/batches') return create(raw.toString('utf8'));
    if (method === 'GET' && path === '/v1/batches') return list(new URLSearchParams(search));
    const content = /^\/v1\/files\/([\w-]+)\/content$/.exec(path);
    if (method === 'GET' && content) {
      const file = files.get(content[1]!);
      return file
        ? { status: 200, body: file.content, contentType: 'application/octet-stream' }
        : error(404, `No such File object: ${content[1]}`);
    }
    const fileRoute = /^\/v1\/files\/([\w-]+)$/.exec(path);
    if (method === 'GET' && fileRoute) {
      const file = files.get(fileRoute[1]!);
      return file ? json(200, fileView(file)) : error(404, `No such File object: ${fileRoute[1]}`);
    }
    const batchRoute = /^\/v1\/batches\/([\w-]+)(\/cancel)?$/.exec(path);
    if (batchRoute && method === 'POST' && batchRoute[2]) return cancel(batchRoute[1]!);
    if (batchRoute && method === 'GET' && !batchRoute[2]) {
      deps.stats().looks++;
      const batch = batches.get(batchRoute[1]!);
      return batch ? json(200, batch) : error(404, `No such Batch object: ${batchRoute[1]}`);
    }
    return undefined;
  }

  return { route };
}
