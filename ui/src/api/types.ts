// The shapes of Muxly's API answers that the pages read (docs/api.md).

export type Page<T> = { items: T[]; total: number; limit: number; offset: number };

export type Me = {
  id: string;
  username: string;
  email: string | null;
  display_name: string | null;
  roles: string[];
  permissions: string[];
  auth_method: string;
};

export type Overview = {
  jobs: { total: number; enabled: number; disabled: number; failing: number };
  runs_24h: Record<string, number>;
  records_24h: { extracted: number; delivered: number; dead_lettered: number };
  failing_jobs: { id: string; name: string; dag_id: string; status: string; finished_at: string | null; error: string | null }[];
};

export type LastExecution = {
  id: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  records_extracted: number;
  records_delivered: number;
  records_dead_lettered: number;
  error: string | null;
};

export type Job = {
  id: string;
  name: string;
  job_type: string;
  schedule: string | null;
  connector_id: string;
  action_type: string;
  action_params: Record<string, unknown>;
  enabled: boolean;
  max_retries: number;
  backoff_strategy: string;
  timeout_seconds: number;
  dag_id: string;
  created_at?: string | null;
  updated_at?: string | null;
};

export type JobListItem = Job & { last_execution: LastExecution | null; next_run_at: string | null };

export type DestinationCounts = {
  routed?: number;
  delivered?: number;
  failed?: number;
  dead_lettered?: number;
  lost?: number;
  batches?: number;
  error?: string | null;
};

export type ExecutionResult = {
  records_in?: number;
  delivered?: number;
  dead_lettered?: number;
  unmatched?: number;
  filtered?: number;
  error?: string;
  destinations?: Record<string, DestinationCounts>;
  [key: string]: unknown;
};

export type Execution = {
  id: string;
  job_id: string;
  status: string;
  start_time: string;
  end_time: string | null;
  attempt: number;
  triggered_by: string;
  result: ExecutionResult | null;
};

export type Row = { id: string; name?: string; type?: string; enabled?: boolean; [key: string]: unknown };

export type JobFlow = {
  job: Job;
  connector: Row;
  routes: { route: Row; rules: { rule: Row; destinations: Row[] }[] }[];
  export_destinations?: Row[];
};

/** POST /jobs/{id}/preview: what a run would deliver, per destination (docs/api.md, docs/jobs.md). */
export type DestinationPreview = {
  id: string;
  name: string;
  destination_type: string;
  enabled: boolean;
  routed: number;
  records: Record<string, unknown>[];
  rendered_as: string;
  rendered: unknown[];
  rendered_total: number;
  target: string | null;
  error: string | null;
  dead_letter_destination_id: string | null;
};

export type FailurePreview = {
  route_id: string;
  rule_id: string | null;
  transformation_id: string | null;
  error: string;
  record: Record<string, unknown> | null;
  mode: string;
  dead_letter_destination_id: string | null;
};

export type JobPreview = {
  job_id: string;
  action_type: string;
  source: "connector" | "records";
  records_in: number;
  truncated: boolean;
  timed_out: boolean;
  unmatched: number;
  unmatched_records: Record<string, unknown>[];
  filtered: number;
  matched_per_rule: Record<string, number>;
  destinations: DestinationPreview[];
  failures: FailurePreview[];
  failures_total: number;
  error: string | null;
  warnings: string[];
  duration_seconds: number;
};
