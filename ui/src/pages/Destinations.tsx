import { Badge, Grid } from "@chakra-ui/react";
import { useState } from "react";
import type { Destination, JsonObject } from "../api/resources";
import {
  JsonObjectField,
  NAME_ENABLED,
  SectionTitle,
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

const PATH = "/destinations";

export const DESTINATION_TYPES = ["file", "database", "webhook", "email", "slack", "s3", "prometheus"];

const c = (name: string) => `config.${name}`;

/** The common options of each destination type as fields; the others go in the JSON editor (docs/destinations.md). */
const CONFIG: Record<string, FieldSpec[]> = {
  file: [
    { path: c("output_dir"), label: "Output directory", mono: true, placeholder: "exports/sales", help: "Inside [muxly] files_root, or s3://, gs://... with a connection" },
    { path: c("file_format"), label: "File format", kind: "select", options: ["jsonl", "json", "csv"], initial: "jsonl", required: true },
    { path: c("file_prefix"), label: "File name prefix", placeholder: "sales" },
    { path: c("rotation"), label: "Rotation", kind: "select", options: ["none", "daily", "hourly", "size"], initial: "none", required: true },
    { path: c("max_file_size_mb"), label: "Max file size (MB)", kind: "number", help: "Needed when rotation is size" },
    { path: c("conn_id"), label: "Object-storage connection id", placeholder: "aws_default" },
    { path: c("compress"), label: "Compress (gzip)", kind: "bool" },
  ],
  database: [
    { path: c("table"), label: "Table", required: true },
    { path: c("schema"), label: "Schema" },
    { path: c("conn_id"), label: "Airflow connection id", help: "Or a connection string (one of the two)" },
    { path: c("connection_string"), label: "Connection string", kind: "secret", placeholder: "postgresql://user:password@host/db" },
    { path: c("db_type"), label: "Database type", kind: "select", options: ["postgres", "mysql", "sqlite"] },
    { path: c("upsert_key"), label: "Upsert key", kind: "value", help: 'A column, or a JSON list: ["id", "day"]' },
    { path: c("create_table"), label: "Create the table", kind: "bool" },
  ],
  webhook: [
    { path: c("url"), label: "URL", required: true, mono: true, wide: true, placeholder: "https://hooks.example.com/orders" },
    { path: c("method"), label: "Method", kind: "select", options: ["POST", "PUT", "PATCH", "GET"], initial: "POST", required: true },
    { path: c("send_mode"), label: "Send", kind: "select", options: [{ value: "batch", label: "a batch per request" }, { value: "record", label: "a record per request" }], initial: "batch", required: true },
    { path: c("timeout_seconds"), label: "Timeout (seconds)", kind: "number", placeholder: "30" },
  ],
  email: [
    { path: c("from_email"), label: "From", required: true, placeholder: "muxly@example.com" },
    { path: c("to_emails"), label: "To", kind: "list", required: true, placeholder: "a@example.com, b@example.com" },
    { path: c("smtp_host"), label: "SMTP host", help: "Or an Airflow SMTP connection" },
    { path: c("smtp_port"), label: "SMTP port", kind: "number", placeholder: "587" },
    { path: c("smtp_username"), label: "SMTP username" },
    { path: c("smtp_password"), label: "SMTP password", kind: "secret" },
    { path: c("conn_id"), label: "Airflow SMTP connection id" },
    { path: c("subject_template"), label: "Subject", placeholder: "Muxly: {{count}} records from {{connector_id}}" },
    { path: c("use_tls"), label: "TLS", kind: "bool", initial: true },
  ],
  slack: [
    { path: c("webhook_url"), label: "Incoming webhook URL", kind: "secret", help: "Or an Airflow connection (one of the two)" },
    { path: c("conn_id"), label: "Airflow connection id" },
    { path: c("channel"), label: "Channel", placeholder: "#alerts" },
    { path: c("message_template"), label: "Message", placeholder: "{{count}} records from {{connector_id}}" },
    { path: c("include_data"), label: "Include the records", kind: "bool" },
  ],
  s3: [
    { path: c("bucket"), label: "Bucket", required: true },
    { path: c("key_prefix"), label: "Key prefix", mono: true, placeholder: "exports/" },
    { path: c("region"), label: "Region", placeholder: "eu-west-1" },
    { path: c("output_format"), label: "Format", kind: "select", options: ["json", "jsonl", "csv"], initial: "json", required: true },
    { path: c("endpoint_url"), label: "Endpoint URL", mono: true, help: "S3-compatible stores (MinIO...)" },
    { path: c("conn_id"), label: "Airflow connection id", help: "Or static credentials below, or the instance role" },
    { path: c("credentials.access_key_id"), label: "Access key id" },
    { path: c("credentials.secret_access_key"), label: "Secret access key", kind: "secret" },
  ],
  prometheus: [
    { path: c("pushgateway_url"), label: "Pushgateway URL", mono: true },
    { path: c("job"), label: "Job label", placeholder: "muxly" },
    { path: c("metrics"), label: "Metrics (JSON list)", kind: "json", required: true, placeholder: '[{"name": "orders_total", "type": "counter"}]' },
  ],
};

const COMMON: FieldSpec[] = [
  { path: c("batch_size"), label: "Batch size", kind: "number", placeholder: "500" },
  { path: c("retry_count"), label: "Retries of a failed batch", kind: "number", placeholder: "2" },
];

function configOf(type: string): FieldSpec[] {
  return [...(CONFIG[type] ?? []), ...COMMON];
}

function DestinationEditor({ row, onDone }: EditorProps<Destination>) {
  const initialType = row?.destination_type ?? "file";
  const [id, setId] = useState("");
  const [type, setType] = useState(initialType);
  const [values, setValues] = useState<Values>(() => valuesFrom(row, [...NAME_ENABLED, ...configOf(initialType)]));
  const [other, setOther] = useState(() => jsonText(leftover(row?.config, "config", configOf(initialType))));
  const [localError, setLocalError] = useState<unknown>(null);
  const save = useSaveRow<Destination>(PATH, row?.id ?? null);
  const specs = [...NAME_ENABLED, ...configOf(type)];
  const stored = storedSecrets(row, type === initialType ? configOf(type) : []);
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, ["id", "destination_type", "config", ...specs.map((spec) => spec.path)], {
    config: "config:self",
  });
  const set = (path: string, value: string | boolean) => {
    touch(path);
    setValues((current) => ({ ...current, [path]: value }));
  };

  const changeType = (next: string) => {
    touch("destination_type");
    const back = next === initialType ? row : null;
    setType(next);
    setValues((current) => ({ ...valuesFrom(back, configOf(next)), name: current.name ?? "", enabled: current.enabled ?? true }));
    setOther(jsonText(leftover(back?.config, "config", configOf(next))));
  };

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = { destination_type: type, config: parseObject(other, "config") };
      if (!row && id.trim()) base.id = id.trim();
      save.mutate(applyValues(base, specs, values, stored), { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  return (
    <EditorFrame
      title={row ? `Edit destination ${row.name}` : "New destination"}
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
        <TypeField value={type} types={DESTINATION_TYPES} onChange={changeType} error={byField.destination_type} />
      </Grid>
      <SpecFields specs={NAME_ENABLED} values={values} onChange={set} errors={byField} stored={stored} />
      <SectionTitle title="Configuration" error={byField["config:self"]} />
      <SpecFields specs={configOf(type)} values={values} onChange={set} errors={byField} stored={stored} />
      <JsonObjectField
        label="Other options (JSON)"
        column="config"
        value={other}
        onChange={setOther}
        touch={touch}
        error={byField.config}
        help='headers, body_template, column_mapping, retry_backoff_seconds... (docs/destinations.md); "***" keeps a stored secret'
      />
    </EditorFrame>
  );
}

/** Where a destination writes, in a few words. */
function target(destination: Destination): string {
  const config = destination.config;
  const value = config.output_dir ?? config.url ?? config.table ?? config.bucket ?? config.channel ?? config.pushgateway_url ?? config.to_emails ?? "";
  return Array.isArray(value) ? value.join(", ") : typeof value === "string" ? value : "";
}

/** Destinations: where records go. */
export function DestinationsPage() {
  return (
    <ResourcePage<Destination>
      resource="destinations"
      path={PATH}
      kind="destination"
      title="Destinations"
      intro="Where records go. Passwords, tokens and webhook URLs are write-only; leave one empty when editing to keep it. Test connection reaches the destination without writing a record."
      testable
      Editor={DestinationEditor}
      columns={[
        { title: "Destination", render: (row) => <NameCell name={row.name} id={row.id} /> },
        { title: "Type", render: (row) => <Badge variant="subtle">{row.destination_type}</Badge> },
        {
          title: "Writes to",
          render: (row) => <MonoCell text={target(row)} />,
        },
        { title: "Enabled", render: (row) => <YesNo value={row.enabled} /> },
      ]}
    />
  );
}
