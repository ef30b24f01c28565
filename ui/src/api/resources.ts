// The configuration rows the resource pages edit, as Muxly's API shows them (secrets as "***", docs/api.md).

export type JsonObject = Record<string, unknown>;

export type Connector = {
  id: string;
  name: string;
  connector_type: string;
  enabled: boolean;
  auth_settings: JsonObject;
  connection_settings: JsonObject;
  created_at?: string | null;
  updated_at?: string | null;
};

export type Destination = {
  id: string;
  name: string;
  destination_type: string;
  config: JsonObject;
  enabled: boolean;
  created_at?: string | null;
  updated_at?: string | null;
};

export type Transformation = {
  id: string;
  transformation_type: string;
  config: JsonObject;
  sequence_order: number;
};

export type Rule = {
  id: string;
  name: string;
  priority: number;
  enabled: boolean;
  condition: string | null;
  transformations: Transformation[];
  destination_ids: string[];
  created_at?: string | null;
  updated_at?: string | null;
};

export type Route = {
  id: string;
  name: string;
  connector_id: string;
  enabled: boolean;
  error_handling: JsonObject;
  rules: { rule_id: string; sequence_order: number }[];
  created_at?: string | null;
  updated_at?: string | null;
};

export type WebhookTrigger = {
  id: string;
  job_id: string | null;
  endpoint_path: string;
  secret_key: string | null;
  enabled: boolean;
  asset_uri: string | null;
  url_path: string;
  created_at?: string | null;
  updated_at?: string | null;
};

/** `POST /connectors/{id}/test` and `POST /destinations/{id}/test`. */
export type TestResult = { ok: boolean; message: string };

/** What the API answers in place of a stored secret. */
export const REDACTED = "***";
