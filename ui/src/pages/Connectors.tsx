import { Badge, Grid } from "@chakra-ui/react";
import { useState } from "react";
import type { Connector, JsonObject } from "../api/resources";
import {
  FormField,
  JsonObjectField,
  NAME_ENABLED,
  SectionTitle,
  SelectInput,
  SpecFields,
  TypeField,
  applyValues,
  jsonText,
  leftover,
  parseObject,
  useFormErrors,
  storedSecrets,
  valuesFrom,
  type FieldSpec,
  type Values,
} from "../components/form";
import { EditorFrame, IdField, MonoCell, NameCell, ResourcePage, YesNo, useSaveRow, type EditorProps } from "../components/resourcePage";

const PATH = "/connectors";

export const CONNECTOR_TYPES = ["api", "database", "file", "bigquery", "ga4", "hubspot", "webhook"];

const s = (name: string) => `connection_settings.${name}`;

/** The common options of each connector type as fields; the others go in the JSON editor (docs/connectors.md). */
const SETTINGS: Record<string, FieldSpec[]> = {
  api: [
    { path: s("base_url"), label: "Base URL", required: true, mono: true, wide: true, placeholder: "https://api.example.com/v1/orders" },
    { path: s("method"), label: "Method", kind: "select", options: ["GET", "POST", "PUT", "PATCH", "DELETE"], initial: "GET", required: true },
    { path: s("metrics_path"), label: "Records path", mono: true, placeholder: "data.records", help: "Where the list of records is in the answer; empty: the whole answer" },
    { path: s("timeout_seconds"), label: "Timeout (seconds)", kind: "number", placeholder: "30" },
  ],
  database: [
    { path: s("conn_id"), label: "Airflow connection id", placeholder: "warehouse_db", help: "Or a connection string (one of the two)" },
    { path: s("connection_string"), label: "Connection string", kind: "secret", placeholder: "postgresql://user:password@host/db" },
  ],
  file: [
    { path: s("path"), label: "Path", mono: true, placeholder: "incoming/orders.jsonl", help: "Inside [muxly] files_root, or s3://, gs://... (or a glob)" },
    { path: s("glob"), label: "Glob", mono: true, placeholder: "incoming/*.csv" },
    { path: s("format"), label: "Format", kind: "select", options: ["jsonl", "json", "csv"], initial: "jsonl", required: true },
    { path: s("compression"), label: "Compression", kind: "select", options: ["infer", "none", "gzip", "bz2", "zip", "xz"], initial: "infer", required: true },
    { path: s("conn_id"), label: "Object-storage connection id", placeholder: "aws_default" },
  ],
  bigquery: [
    { path: s("project_id"), label: "Project id", required: true },
    { path: s("dataset_id"), label: "Dataset id" },
    { path: s("location"), label: "Location", placeholder: "EU" },
    { path: s("max_results"), label: "Max results", kind: "number" },
  ],
  ga4: [
    { path: s("property_id"), label: "Property id", required: true },
    { path: s("default_date_range_days"), label: "Date range (days)", kind: "number", placeholder: "7" },
    { path: s("sampling_level"), label: "Sampling level", kind: "select", options: ["DEFAULT", "SMALL", "LARGE"], initial: "DEFAULT", required: true },
  ],
  hubspot: [
    { path: s("batch_size"), label: "Batch size", kind: "number", placeholder: "100" },
    { path: s("include_archived"), label: "Include archived", kind: "bool" },
  ],
  webhook: [
    { path: s("records_path"), label: "Records path", mono: true, placeholder: "data.items", help: "Where the records are in the delivery's body; empty: the whole body" },
  ],
};

const a = (name: string) => `auth_settings.params.${name}`;

export const AUTH_TYPES = ["none", "bearer", "basic", "api_key", "oauth", "service_account", "application_default", "airflow_connection"];

/** The fields of `auth_settings.params` per `auth_type` (docs/connectors.md, Authentication). */
const AUTH: Record<string, FieldSpec[]> = {
  none: [],
  application_default: [],
  bearer: [{ path: a("token"), label: "Token", kind: "secret", required: true }],
  basic: [
    { path: a("username"), label: "Username", required: true },
    { path: a("password"), label: "Password", kind: "secret" },
  ],
  api_key: [
    { path: a("api_key"), label: "API key", kind: "secret", required: true },
    { path: a("location"), label: "Sent in", kind: "select", options: ["header", "query"], initial: "header", required: true },
    { path: a("header_name"), label: "Header name", placeholder: "X-API-Key" },
    { path: a("param_name"), label: "Query parameter", placeholder: "api_key" },
  ],
  oauth: [
    { path: a("client_id"), label: "Client id", required: true },
    { path: a("client_secret"), label: "Client secret", kind: "secret", required: true },
    { path: a("refresh_token"), label: "Refresh token", kind: "secret" },
    { path: a("auth_code"), label: "Authorization code", kind: "secret", help: "For the first exchange, instead of a refresh token" },
    { path: a("token_url"), label: "Token URL", mono: true },
  ],
  service_account: [{ path: a("service_account_json"), label: "Service account key (JSON)", kind: "secret", required: true }],
  airflow_connection: [{ path: a("conn_id"), label: "Airflow connection id", required: true }],
};

function settingsOf(type: string): FieldSpec[] {
  return SETTINGS[type] ?? [];
}

function authOf(type: string): FieldSpec[] {
  return AUTH[type] ?? [];
}

function ConnectorEditor({ row, onDone }: EditorProps<Connector>) {
  const initialType = row?.connector_type ?? "api";
  const initialAuth = String(row?.auth_settings.auth_type ?? "none");
  const [id, setId] = useState("");
  const [type, setType] = useState(initialType);
  const [authType, setAuthType] = useState(initialAuth);
  const allSpecs = [...NAME_ENABLED, ...settingsOf(initialType), ...authOf(initialAuth)];
  const [values, setValues] = useState<Values>(() => valuesFrom(row, allSpecs));
  const [other, setOther] = useState(() => jsonText(leftover(row?.connection_settings, "connection_settings", settingsOf(initialType))));
  const [localError, setLocalError] = useState<unknown>(null);
  // A stored secret is kept only under the type it was stored for.
  const stored = storedSecrets(row, [...(type === initialType ? settingsOf(type) : []), ...(authType === initialAuth ? authOf(authType) : [])]);
  const save = useSaveRow<Connector>(PATH, row?.id ?? null);

  const specs = [...NAME_ENABLED, ...settingsOf(type), ...authOf(authType)];
  const fields = ["id", "connector_type", "auth_settings", "auth_settings.auth_type", "connection_settings", ...specs.map((spec) => spec.path)];
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, fields, { connection_settings: "connection_settings:self" });
  const set = (path: string, value: string | boolean) => {
    touch(path);
    setValues((current) => ({ ...current, [path]: value }));
  };

  const changeType = (next: string) => {
    touch("connector_type");
    setType(next);
    const back = next === initialType ? row : null;
    setValues((current) => ({ ...valuesFrom(back, settingsOf(next)), ...pick(current, NAME_ENABLED, authOf(authType)) }));
    setOther(jsonText(leftover(back?.connection_settings, "connection_settings", settingsOf(next))));
  };
  const changeAuth = (next: string) => {
    touch("auth_settings.auth_type");
    setAuthType(next);
    setValues((current) => ({ ...current, ...valuesFrom(next === initialAuth ? row : null, authOf(next)) }));
  };

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = {
        connector_type: type,
        auth_settings: { auth_type: authType, params: {} },
        connection_settings: parseObject(other, "connection_settings"),
      };
      if (!row && id.trim()) base.id = id.trim();
      const body = applyValues(base, specs, values, stored);
      const auth = body.auth_settings as JsonObject;
      if (!auth.params) auth.params = {};
      save.mutate(body, { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  const settings = settingsOf(type);
  return (
    <EditorFrame
      title={row ? `Edit connector ${row.name}` : "New connector"}
      onSubmit={submit}
      onCancel={() => onDone(null)}
      saving={save.isPending}
      error={rest}
    >
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <IdField row={row} value={id} onChange={(value) => {
          touch("id");
          setId(value);
        }} error={byField.id} />
        <TypeField value={type} types={CONNECTOR_TYPES} onChange={changeType} error={byField.connector_type} />
      </Grid>
      <SpecFields specs={NAME_ENABLED} values={values} onChange={set} errors={byField} stored={stored} />
      <SectionTitle title="Connection" error={byField["connection_settings:self"]} />
      <SpecFields specs={settings} values={values} onChange={set} errors={byField} stored={stored} />
      <JsonObjectField
        label="Other settings (JSON)"
        column="connection_settings"
        value={other}
        onChange={setOther}
        touch={touch}
        error={byField.connection_settings}
        help='pagination, headers, query_params, path_params, rate_limit, retry... (docs/connectors.md); "***" keeps a stored secret'
        placeholder='{"pagination": {"type": "page", "page_size": 100}}'
      />
      <SectionTitle title="Authentication" />
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <FormField label="Authentication" required error={byField["auth_settings.auth_type"] ?? byField.auth_settings}>
          <SelectInput label="Authentication" value={authType} onChange={changeAuth} options={AUTH_TYPES} />
        </FormField>
      </Grid>
      <SpecFields specs={authOf(authType)} values={values} onChange={set} errors={byField} stored={stored} />
    </EditorFrame>
  );
}

function pick(values: Values, ...groups: (readonly FieldSpec[])[]): Values {
  const out: Values = {};
  for (const spec of groups.flat()) {
    const value = values[spec.path];
    if (value !== undefined) out[spec.path] = value;
  }
  return out;
}

/** Where a connector reads from, in a few words. */
function target(connector: Connector): string {
  const settings = connector.connection_settings;
  const value = settings.base_url ?? settings.path ?? settings.glob ?? settings.conn_id ?? settings.project_id ?? settings.property_id ?? "";
  return typeof value === "string" ? value : "";
}

/** Connectors: where records come from. */
export function ConnectorsPage() {
  return (
    <ResourcePage<Connector>
      resource="connectors"
      path={PATH}
      kind="connector"
      title="Connectors"
      intro="Where records come from. Secrets are write-only: stored encrypted, never shown; leave a secret empty when editing to keep it."
      testable
      Editor={ConnectorEditor}
      columns={[
        { title: "Connector", render: (row) => <NameCell name={row.name} id={row.id} /> },
        { title: "Type", render: (row) => <Badge variant="subtle">{row.connector_type}</Badge> },
        {
          title: "Reads from",
          render: (row) => <MonoCell text={target(row)} />,
        },
        { title: "Auth", render: (row) => String(row.auth_settings.auth_type ?? "none") },
        { title: "Enabled", render: (row) => <YesNo value={row.enabled} /> },
      ]}
    />
  );
}
