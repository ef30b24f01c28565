import { Box, Button, Flex, HStack, Input, Link as ChakraLink, NativeSelect, Text, Textarea } from "@chakra-ui/react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { api, dagUrl, errorMessage } from "../api/client";
import { useAppPath } from "../appRoot";
import type { JobListItem, Page } from "../api/types";
import { useMe } from "../api/useMe";
import { ErrorNote, StatusBadge, When } from "../components/common";
import { JobForm } from "../components/JobForm";

const PAGE_SIZE = 100;
const ROW_HEIGHT = 44;
const GRID = "minmax(160px,2fr) 90px 110px minmax(100px,1fr) 80px 90px 150px 120px 150px 200px";

type Sort = { field: string; order: "asc" | "desc" };

const COLUMNS: { title: string; sort?: string }[] = [
  { title: "Job", sort: "name" },
  { title: "Type", sort: "job_type" },
  { title: "Schedule" },
  { title: "Connector" },
  { title: "Enabled" },
  { title: "Last run" },
  { title: "Last run at", sort: "last_run_at" },
  { title: "In / out / DL" },
  { title: "Next run" },
  { title: "" },
];

function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

function RunPanel({ job, onClose }: { job: JobListItem; onClose: () => void }) {
  const [payload, setPayload] = useState("");
  const [invalid, setInvalid] = useState<string | null>(null);
  const run = useMutation({
    mutationFn: (body: unknown) => api<{ dag_run_id?: string }>(`/jobs/${encodeURIComponent(job.id)}/run`, { method: "POST", body }),
  });
  const submit = () => {
    let body: unknown = {};
    if (payload.trim()) {
      try {
        body = { payload: JSON.parse(payload) as unknown };
      } catch (error) {
        setInvalid(`The payload is not JSON: ${errorMessage(error)}`);
        return;
      }
    }
    setInvalid(null);
    run.mutate(body);
  };
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} mb={3} bg="bg.subtle" data-testid="run-panel">
      <Text fontWeight="semibold" mb={2}>
        Run {job.name || job.id} now
      </Text>
      <Textarea
        value={payload}
        onChange={(event) => setPayload(event.target.value)}
        placeholder='Optional JSON payload, e.g. {"records": [{"id": 1}]}'
        fontFamily="mono"
        rows={3}
        aria-label="payload"
      />
      {(invalid ?? run.error) && (
        <Text color="fg.error" mt={1}>
          {invalid ?? errorMessage(run.error)}
        </Text>
      )}
      {run.isSuccess && (
        <Text color="fg.success" mt={1}>
          Queued{run.data?.dag_run_id ? ` as ${run.data.dag_run_id}` : ""}.
        </Text>
      )}
      <HStack mt={2}>
        <Button size="sm" colorPalette="blue" onClick={submit} loading={run.isPending}>
          Run
        </Button>
        <Button size="sm" variant="ghost" onClick={onClose}>
          Close
        </Button>
      </HStack>
    </Box>
  );
}

/** All jobs: server-side paging, sorting and filters; a virtualised table; enable/disable and run now. */
export function JobsPage() {
  const { can } = useMe();
  const jobsPath = useAppPath("jobs");
  const queryClient = useQueryClient();
  const [q, setQ] = useState("");
  const [enabled, setEnabled] = useState("");
  const [lastStatus, setLastStatus] = useState("");
  const [sort, setSort] = useState<Sort>({ field: "name", order: "asc" });
  const [offset, setOffset] = useState(0);
  const [running, setRunning] = useState<JobListItem | null>(null);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const search = useDebounced(q.trim(), 300);

  useEffect(() => setOffset(0), [search, enabled, lastStatus, sort]);

  const query = useQuery({
    queryKey: ["jobs", search, enabled, lastStatus, sort, offset],
    queryFn: ({ signal }) =>
      api<Page<JobListItem>>("/jobs", {
        query: { q: search, enabled, last_status: lastStatus, sort: sort.field, order: sort.order, limit: PAGE_SIZE, offset },
        signal,
      }),
    placeholderData: keepPreviousData,
  });
  const toggle = useMutation({
    mutationFn: (job: JobListItem) =>
      api(`/jobs/${encodeURIComponent(job.id)}/${job.enabled ? "disable" : "enable"}`, { method: "POST" }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ["jobs"] }),
  });

  const items = query.data?.items ?? [];
  const total = query.data?.total ?? 0;
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const canUpdate = can("jobs", "update");
  const canRun = can("jobs", "execute");
  const canCreate = can("jobs", "create");

  const sortBy = (field: string) =>
    setSort((current) => ({ field, order: current.field === field && current.order === "asc" ? "desc" : "asc" }));

  return (
    <Box>
      <Flex gap={2} mb={3} wrap="wrap" align="center">
        <Input size="sm" maxW="xs" placeholder="Search id or name" value={q} onChange={(e) => setQ(e.target.value)} aria-label="search" />
        <NativeSelect.Root size="sm" maxW="40">
          <NativeSelect.Field value={enabled} onChange={(e) => setEnabled(e.target.value)} aria-label="enabled">
            <option value="">Enabled and disabled</option>
            <option value="true">Enabled</option>
            <option value="false">Disabled</option>
          </NativeSelect.Field>
          <NativeSelect.Indicator />
        </NativeSelect.Root>
        <NativeSelect.Root size="sm" maxW="40">
          <NativeSelect.Field value={lastStatus} onChange={(e) => setLastStatus(e.target.value)} aria-label="last status">
            <option value="">Any last run</option>
            {["success", "failed", "running", "queued", "never"].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </NativeSelect.Field>
          <NativeSelect.Indicator />
        </NativeSelect.Root>
        <Text color="fg.muted" fontSize="sm" ml="auto" data-testid="jobs-range">
          {total === 0 ? "no jobs" : `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total.toLocaleString()}`}
        </Text>
        <Button size="sm" variant="outline" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
          Previous
        </Button>
        <Button size="sm" variant="outline" disabled={offset + PAGE_SIZE >= total} onClick={() => setOffset(offset + PAGE_SIZE)}>
          Next
        </Button>
        {canCreate && (
          <Button size="sm" colorPalette="blue" disabled={creating} onClick={() => { setCreated(null); setCreating(true); }}>
            New job
          </Button>
        )}
      </Flex>
      {creating && (
        <JobForm
          job={null}
          onDone={(saved) => {
            setCreating(false);
            if (saved) setCreated(saved.id);
          }}
        />
      )}
      {created && (
        <Text color="fg.success" mb={3} data-testid="saved">
          Saved job{" "}
          <ChakraLink asChild colorPalette="blue">
            <Link to={`${jobsPath}/${encodeURIComponent(created)}`}>{created}</Link>
          </ChakraLink>
          : its DAG appears once Airflow has parsed it.
        </Text>
      )}
      {running && <RunPanel key={running.id} job={running} onClose={() => setRunning(null)} />}
      {query.error && <ErrorNote error={query.error} />}
      {toggle.error && <ErrorNote error={toggle.error} />}
      <Box borderWidth="1px" borderColor="border" borderRadius="md" overflowX="auto">
        <Box minW="1300px">
          <Box display="grid" gridTemplateColumns={GRID} bg="bg.muted" fontSize="sm" fontWeight="semibold" role="row">
            {COLUMNS.map((column) => (
              <Box key={column.title} px={2} py={2} role="columnheader">
                {column.sort ? (
                  <Button size="sm" variant="plain" px={0} h="auto" fontWeight="semibold" onClick={() => sortBy(column.sort ?? "")}>
                    {column.title}
                    {sort.field === column.sort ? (sort.order === "asc" ? " ▲" : " ▼") : ""}
                  </Button>
                ) : (
                  column.title
                )}
              </Box>
            ))}
          </Box>
          <Box ref={scroller} h="60vh" overflowY="auto" position="relative" data-testid="jobs-table" opacity={query.isFetching ? 0.7 : 1}>
            <Box h={`${virtualizer.getTotalSize()}px`} position="relative">
              {virtualizer.getVirtualItems().map((row) => {
                const job = items[row.index];
                if (!job) return null;
                const last = job.last_execution;
                return (
                  <Box
                    key={job.id}
                    role="row"
                    data-testid="job-row"
                    display="grid"
                    gridTemplateColumns={GRID}
                    alignItems="center"
                    position="absolute"
                    top={0}
                    left={0}
                    w="full"
                    h={`${ROW_HEIGHT}px`}
                    transform={`translateY(${row.start}px)`}
                    borderTopWidth="1px"
                    borderColor="border.muted"
                    fontSize="sm"
                    _hover={{ bg: "bg.subtle" }}
                  >
                    <Box px={2} truncate title={job.id}>
                      <ChakraLink asChild colorPalette="blue">
                        <Link to={`${jobsPath}/${encodeURIComponent(job.id)}`}>{job.name || job.id}</Link>
                      </ChakraLink>
                    </Box>
                    <Box px={2}>{job.job_type}</Box>
                    <Box px={2} truncate fontFamily="mono">{job.schedule ?? "—"}</Box>
                    <Box px={2} truncate>{job.connector_id}</Box>
                    <Box px={2}>{job.enabled ? "yes" : "no"}</Box>
                    <Box px={2}>
                      <StatusBadge status={last?.status} />
                    </Box>
                    <Box px={2}>
                      <When iso={last?.started_at} />
                    </Box>
                    <Box px={2} title={last?.error ?? ""}>
                      {last ? `${last.records_extracted} / ${last.records_delivered} / ${last.records_dead_lettered}` : "—"}
                    </Box>
                    <Box px={2}>
                      <When iso={job.next_run_at} />
                    </Box>
                    <HStack px={2} gap={1}>
                      {canUpdate && (
                        <Button size="xs" variant="outline" onClick={() => toggle.mutate(job)} loading={toggle.isPending && toggle.variables?.id === job.id}>
                          {job.enabled ? "Disable" : "Enable"}
                        </Button>
                      )}
                      {canRun && (
                        <Button size="xs" variant="outline" onClick={() => setRunning(job)}>
                          Run
                        </Button>
                      )}
                      <ChakraLink href={dagUrl(job.dag_id)} fontSize="xs" colorPalette="blue">
                        DAG
                      </ChakraLink>
                    </HStack>
                  </Box>
                );
              })}
            </Box>
          </Box>
        </Box>
      </Box>
    </Box>
  );
}
