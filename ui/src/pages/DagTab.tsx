import { Box, Link as ChakraLink, Stack, Text } from "@chakra-ui/react";
import { useQuery } from "@tanstack/react-query";
import { ApiError, api, basePath } from "../api/client";
import type { Job, JobListItem, Page } from "../api/types";
import { ErrorNote, Loading } from "../components/common";
import { JobConfig, RecentExecutions } from "../components/jobParts";

const PREFIX = "muxly__";

/** The job of a DAG: its id is the DAG id without the prefix, unless the job id had characters a DAG id cannot hold. */
async function jobOfDag(dagId: string): Promise<Job | null> {
  const guess = dagId.slice(PREFIX.length);
  try {
    return await api<Job>(`/jobs/${encodeURIComponent(guess)}`);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  const page = await api<Page<JobListItem>>("/jobs", { query: { q: guess.split("_")[0] ?? guess, limit: 200 } });
  return page.items.find((job) => job.dag_id === dagId) ?? null;
}

/** The "Muxly job" tab of a DAG page: the job's configuration and recent executions (muxly__* DAGs only). */
export function DagTab({ dagId }: { dagId: string }) {
  const isMuxly = dagId.startsWith(PREFIX);
  const query = useQuery({ queryKey: ["dag-job", dagId], queryFn: () => jobOfDag(dagId), enabled: isMuxly });
  if (!isMuxly) {
    return (
      <Box p={4}>
        <Text color="fg.muted">This DAG is not a Muxly job (Muxly's DAG ids start with "{PREFIX}").</Text>
      </Box>
    );
  }
  if (query.isLoading) return <Loading />;
  if (query.error) return <ErrorNote error={query.error} />;
  const job = query.data;
  if (!job) return <Text p={4} color="fg.muted">No Muxly job builds this DAG any more.</Text>;
  return (
    <Stack gap={4} p={4} color="fg">
      <ChakraLink href={`${basePath()}plugin/muxly/jobs/${encodeURIComponent(job.id)}`} colorPalette="blue" fontSize="sm">
        Open the job in Muxly (flow, routes, rules)
      </ChakraLink>
      <JobConfig job={job} />
      <RecentExecutions jobId={job.id} limit={10} />
    </Stack>
  );
}
