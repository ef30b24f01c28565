import { Badge, Box, Button, Code, Flex, Grid, HStack, Input, NativeSelect, Stack, Table, Text } from "@chakra-ui/react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Page } from "../api/types";
import { useMe } from "../api/useMe";
import type { DeadLetter, DeadLetterDetail, ReplayResult } from "../api/tools";
import { useDebouncedValue } from "../api/tools";
import { Card, ErrorNote, Loading, When } from "../components/common";

const PAGE_SIZE = 50;

function LetterState({ letter }: { letter: DeadLetter }) {
  if (letter.replayed_at) {
    return (
      <Badge colorPalette="green" variant="subtle" title={`to ${letter.replayed_to ?? letter.destination_id}`}>
        replayed
      </Badge>
    );
  }
  if (letter.replay_error) {
    return (
      <Badge colorPalette="red" variant="subtle" title={letter.replay_error}>
        replay failed
      </Badge>
    );
  }
  return (
    <Badge colorPalette="orange" variant="subtle">
      waiting
    </Badge>
  );
}

function ReplayOutcome({ result }: { result: ReplayResult }) {
  const palette = result.status === "replayed" || result.status === "already_replayed" ? "green" : result.status === "failed" ? "red" : "orange";
  return (
    <HStack fontSize="sm" data-testid="replay-result">
      <Badge colorPalette={palette} variant="subtle">
        {result.status}
      </Badge>
      <Text>
        {result.delivered} record(s) delivered{result.destination_id ? ` to ${result.destination_id}` : ""}
      </Text>
      {result.error && <Text color="fg.error">{result.error}</Text>}
    </HStack>
  );
}

function LetterDetail({ id, canReplay, onClose }: { id: string; canReplay: boolean; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [to, setTo] = useState("");
  const letter = useQuery({
    queryKey: ["dead-letter", id],
    queryFn: () => api<DeadLetterDetail>(`/dead-letters/${encodeURIComponent(id)}`),
  });
  const replay = useMutation({
    mutationFn: () =>
      api<ReplayResult>(`/dead-letters/${encodeURIComponent(id)}/replay`, {
        method: "POST",
        body: to.trim() ? { to_destination_id: to.trim() } : {},
      }),
    onSettled: () => {
      void queryClient.invalidateQueries({ queryKey: ["dead-letters"] });
      void queryClient.invalidateQueries({ queryKey: ["dead-letter", id] });
    },
  });
  const data = letter.data;
  const rows: [string, string | number][] = data
    ? [
        ["id", data.id],
        ["job", data.job_id],
        ["DAG run", `${data.dag_id} / ${data.run_id}`],
        ["destination", data.destination_id],
        ["batch", data.batch_index],
        ["records", data.record_count],
        ["replay attempts", data.replay_attempts],
      ]
    : [];
  return (
    <Card title="Dead letter">
      <Box data-testid="dead-letter-detail">
        {letter.isLoading && <Loading />}
        {letter.error && <ErrorNote error={letter.error} />}
        {data && (
          <Stack gap={3}>
            <Grid templateColumns="max-content 1fr" columnGap={4} rowGap={1} fontSize="sm">
              {rows.map(([label, value]) => (
                <Box key={label} display="contents">
                  <Text color="fg.muted">{label}</Text>
                  <Text fontFamily={label === "id" ? "mono" : undefined} wordBreak="break-all">
                    {value}
                  </Text>
                </Box>
              ))}
              <Text color="fg.muted">created</Text>
              <Text>
                <When iso={data.created_at} />
              </Text>
              <Text color="fg.muted">state</Text>
              <HStack>
                <LetterState letter={data} />
                {data.replayed_at && (
                  <Text fontSize="xs" color="fg.muted">
                    <When iso={data.replayed_at} /> to {data.replayed_to}
                  </Text>
                )}
              </HStack>
            </Grid>
            <Box>
              <Text fontSize="sm" color="fg.muted">
                Error
              </Text>
              <Text color="fg.error" fontSize="sm" whiteSpace="pre-wrap" data-testid="dead-letter-error">
                {data.error}
              </Text>
              {data.replay_error && (
                <Text color="fg.error" fontSize="sm" mt={1}>
                  Last replay: {data.replay_error}
                </Text>
              )}
            </Box>
            <Box>
              <Text fontSize="sm" color="fg.muted">
                Records ({data.records.length})
              </Text>
              <Code display="block" whiteSpace="pre" p={2} fontSize="xs" maxH="80" overflow="auto" data-testid="dead-letter-records">
                {JSON.stringify(data.records, null, 2)}
              </Code>
            </Box>
            {replay.data && <ReplayOutcome result={replay.data} />}
            {replay.error && <ErrorNote error={replay.error} />}
            <HStack>
              {canReplay && !data.replayed_at && (
                <>
                  <Input
                    size="sm"
                    maxW="xs"
                    value={to}
                    onChange={(e) => setTo(e.target.value)}
                    placeholder={`to ${data.destination_id} (or another destination id)`}
                    aria-label="replay to destination"
                  />
                  <Button size="sm" colorPalette="blue" loading={replay.isPending} onClick={() => replay.mutate()}>
                    Replay
                  </Button>
                </>
              )}
              <Button size="sm" variant="ghost" onClick={onClose}>
                Close
              </Button>
            </HStack>
          </Stack>
        )}
      </Box>
    </Card>
  );
}

/** Dead letters: paged and filtered (job, destination, replayed), one letter with its records, replay. */
export function DeadLettersPage() {
  const { can } = useMe();
  const queryClient = useQueryClient();
  const canReplay = can("jobs", "execute");
  const [jobId, setJobId] = useState("");
  const [destinationId, setDestinationId] = useState("");
  const [replayed, setReplayed] = useState("false");
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const job = useDebouncedValue(jobId.trim(), 300);
  const destination = useDebouncedValue(destinationId.trim(), 300);

  useEffect(() => setOffset(0), [job, destination, replayed]);

  const query = useQuery({
    queryKey: ["dead-letters", job, destination, replayed, offset],
    queryFn: ({ signal }) =>
      api<Page<DeadLetter>>("/dead-letters", {
        query: { job_id: job, destination_id: destination, replayed, limit: PAGE_SIZE, offset },
        signal,
      }),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
  const replay = useMutation({
    mutationFn: (id: string) => api<ReplayResult>(`/dead-letters/${encodeURIComponent(id)}/replay`, { method: "POST", body: {} }),
    onSettled: (_data, _error, id) => {
      void queryClient.invalidateQueries({ queryKey: ["dead-letters"] });
      void queryClient.invalidateQueries({ queryKey: ["dead-letter", id] });
    },
  });
  const items = query.data?.items ?? [];
  const total = query.data?.total ?? 0;

  return (
    <Stack gap={4}>
      <Flex gap={2} wrap="wrap" align="center">
        <Input size="sm" maxW="60" placeholder="Job id" value={jobId} onChange={(e) => setJobId(e.target.value)} aria-label="job id" />
        <Input
          size="sm"
          maxW="60"
          placeholder="Destination id"
          value={destinationId}
          onChange={(e) => setDestinationId(e.target.value)}
          aria-label="destination id"
        />
        <NativeSelect.Root size="sm" maxW="44">
          <NativeSelect.Field value={replayed} onChange={(e) => setReplayed(e.target.value)} aria-label="replayed">
            <option value="false">Not replayed</option>
            <option value="true">Replayed</option>
            <option value="">All letters</option>
          </NativeSelect.Field>
          <NativeSelect.Indicator />
        </NativeSelect.Root>
        <Text color="fg.muted" fontSize="sm" ml="auto" data-testid="dead-letters-range">
          {total === 0 ? "no letters" : `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total.toLocaleString()}`}
        </Text>
        <Button size="sm" variant="outline" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
          Previous
        </Button>
        <Button size="sm" variant="outline" disabled={offset + PAGE_SIZE >= total} onClick={() => setOffset(offset + PAGE_SIZE)}>
          Next
        </Button>
      </Flex>
      {open && <LetterDetail key={open} id={open} canReplay={canReplay} onClose={() => setOpen(null)} />}
      {query.error && <ErrorNote error={query.error} />}
      {replay.error && <ErrorNote error={replay.error} />}
      {replay.data && <ReplayOutcome result={replay.data} />}
      {query.isLoading && <Loading />}
      {query.data && items.length === 0 && <Text color="fg.muted">No dead letter matches.</Text>}
      {items.length > 0 && (
        <Box borderWidth="1px" borderColor="border" borderRadius="md" overflowX="auto" opacity={query.isFetching ? 0.7 : 1}>
          <Table.Root size="sm" data-testid="dead-letters">
            <Table.Header>
              <Table.Row>
                <Table.ColumnHeader>Created</Table.ColumnHeader>
                <Table.ColumnHeader>Job</Table.ColumnHeader>
                <Table.ColumnHeader>Destination</Table.ColumnHeader>
                <Table.ColumnHeader>Run</Table.ColumnHeader>
                <Table.ColumnHeader>Batch</Table.ColumnHeader>
                <Table.ColumnHeader>Records</Table.ColumnHeader>
                <Table.ColumnHeader>Error</Table.ColumnHeader>
                <Table.ColumnHeader>State</Table.ColumnHeader>
                <Table.ColumnHeader />
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {items.map((letter) => (
                <Table.Row key={letter.id} data-testid="dead-letter-row" data-id={letter.id}>
                  <Table.Cell whiteSpace="nowrap">
                    <When iso={letter.created_at} />
                  </Table.Cell>
                  <Table.Cell>{letter.job_id}</Table.Cell>
                  <Table.Cell>{letter.destination_id}</Table.Cell>
                  <Table.Cell maxW="48" truncate title={letter.run_id}>
                    {letter.run_id}
                  </Table.Cell>
                  <Table.Cell>{letter.batch_index}</Table.Cell>
                  <Table.Cell>{letter.record_count}</Table.Cell>
                  <Table.Cell color="fg.error" maxW="xs" truncate title={letter.error}>
                    {letter.error}
                  </Table.Cell>
                  <Table.Cell>
                    <LetterState letter={letter} />
                  </Table.Cell>
                  <Table.Cell>
                    <HStack gap={1}>
                      <Button size="xs" variant="outline" onClick={() => setOpen(letter.id)}>
                        Inspect
                      </Button>
                      {canReplay && !letter.replayed_at && (
                        <Button
                          size="xs"
                          variant="outline"
                          loading={replay.isPending && replay.variables === letter.id}
                          onClick={() => replay.mutate(letter.id)}
                        >
                          Replay
                        </Button>
                      )}
                    </HStack>
                  </Table.Cell>
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        </Box>
      )}
    </Stack>
  );
}
