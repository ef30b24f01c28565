import { Box, Code, Grid, Stack, Table, Text } from "@chakra-ui/react";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { Execution, Job, Page } from "../api/types";
import { Card, ErrorNote, Loading, StatusBadge, When } from "./common";

/** A job's configuration as a definition list (no secrets: jobs hold none). */
export function JobConfig({ job }: { job: Job }) {
  const rows: [string, string][] = [
    ["id", job.id],
    ["name", job.name],
    ["type", job.job_type],
    ["schedule", job.schedule ?? "—"],
    ["connector", job.connector_id],
    ["action", job.action_type],
    ["enabled", job.enabled ? "yes" : "no"],
    ["retries", `${job.max_retries} (${job.backoff_strategy})`],
    ["timeout", `${job.timeout_seconds} s`],
    ["DAG", job.dag_id],
  ];
  return (
    <Card title="Configuration">
      <Grid templateColumns="max-content 1fr" columnGap={4} rowGap={1} fontSize="sm">
        {rows.map(([label, value]) => (
          <Box key={label} display="contents">
            <Text color="fg.muted">{label}</Text>
            <Text fontFamily={label === "schedule" ? "mono" : undefined}>{value}</Text>
          </Box>
        ))}
        <Text color="fg.muted">action params</Text>
        <Code display="block" whiteSpace="pre-wrap" p={2}>
          {JSON.stringify(job.action_params, null, 2)}
        </Code>
      </Grid>
    </Card>
  );
}

function DestinationCounts({ execution }: { execution: Execution }) {
  const destinations = Object.entries(execution.result?.destinations ?? {});
  if (destinations.length === 0) return <Text color="fg.muted">—</Text>;
  return (
    <Stack gap={0}>
      {destinations.map(([id, counts]) => (
        <Text key={id} fontSize="xs">
          <b>{id}</b>: {counts.delivered ?? 0} delivered / {counts.routed ?? 0} routed
          {counts.failed ? `, ${counts.failed} failed` : ""}
          {counts.dead_lettered ? `, ${counts.dead_lettered} dead-lettered` : ""}
          {counts.error ? <Text as="span" color="fg.error"> {counts.error}</Text> : null}
        </Text>
      ))}
    </Stack>
  );
}

/** The latest executions of a job, with per-destination counts and errors. */
export function RecentExecutions({ jobId, limit = 20 }: { jobId: string; limit?: number }) {
  const query = useQuery({
    queryKey: ["executions", jobId, limit],
    queryFn: () => api<Page<Execution>>(`/jobs/${encodeURIComponent(jobId)}/executions`, { query: { limit, order: "desc" } }),
    refetchInterval: 15_000,
  });
  return (
    <Card title="Recent executions">
      {query.isLoading && <Loading />}
      {query.error && <ErrorNote error={query.error} />}
      {query.data && query.data.items.length === 0 && <Text color="fg.muted">No execution yet.</Text>}
      {query.data && query.data.items.length > 0 && (
        <Table.Root size="sm" data-testid="executions">
          <Table.Header>
            <Table.Row>
              <Table.ColumnHeader>Started</Table.ColumnHeader>
              <Table.ColumnHeader>Status</Table.ColumnHeader>
              <Table.ColumnHeader>Trigger</Table.ColumnHeader>
              <Table.ColumnHeader>In</Table.ColumnHeader>
              <Table.ColumnHeader>Delivered</Table.ColumnHeader>
              <Table.ColumnHeader>Dead-lettered</Table.ColumnHeader>
              <Table.ColumnHeader>Per destination</Table.ColumnHeader>
              <Table.ColumnHeader>Error</Table.ColumnHeader>
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {query.data.items.map((execution) => (
              <Table.Row key={execution.id}>
                <Table.Cell>
                  <When iso={execution.start_time} />
                </Table.Cell>
                <Table.Cell>
                  <StatusBadge status={execution.status} />
                </Table.Cell>
                <Table.Cell>{execution.triggered_by}</Table.Cell>
                <Table.Cell>{execution.result?.records_in ?? "—"}</Table.Cell>
                <Table.Cell>{execution.result?.delivered ?? "—"}</Table.Cell>
                <Table.Cell>{execution.result?.dead_lettered ?? "—"}</Table.Cell>
                <Table.Cell>
                  <DestinationCounts execution={execution} />
                </Table.Cell>
                <Table.Cell color="fg.error" maxW="xs" truncate title={execution.result?.error ?? ""}>
                  {execution.result?.error ?? ""}
                </Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Card>
  );
}
