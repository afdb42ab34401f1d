/** A small JSON client for the xcron HTTP API (undici `request`), used against the real server. */
import { request } from 'undici';
import { checkExchange } from './contract.js';

export interface Envelope<T = unknown> {
  uuid: string;
  code: number;
  message: string;
  data: T;
}

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The raw response text. */
  text: string;
  /** The parsed envelope (throws on access when the body was not JSON). */
  body: Envelope<T>;
}

export interface CallOptions {
  /** Sent as JSON with Content-Type application/json. */
  json?: unknown;
  /** Sent as is (no Content-Type unless given in headers). */
  body?: string;
  headers?: Record<string, string>;
  /** Skip the check of the exchange against the OpenAPI document (only for answers outside the contract). */
  unchecked?: boolean;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

/** One request on a fresh connection (so a restarted or stopping server never meets a stale socket). */
export async function call<T = unknown>(baseUrl: string, method: Method, path: string, opts: CallOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const res = await request(`${baseUrl}${path}`, { method, headers, body, reset: true, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  if (opts.unchecked !== true) {
    const ct = res.headers['content-type'];
    const requestType = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
    checkExchange({ method, url: path, requestBody: body, requestType, status: res.statusCode, contentType: typeof ct === 'string' ? ct : null, text });
  }
  let parsed: Envelope<T> | undefined;
  let parseError: unknown;
  try {
    parsed = JSON.parse(text) as Envelope<T>;
  } catch (e) {
    parseError = e;
  }
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    get body(): Envelope<T> {
      if (parsed === undefined) throw new Error(`response to ${method} ${path} is not JSON (${String(parseError)}): ${text.slice(0, 300)}`);
      return parsed;
    },
  };
}

export interface CreateData {
  task_id: string;
  next_fire_time: number | null;
}

export interface TaskView {
  task_id: string;
  create_time: string;
  type: number;
  format: string;
  run_count: number;
  callback: { url: string; body: unknown; method?: string; headers?: Record<string, string> };
  state: string;
  next_fire_time: number | null;
  last_fire_time: number | null;
  last_status: string | null;
  [extension: string]: unknown;
}

/** The xcron endpoints, bound to one base URL. */
export class XcronClient {
  constructor(readonly baseUrl: string) {}

  call<T = unknown>(method: Method, path: string, opts: CallOptions = {}): Promise<ApiResponse<T>> {
    return call<T>(this.baseUrl, method, path, opts);
  }

  createTask(body: unknown): Promise<ApiResponse<CreateData>> {
    return this.call<CreateData>('POST', '/xcron/createTask', { json: body });
  }

  /** createTask that must succeed; returns the data. */
  async mustCreate(body: unknown): Promise<CreateData> {
    const r = await this.createTask(body);
    if (r.status !== 200 || r.body.code !== 0) throw new Error(`createTask failed: HTTP ${r.status} ${r.text}`);
    return r.body.data;
  }

  queryTask(id: string): Promise<ApiResponse<TaskView>> {
    return this.call<TaskView>('GET', `/xcron/queryTask?task_id=${encodeURIComponent(id)}`);
  }

  /** queryTask that must succeed; returns the data. */
  async mustQuery(id: string): Promise<TaskView> {
    const r = await this.queryTask(id);
    if (r.status !== 200 || r.body.code !== 0) throw new Error(`queryTask ${id} failed: HTTP ${r.status} ${r.text}`);
    return r.body.data;
  }

  deleteTask(id: string): Promise<ApiResponse<null>> {
    return this.call<null>('POST', '/xcron/deleteTask', { json: { task_id: id } });
  }

  healthz(): Promise<ApiResponse<{ status: string; version: string }>> {
    return this.call('GET', '/healthz');
  }
}
