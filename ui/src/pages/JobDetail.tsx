import { Box, Button, Flex, HStack, Heading, Link as ChakraLink, Stack, Text } from "@chakra-ui/react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, dagUrl } from "../api/client";
import { useMe } from "../api/useMe";
import { JobForm } from "../components/JobForm";
import { useAppPath } from "../appRoot";
import type { JobFlow, Row } from "../api/types";
import { Card, ErrorNote, Loading } from "../components/common";
import { JobConfig, RecentExecutions } from "../components/jobParts";
import { JobPreview } from "../components/JobPreview";

function Node({ kind, row }: { kind: string; row: Row }) {
  const off = row.enabled === false;
  const type = row.connector_type ?? row.destination_type;
  return (
    <Box
      borderWidth="1px"
      borderColor={off ? "border.muted" : "border.emphasized"}
      borderRadius="md"
      px={3}
      py={2}
      bg="bg.panel"
      opacity={off ? 0.55 : 1}
      minW="40"
      data-testid={`flow-${kind}`}
      title={off ? "disabled: a run skips it" : undefined}
    >
      <Text fontSize="xs" color="fg.muted" textTransform="uppercase">
        {kind}
        {typeof type === "string" ? ` · ${type}` : ""}
        {off ? " · disabled" : ""}
      </Text>
      <Text fontWeight="semibold">{row.name ?? row.id}</Text>
      {typeof row.condition === "string" && (
        <Text fontFamily="mono" fontSize="xs" color="fg.muted" truncate maxW="xs" title={row.condition}>
          {row.condition}
        </Text>
      )}
      {Array.isArray(row.transformations) && row.transformations.length > 0 && (
        <Text fontSize="xs" color="fg.muted">
          {row.transformations.length} transformation{row.transformations.length > 1 ? "s" : ""}
        </Text>
      )}
    </Box>
  );
}

const Arrow = () => (
  <Text color="fg.subtle" px={1} aria-hidden>
    →
  </Text>
);

/** connector -> routes -> rules -> destinations, one line per route, one sub-line per rule. */
function Flow({ flow }: { flow: JobFlow }) {
  return (
    <Card title="Flow">
      <Flex align="flex-start" gap={2} overflowX="auto">
        <Node kind="connector" row={flow.connector} />
        <Arrow />
        <Stack gap={3}>
          {flow.routes.length === 0 && <Text color="fg.muted">No route: the job routes nothing.</Text>}
          {flow.routes.map(({ route, rules }) => (
            <Flex key={route.id} align="flex-start" gap={2}>
              <Node kind="route" row={route} />
              <Arrow />
              <Stack gap={2}>
                {rules.length === 0 && <Text color="fg.muted">No rule.</Text>}
                {rules.map(({ rule, destinations }) => (
                  <Flex key={rule.id} align="center" gap={2}>
                    <Node kind="rule" row={rule} />
                    <Arrow />
                    <Stack gap={1}>
                      {destinations.map((destination) => (
                        <Node key={destination.id} kind="destination" row={destination} />
                      ))}
                    </Stack>
                  </Flex>
                ))}
              </Stack>
            </Flex>
          ))}
          {(flow.export_destinations ?? []).length > 0 && (
            <Flex align="center" gap={2}>
              <Text fontSize="sm" color="fg.muted">
                export
              </Text>
              <Arrow />
              {(flow.export_destinations ?? []).map((destination) => (
                <Node key={destination.id} kind="destination" row={destination} />
              ))}
            </Flex>
          )}
        </Stack>
      </Flex>
    </Card>
  );
}

/** Delete with a confirmation; back to the Jobs page once deleted. */
function DeleteJob({ jobId, onDeleted }: { jobId: string; onDeleted: () => void }) {
  const queryClient = useQueryClient();
  const [asking, setAsking] = useState(false);
  const remove = useMutation({
    mutationFn: () => api(`/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" }),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["jobs"] });
      onDeleted();
    },
  });
  if (!asking) {
    return (
      <Button size="xs" variant="outline" colorPalette="red" onClick={() => setAsking(true)}>
        Delete
      </Button>
    );
  }
  return (
    <HStack gap={1}>
      <Text fontSize="xs">Delete job {jobId} and its DAG?</Text>
      <Button size="xs" colorPalette="red" onClick={() => remove.mutate()} loading={remove.isPending}>
        Yes, delete
      </Button>
      <Button size="xs" variant="ghost" onClick={() => setAsking(false)}>
        No
      </Button>
      {remove.error && (
        <Text fontSize="xs" color="fg.error">
          {remove.error.message}
        </Text>
      )}
    </HStack>
  );
}

/** One job: its flow, configuration and recent executions; Edit and Delete when the role allows them. */
export function JobDetailPage() {
  const { jobId = "" } = useParams();
  const jobsPath = useAppPath("jobs");
  const navigate = useNavigate();
  const { can } = useMe();
  const [editing, setEditing] = useState(false);
  const query = useQuery({
    queryKey: ["flow", jobId],
    queryFn: () => api<JobFlow>(`/jobs/${encodeURIComponent(jobId)}/flow`),
  });
  return (
    <Stack gap={4}>
      <Flex gap={3} align="baseline" wrap="wrap">
        <ChakraLink asChild colorPalette="blue" fontSize="sm">
          <Link to={jobsPath}>
            ← Jobs
          </Link>
        </ChakraLink>
        <Heading size="md">{query.data?.job.name ?? jobId}</Heading>
        {query.data && (
          <ChakraLink href={dagUrl(query.data.job.dag_id)} colorPalette="blue" fontSize="sm">
            Open DAG {query.data.job.dag_id}
          </ChakraLink>
        )}
        {query.data && (
          <HStack ml="auto" gap={1}>
            {can("jobs", "update") && (
              <Button size="xs" variant="outline" onClick={() => setEditing(true)} disabled={editing}>
                Edit
              </Button>
            )}
            {can("jobs", "delete") && <DeleteJob jobId={jobId} onDeleted={() => navigate(jobsPath)} />}
          </HStack>
        )}
      </Flex>
      {editing && query.data && <JobForm job={query.data.job} onDone={() => setEditing(false)} />}
      {query.isLoading && <Loading />}
      {query.error && <ErrorNote error={query.error} />}
      {query.data && <Flow flow={query.data} />}
      {query.data && <JobConfig job={query.data.job} />}
      {query.data && <JobPreview jobId={jobId} />}
      <RecentExecutions jobId={jobId} />
    </Stack>
  );
}
