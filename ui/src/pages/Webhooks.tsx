import { Box, Grid, Text } from "@chakra-ui/react";
import { useState } from "react";
import { basePath } from "../api/client";
import { REDACTED, type JsonObject, type WebhookTrigger } from "../api/resources";
import type { Job } from "../api/types";
import { CheckboxInput, SpecFields, applyValues, useFormErrors, valuesFrom, type FieldSpec, type Values } from "../components/form";
import { EditorFrame, IdField, ResourcePage, YesNo, useOptions, useSaveRow, type EditorProps } from "../components/resourcePage";

const PATH = "/webhooks";

function WebhookEditor({ row, onDone }: EditorProps<WebhookTrigger>) {
  const jobs = useOptions<Job>("/jobs");
  const hasSecret = row?.secret_key === REDACTED;
  const specs: FieldSpec[] = [
    { path: "endpoint_path", label: "Endpoint path", required: true, mono: true, placeholder: "orders/created", help: "Deliveries are POSTed to /muxly/webhooks/<endpoint path>" },
    {
      path: "job_id",
      label: "Job to run",
      kind: "select",
      options: jobs.map((job) => ({ value: job.id, label: job.name === job.id ? job.id : `${job.name} (${job.id})` })),
      placeholder: "— none (sensor-only or asset endpoint)",
    },
    { path: "asset_uri", label: "Asset URI", mono: true, placeholder: "x-muxly://orders", help: "Each delivery creates an event of this Airflow asset (optional)" },
    { path: "secret_key", label: "Signing secret", kind: "secret", help: "With a secret, deliveries must carry an HMAC-SHA256 signature" },
    { path: "enabled", label: "Enabled", kind: "bool", initial: true },
  ];
  const [id, setId] = useState("");
  const [values, setValues] = useState<Values>(() => valuesFrom(row, specs));
  const [removeSecret, setRemoveSecret] = useState(false);
  const [localError, setLocalError] = useState<unknown>(null);
  const save = useSaveRow<WebhookTrigger>(PATH, row?.id ?? null);
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, ["id", ...specs.map((spec) => spec.path)]);
  const stored = new Set(hasSecret && !removeSecret ? ["secret_key"] : []);

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = {};
      if (!row && id.trim()) base.id = id.trim();
      const body = applyValues(base, specs, values, stored);
      if (row) {
        // A change sends every field: an emptied job or asset is removed, and so is the secret when asked.
        for (const field of ["job_id", "asset_uri"]) if (!(field in body)) body[field] = null;
        if (removeSecret && !values.secret_key) body.secret_key = null;
      }
      save.mutate(body, { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  return (
    <EditorFrame title={row ? `Edit webhook trigger ${row.id}` : "New webhook trigger"} onSubmit={submit} onCancel={() => onDone(null)} saving={save.isPending} error={rest}>
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <IdField row={row} value={id} onChange={(value) => {
          touch("id");
          setId(value);
        }} error={byField.id} />
      </Grid>
      <SpecFields specs={specs} values={values} onChange={(path, value) => {
          touch(path);
          setValues((current) => ({ ...current, [path]: value }));
        }} errors={byField} stored={stored} />
      {hasSecret && (
        <Box>
          <CheckboxInput label="Remove the stored secret (accept unsigned deliveries)" checked={removeSecret} onChange={setRemoveSecret} />
        </Box>
      )}
    </EditorFrame>
  );
}

/** Webhook triggers: endpoints that start jobs, create asset events or release sensors. */
export function WebhooksPage() {
  return (
    <ResourcePage<WebhookTrigger>
      resource="webhooks"
      path={PATH}
      kind="webhook trigger"
      title="Webhook triggers"
      intro="Each trigger is an endpoint on Airflow's api-server. A delivery starts the trigger's job, creates an event of its asset, or only releases waiting sensors. The signing secret is write-only."
      Editor={WebhookEditor}
      columns={[
        {
          title: "Endpoint",
          render: (row) => (
            <Box>
              <Text fontFamily="mono" fontSize="sm">
                {basePath()}
                {row.url_path.replace(/^\//, "")}
              </Text>
              <Text fontSize="xs" color="fg.muted" fontFamily="mono">
                {row.id}
              </Text>
            </Box>
          ),
        },
        { title: "Job", render: (row) => row.job_id ?? <Text color="fg.muted">—</Text> },
        { title: "Asset", render: (row) => row.asset_uri ?? <Text color="fg.muted">—</Text> },
        { title: "Signed", render: (row) => <YesNo value={row.secret_key !== null} /> },
        { title: "Enabled", render: (row) => <YesNo value={row.enabled} /> },
      ]}
    />
  );
}
