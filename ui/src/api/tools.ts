// The shapes of the tool pages' API answers (docs/api.md: /rules/test, /connectors/{id}/sample, /dead-letters,
// /config/import and /config/export), and the calls whose errors the shared client does not keep whole.
import { useEffect, useState } from "react";
import { ApiError, apiUrl } from "./client";

/** `value`, once it has not changed for `ms` milliseconds. */
export function useDebouncedValue<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

// --- POST /rules/test ---------------------------------------------------------------------------------------

export type RuleProblem = { field: string; reason: string; position: number | null };

export type TestedRule = { id: string; name: string; source: string; error: RuleProblem | null; flushed: Record<string, unknown>[] };

export type RecordResult = {
  index: number;
  matched: string[];
  outputs: Record<string, Record<string, unknown>[]>;
  errors: { rule_id: string; field: string; reason: string }[];
};

export type RulesTestResult = { rules: TestedRule[]; results: RecordResult[] };

export type UnsavedRule = { id: string; name: string; condition: string | null; transformations: unknown[] };

export type StoredRule = {
  id: string;
  name: string;
  priority: number;
  enabled: boolean;
  condition: string | null;
  transformations: { id: string; transformation_type: string; config: Record<string, unknown>; sequence_order: number }[];
  destination_ids: string[];
};

export type ConnectorRow = { id: string; name: string; connector_type: string; enabled: boolean };

export type Sample = { records: Record<string, unknown>[]; truncated: boolean; timed_out: boolean };

// --- /dead-letters ------------------------------------------------------------------------------------------

export type DeadLetter = {
  id: string;
  job_id: string;
  dag_id: string;
  run_id: string;
  destination_id: string;
  batch_index: number;
  record_count: number;
  error: string;
  created_at: string;
  updated_at: string;
  replayed_at: string | null;
  replayed_to: string | null;
  replay_error: string | null;
  replay_attempts: number;
};

export type DeadLetterDetail = DeadLetter & { records: unknown[] };

export type ReplayResult = {
  id: string;
  status: "replayed" | "already_replayed" | "in_progress" | "failed" | "not_found";
  destination_id: string | null;
  delivered: number;
  error: string | null;
};

// --- /config ------------------------------------------------------------------------------------------------

export type TableDiff = {
  created: string[];
  changed: string[];
  deleted: string[];
  unchanged: number;
  changed_fields: Record<string, string[]>;
};

export type ImportPlan = { dry_run: boolean; applied: boolean; tables: Record<string, TableDiff> };

/** One problem of an imported file: where (table, row, field, line) and what was expected. */
export type ImportProblem = { table: string; row_id: string | null; field: string; expected: string; line: number | null };

/** A refused import: the message, and every located problem of the file (`details.errors` of a 422). */
export class ImportError extends ApiError {
  readonly problems: ImportProblem[];

  constructor(status: number, message: string, problems: ImportProblem[], field?: string, code?: string) {
    super(status, message, field, code);
    this.name = "ImportError";
    this.problems = problems;
  }
}

type ImportErrorBody = {
  error?: { code?: string; message?: string; details?: { field?: unknown; reason?: unknown; errors?: unknown } };
};

/** `POST /config/import?dry_run=...` with a YAML body; a refusal keeps every problem the API lists. */
export async function importConfig(yaml: string, dryRun: boolean): Promise<ImportPlan> {
  const response = await fetch(apiUrl(`/config/import?dry_run=${dryRun ? "true" : "false"}`), {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/yaml" },
    body: yaml,
  });
  if (response.ok) return (await response.json()) as ImportPlan;
  let body: ImportErrorBody | undefined;
  try {
    body = (await response.json()) as ImportErrorBody;
  } catch {
    body = undefined;
  }
  const error = body?.error;
  const details = error?.details;
  const problems = Array.isArray(details?.errors) ? (details.errors as ImportProblem[]) : [];
  const reason = typeof details?.reason === "string" && problems.length === 0 ? `: ${details.reason}` : "";
  const message = error?.message ? `${error.message}${reason}` : `${response.status} ${response.statusText}`;
  const field = typeof details?.field === "string" ? details.field : undefined;
  return Promise.reject(new ImportError(response.status, message, problems, field, error?.code));
}

/** `GET /config/export` as text (YAML), for a download. */
export async function exportConfig(): Promise<string> {
  const response = await fetch(apiUrl("/config/export"), { credentials: "same-origin", headers: { Accept: "application/yaml" } });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as ImportErrorBody;
      if (body.error?.message) message = body.error.message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response.text();
}

/** Saves `text` as a file named `name` through the browser's download. */
export function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = name;
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
