// The job create/edit form (Jobs page: "New job"; Job detail: "Edit").
import { Grid } from "@chakra-ui/react";
import { useState } from "react";
import type { Connector, Destination, JsonObject, Route } from "../api/resources";
import type { Job } from "../api/types";
import {
  FieldGroup,
  IdChecks,
  JsonObjectField,
  SpecFields,
  applyValues,
  jsonText,
  leftover,
  parseObject,
  rowOption,
  useFormErrors,
  valuesFrom,
  type FieldSpec,
  type Values,
} from "./form";
import { EditorFrame, IdField, useOptions, useSaveRow } from "./resourcePage";

const JOB_TYPES = [
  { value: "manual", label: "manual: runs when started (Run, API, CLI)" },
  { value: "cron", label: "scheduled: a cron schedule" },
  { value: "webhook", label: "webhook: a webhook trigger starts it" },
];

const ACTIONS = [
  { value: "sync", label: "sync: route records through the connector's routes" },
  { value: "pipeline", label: "pipeline: route records through one route" },
  { value: "export", label: "export: send every record to destinations" },
  { value: "query", label: "query: a database connector's query" },
];

/** The fields `action_params` has in the form; the others stay in its JSON editor. */
const PARAM_PATHS = ["action_params.route_id", "action_params.query", "action_params.destination_ids"];

/** A form for a new job (`job` null) or a change to `job`; `onDone` gets the saved job, or null on Cancel. */
export function JobForm({ job, onDone }: { job: Job | null; onDone: (saved: Job | null) => void }) {
  const connectors = useOptions<Connector>("/connectors");
  const routes = useOptions<Route>("/routes");
  const destinations = useOptions<Destination>("/destinations");
  const [id, setId] = useState("");
  const specs: FieldSpec[] = [
    { path: "name", label: "Name", required: true },
    { path: "job_type", label: "Type", kind: "select", options: JOB_TYPES, initial: "manual", required: true },
    { path: "schedule", label: "Schedule", mono: true, placeholder: "@daily or 0 6 * * *", help: "Scheduled jobs: a cron expression or preset (UTC unless action_params.timezone)" },
    { path: "connector_id", label: "Connector", kind: "select", options: connectors.map(rowOption), placeholder: "— choose a connector" },
    { path: "action_type", label: "Action", kind: "select", options: ACTIONS, initial: "sync", required: true },
    { path: "action_params.route_id", label: "Route (pipeline)", kind: "select", options: routes.map(rowOption), placeholder: "— none" },
    { path: "action_params.query", label: "Query (query action)", kind: "textarea", mono: true },
    { path: "enabled", label: "Enabled (its DAG exists)", kind: "bool", initial: true },
    { path: "max_retries", label: "Retries", kind: "number", placeholder: "3" },
    { path: "backoff_strategy", label: "Backoff", kind: "select", options: ["exponential", "linear", "fixed"], initial: "exponential", required: true },
    { path: "timeout_seconds", label: "Timeout (seconds)", kind: "number", placeholder: "300" },
  ];
  const [values, setValues] = useState<Values>(() => valuesFrom(job, specs));
  const [targets, setTargets] = useState<string[]>(() => {
    const ids = job?.action_params.destination_ids;
    return Array.isArray(ids) ? ids.map(String) : [];
  });
  const [other, setOther] = useState(() =>
    jsonText(leftover(job?.action_params, "action_params", PARAM_PATHS.map((path) => ({ path, label: path })))),
  );
  const [localError, setLocalError] = useState<unknown>(null);
  const save = useSaveRow<Job>("/jobs", job?.id ?? null);
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, ["id", "action_params", ...PARAM_PATHS, ...specs.map((spec) => spec.path)]);
  const set = (path: string, value: string | boolean) => {
    touch(path);
    setValues((current) => ({ ...current, [path]: value }));
  };
  const scheduled = values.job_type === "cron";
  const shown = specs.filter((spec) => {
    if (spec.path === "schedule") return scheduled;
    if (spec.path === "action_params.route_id") return values.action_type === "pipeline" || Boolean(values[spec.path]);
    if (spec.path === "action_params.query") return values.action_type === "query" || Boolean(values[spec.path]);
    return true;
  });

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = { action_params: parseObject(other, "action_params") };
      if (!job && id.trim()) base.id = id.trim();
      const body = applyValues(base, specs, values, new Set());
      const params = (body.action_params ?? {}) as JsonObject;
      if (targets.length > 0) params.destination_ids = targets;
      body.action_params = params;
      if (!scheduled) body.schedule = null;
      if (!body.connector_id) body.connector_id = "";
      save.mutate(body, { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  return (
    <EditorFrame title={job ? `Edit job ${job.name}` : "New job"} onSubmit={submit} onCancel={() => onDone(null)} saving={save.isPending} error={rest}>
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <IdField row={job} value={id} onChange={(value) => {
          touch("id");
          setId(value);
        }} error={byField.id} />
      </Grid>
      <SpecFields specs={shown} values={values} onChange={set} errors={byField} stored={new Set()} />
      <FieldGroup
        label="Destinations (export)"
        error={byField["action_params.destination_ids"]}
        help="An export sends every record to these; sync and pipeline jobs use their rules' destinations"
      >
        <IdChecks
          rows={destinations}
          selected={targets}
          onToggle={(destinationId, on) => {
            touch("action_params.destination_ids");
            setTargets((current) => (on ? [...current, destinationId] : current.filter((t) => t !== destinationId)));
          }}
          empty="No destination yet."
          testId="job-destinations"
        />
      </FieldGroup>
      <JsonObjectField
        label="Other action parameters (JSON)"
        column="action_params"
        value={other}
        onChange={setOther}
        touch={touch}
        error={byField.action_params}
        help="data_spec, notifications, run_condition, timezone, wait_for_webhook... (docs/jobs.md)"
        placeholder='{"data_spec": {"query_params": {"day": "${DATE}"}}}'
      />
    </EditorFrame>
  );
}
