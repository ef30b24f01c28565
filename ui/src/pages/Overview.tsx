import { Box, Link as ChakraLink, SimpleGrid, Stack, Table, Text } from "@chakra-ui/react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api, dagUrl } from "../api/client";
import { useAppPath } from "../appRoot";
import type { Overview } from "../api/types";
import { Card, ErrorNote, Loading, StatusBadge, When } from "../components/common";

function Stat({ label, value }: { label: string; value: number }) {
  return (
    <Box>
      <Text fontSize="2xl" fontWeight="semibold" data-testid={`stat-${label}`}>
        {value.toLocaleString()}
      </Text>
      <Text color="fg.muted" fontSize="sm">
        {label}
      </Text>
    </Box>
  );
}

/** Jobs by state, runs of the last 24 h by status, records, and the failing jobs. */
export function OverviewPage() {
  const jobsPath = useAppPath("jobs");
  const query = useQuery({ queryKey: ["overview"], queryFn: () => api<Overview>("/overview"), refetchInterval: 30_000 });
  if (query.isLoading) return <Loading />;
  if (query.error) return <ErrorNote error={query.error} />;
  const data = query.data;
  if (!data) return null;
  return (
    <Stack gap={4}>
      <SimpleGrid columns={{ base: 1, md: 3 }} gap={4}>
        <Card title="Jobs">
          <SimpleGrid columns={4} gap={2}>
            <Stat label="total" value={data.jobs.total} />
            <Stat label="enabled" value={data.jobs.enabled} />
            <Stat label="disabled" value={data.jobs.disabled} />
            <Stat label="failing" value={data.jobs.failing} />
          </SimpleGrid>
        </Card>
        <Card title="Runs in the last 24 h">
          <SimpleGrid columns={4} gap={2}>
            {Object.entries(data.runs_24h).map(([status, count]) => (
              <Stat key={status} label={status} value={count} />
            ))}
          </SimpleGrid>
        </Card>
        <Card title="Records in the last 24 h">
          <SimpleGrid columns={3} gap={2}>
            <Stat label="extracted" value={data.records_24h.extracted} />
            <Stat label="delivered" value={data.records_24h.delivered} />
            <Stat label="dead-lettered" value={data.records_24h.dead_lettered} />
          </SimpleGrid>
        </Card>
      </SimpleGrid>
      <Card title="Failing jobs">
        {data.failing_jobs.length === 0 ? (
          <Text color="fg.muted">No enabled job failed its latest run.</Text>
        ) : (
          <Table.Root size="sm">
            <Table.Header>
              <Table.Row>
                <Table.ColumnHeader>Job</Table.ColumnHeader>
                <Table.ColumnHeader>Status</Table.ColumnHeader>
                <Table.ColumnHeader>Finished</Table.ColumnHeader>
                <Table.ColumnHeader>Error</Table.ColumnHeader>
                <Table.ColumnHeader>DAG</Table.ColumnHeader>
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {data.failing_jobs.map((job) => (
                <Table.Row key={job.id}>
                  <Table.Cell>
                    <ChakraLink asChild colorPalette="blue">
                      <Link to={`${jobsPath}/${encodeURIComponent(job.id)}`}>{job.name || job.id}</Link>
                    </ChakraLink>
                  </Table.Cell>
                  <Table.Cell>
                    <StatusBadge status={job.status} />
                  </Table.Cell>
                  <Table.Cell>
                    <When iso={job.finished_at} />
                  </Table.Cell>
                  <Table.Cell color="fg.error" maxW="md" truncate title={job.error ?? ""}>
                    {job.error ?? ""}
                  </Table.Cell>
                  <Table.Cell>
                    <ChakraLink href={dagUrl(job.dag_id)} colorPalette="blue">
                      {job.dag_id}
                    </ChakraLink>
                  </Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        )}
      </Card>
    </Stack>
  );
}
