// Muxly's API client: same-origin fetch under the host page's <base href>, errors as {status, message, field}.

/** The path of the host page's `<base href>`, always ending in "/" (Airflow's `[api] base_url` path). */
export function basePath(): string {
  const href = document.querySelector("base")?.getAttribute("href") ?? "/";
  const path = new URL(href, window.location.origin).pathname;
  return path.endsWith("/") ? path : `${path}/`;
}

/** The URL of a Muxly API path such as "/jobs". */
export function apiUrl(path: string): string {
  return `${basePath()}muxly/api/v1${path}`;
}

/** The Airflow page of a DAG. */
export function dagUrl(dagId: string): string {
  return `${basePath()}dags/${encodeURIComponent(dagId)}`;
}

/** One error of a request field: the field's path ("connection_settings.base_url") and what is wrong. */
export type FieldError = { field: string; message: string };

/** A failed call: the HTTP status, Muxly's message, the request field it names (if any), and every field error. */
export class ApiError extends Error {
  readonly status: number;
  readonly field: string | undefined;
  readonly code: string | undefined;
  readonly fieldErrors: FieldError[];

  constructor(status: number, message: string, field?: string, code?: string, fieldErrors: FieldError[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.field = field;
    this.code = code;
    this.fieldErrors = fieldErrors;
  }
}

type ErrorBody = {
  error?: { code?: string; message?: string; details?: { field?: unknown; reason?: unknown; errors?: unknown } };
};

/** The field errors of an answer: the one `details.field` names, then the others of `details.errors`. */
function fieldErrorsOf(field: string | undefined, message: string, details: { reason?: unknown; errors?: unknown } | undefined): FieldError[] {
  if (!field) return [];
  // Muxly's own 422 says "field 'x': expected ..."; a request validation error carries pydantic's reason.
  const prefix = `field '${field}': `;
  const first = message.startsWith(prefix)
    ? message.slice(prefix.length)
    : typeof details?.reason === "string"
      ? details.reason
      : message;
  const found: FieldError[] = [{ field, message: first }];
  const listed = Array.isArray(details?.errors) ? (details.errors as { field?: unknown; expected?: unknown }[]) : [];
  // The list names fields of the row it validated; it is used only when it uses the same paths as details.field.
  if (listed[0]?.field === field) {
    for (const item of listed.slice(1)) {
      if (typeof item.field === "string" && item.field && typeof item.expected === "string") {
        found.push({ field: item.field, message: `expected ${item.expected}` });
      }
    }
  }
  return found;
}

async function toApiError(response: Response): Promise<ApiError> {
  let body: ErrorBody | undefined;
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    body = undefined;
  }
  const error = body?.error;
  const field = typeof error?.details?.field === "string" && error.details.field ? error.details.field : undefined;
  const reason = typeof error?.details?.reason === "string" ? `: ${error.details.reason}` : "";
  const message = error?.message ? `${error.message}${reason}` : `${response.status} ${response.statusText}`;
  return new ApiError(response.status, message, field, error?.code, fieldErrorsOf(field, error?.message ?? "", error?.details));
}

export type Query = Record<string, string | number | boolean | undefined | null>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** Calls Muxly's API with the browser's Airflow session cookie; JSON in, JSON out. */
export async function api<T>(
  path: string,
  options: { method?: string; query?: Query; body?: unknown; text?: string; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: string | undefined;
  if (options.text !== undefined) {
    headers["Content-Type"] = "application/yaml";
    body = options.text;
  } else if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(apiUrl(withQuery(path, options.query)), {
    method: options.method ?? "GET",
    credentials: "same-origin",
    headers,
    body,
    signal: options.signal,
  });
  if (!response.ok) throw await toApiError(response);
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("content-type") ?? "";
  return (type.includes("json") ? await response.json() : await response.text()) as T;
}

/** A readable message for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.field ? `${error.message} (${error.field})` : error.message;
  return error instanceof Error ? error.message : String(error);
}
