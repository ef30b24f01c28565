import { Badge, Box, Button, Code, Flex, HStack, Input, Stack, Table, Text, Textarea } from "@chakra-ui/react";
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage } from "../api/client";
import type { DestinationPreview, FailurePreview, JobPreview as Preview } from "../api/types";
import { useMe } from "../api/useMe";
import { Card, ErrorNote } from "./common";

const MAX_RECORDS = 100;
const EXAMPLE = `[
  {"id": 1, "total": 1500, "country": "US"}
]`;

type Records = Record<string, unknown>[];

/** The records of the text: a JSON array of objects, one object, or JSON lines (at most 100). */
function parseRecords(text: string): { records: Records; error: null } | { records: null; error: string } {
  const trimmed = text.trim();
  if (!trimmed) return { records: null, error: "paste at least one record" };
  let values: unknown[];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    values = Array.isArray(parsed) ? parsed : [parsed];
  } catch (error) {
    try {
      values = trimmed
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as unknown);
    } catch {
      return { records: null, error: `not JSON (an array of objects, an object or JSON lines): ${errorMessage(error)}` };
    }
  }
  const bad = values.findIndex((value) => typeof value !== "object" || value === null || Array.isArray(value));
  if (bad >= 0) return { records: null, error: `record ${bad} is not a JSON object` };
  if (values.length > MAX_RECORDS) return { records: null, error: `at most ${MAX_RECORDS} records (got ${values.length})` };
  return { records: values as Records, error: null };
}

function Items({ items }: { items: unknown[] }) {
  // Lines (file, prometheus) read best as one block; objects (rows, requests, messages) one block each.
  if (items.every((item) => typeof item === "string")) {
    return (
      <Code display="block" whiteSpace="pre" overflowX="auto" p={2} fontSize="xs" maxH="60" overflowY="auto" data-testid="preview-rendered">
        {(items as string[]).join("\n")}
      </Code>
    );
  }
  return (
    <Stack gap={1} data-testid="preview-rendered">
      {items.map((item, index) => (
        <Code key={index} display="block" whiteSpace="pre-wrap" wordBreak="break-all" p={2} fontSize="xs" maxH="60" overflowY="auto">
          {JSON.stringify(item, null, 2)}
        </Code>
      ))}
    </Stack>
  );
}

function Destination({ destination }: { destination: DestinationPreview }) {
  const d = destination;
  const more = d.rendered_total - d.rendered.length;
  return (
    <Box borderWidth="1px" borderColor={d.error ? "border.error" : "border"} borderRadius="md" p={3} data-testid="preview-destination" data-destination={d.id}>
      <HStack gap={2} wrap="wrap" mb={d.rendered.length || d.error ? 2 : 0}>
        <Text fontWeight="semibold">{d.name}</Text>
        {d.destination_type && <Text fontSize="xs" color="fg.muted">{d.destination_type}</Text>}
        {d.enabled ? (
          <Badge variant="subtle" colorPalette={d.routed ? "blue" : "gray"}>
            {d.routed} record{d.routed === 1 ? "" : "s"}
          </Badge>
        ) : (
          <Badge variant="subtle" colorPalette="gray">disabled: {d.routed} skipped</Badge>
        )}
        {d.rendered_total > 0 && (
          <Text fontSize="xs" color="fg.muted">
            {d.rendered_total} {d.rendered_as}
            {d.rendered_total === 1 ? "" : "s"}
          </Text>
        )}
        {d.target && <Text fontSize="xs" color="fg.muted">· {d.target}</Text>}
        {d.dead_letter_destination_id && (
          <Text fontSize="xs" color="fg.muted">· refused records go to {d.dead_letter_destination_id}</Text>
        )}
      </HStack>
      {d.enabled && d.error && (
        <Text color="fg.error" fontSize="sm" mb={2}>
          {d.error}
        </Text>
      )}
      {d.rendered.length > 0 && <Items items={d.rendered} />}
      {more > 0 && (
        <Text fontSize="xs" color="fg.muted" mt={1}>
          … {more} more
        </Text>
      )}
    </Box>
  );
}

function Failures({ failures, total }: { failures: FailurePreview[]; total: number }) {
  return (
    <Box>
      <Text fontWeight="semibold" fontSize="sm" mb={1}>
        Transformation failures ({total})
      </Text>
      <Table.Root size="sm" data-testid="preview-failures">
        <Table.Header>
          <Table.Row>
            <Table.ColumnHeader>Route / rule / step</Table.ColumnHeader>
            <Table.ColumnHeader>Error</Table.ColumnHeader>
            <Table.ColumnHeader>Then</Table.ColumnHeader>
            <Table.ColumnHeader>Record</Table.ColumnHeader>
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {failures.map((f, index) => (
            <Table.Row key={index}>
              <Table.Cell fontSize="xs">
                {f.route_id} / {f.rule_id ?? "—"} / {f.transformation_id ?? "—"}
              </Table.Cell>
              <Table.Cell fontSize="xs" color="fg.error">
                {f.error}
              </Table.Cell>
              <Table.Cell fontSize="xs">
                {f.mode === "continue" ? "skipped" : f.mode === "fail" ? "the run fails" : `dead-lettered to ${f.dead_letter_destination_id}`}
              </Table.Cell>
              <Table.Cell>
                <Code fontSize="xs" whiteSpace="pre-wrap" wordBreak="break-all">
                  {JSON.stringify(f.record)}
                </Code>
              </Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
    </Box>
  );
}

function Result({ preview }: { preview: Preview }) {
  const source = preview.source === "records" ? "given record(s)" : "record(s) from the connector";
  const matched = Object.entries(preview.matched_per_rule);
  return (
    <Stack gap={3} data-testid="preview-result">
      <Text fontSize="sm">
        {preview.records_in} {source}
        {preview.truncated ? " (more were there)" : ""}
        {preview.timed_out ? ", stopped by the 20 s bound" : ""} · {preview.unmatched} unmatched · {preview.filtered} filtered ·{" "}
        {preview.failures_total} transformation failure{preview.failures_total === 1 ? "" : "s"}
        {matched.length > 0 && ` · matches: ${matched.map(([rule, n]) => `${rule} ${n}`).join(", ")}`}
      </Text>
      {preview.error && (
        <Box p={2} borderWidth="1px" borderColor="border.error" bg="bg.error" borderRadius="md" role="alert">
          <Text color="fg.error" fontSize="sm">
            {preview.error}
          </Text>
        </Box>
      )}
      {preview.warnings.map((warning) => (
        <Text key={warning} color="fg.warning" fontSize="sm">
          {warning}
        </Text>
      ))}
      {preview.destinations.length === 0 && <Text color="fg.muted">The job reaches no destination.</Text>}
      {preview.destinations.map((destination) => (
        <Destination key={destination.id} destination={destination} />
      ))}
      {preview.failures.length > 0 && <Failures failures={preview.failures} total={preview.failures_total} />}
      {preview.unmatched_records.length > 0 && (
        <Box>
          <Text fontWeight="semibold" fontSize="sm" mb={1}>
            Unmatched records ({preview.unmatched})
          </Text>
          <Items items={preview.unmatched_records} />
        </Box>
      )}
      <Text fontSize="xs" color="fg.muted">
        Nothing was written and no execution was recorded ({preview.duration_seconds.toFixed(2)} s).
      </Text>
    </Stack>
  );
}

/** Preview what a run of the job would deliver, per destination (POST /jobs/{id}/preview; nothing is written). */
export function JobPreview({ jobId }: { jobId: string }) {
  const { can } = useMe();
  const canRead = can("connectors", "execute");
  const [mode, setMode] = useState<"connector" | "records">("connector");
  const [limit, setLimit] = useState("10");
  const [text, setText] = useState(EXAMPLE);
  const [inputError, setInputError] = useState<string | null>(null);
  const fromConnector = mode === "connector" && canRead;
  const preview = useMutation({
    mutationFn: (body: { limit?: number; records?: Records }) =>
      api<Preview>(`/jobs/${encodeURIComponent(jobId)}/preview`, { method: "POST", body }),
  });
  const run = () => {
    if (fromConnector) {
      const n = Math.min(MAX_RECORDS, Math.max(1, Math.trunc(Number(limit)) || 10));
      setInputError(null);
      preview.mutate({ limit: n });
      return;
    }
    const parsed = parseRecords(text);
    setInputError(parsed.error);
    if (parsed.records) preview.mutate({ records: parsed.records });
  };
  if (!can("jobs", "read")) return null;
  return (
    <Card title="Preview">
      <Stack gap={3} data-testid="job-preview">
        <Text fontSize="sm" color="fg.muted">
          What a run would deliver to each destination, as each would write it. Nothing is written and no run is recorded.
        </Text>
        <Flex gap={2} align="center" wrap="wrap">
          <HStack gap={0}>
            <Button
              size="xs"
              variant={fromConnector ? "solid" : "outline"}
              onClick={() => setMode("connector")}
              disabled={!canRead}
              title={canRead ? undefined : "reading the connector needs connectors:execute"}
            >
              From the connector
            </Button>
            <Button size="xs" variant={fromConnector ? "outline" : "solid"} onClick={() => setMode("records")}>
              From records
            </Button>
          </HStack>
          {fromConnector && (
            <HStack gap={1}>
              <Text fontSize="sm">records</Text>
              <Input size="xs" w="20" type="number" min={1} max={MAX_RECORDS} value={limit} onChange={(e) => setLimit(e.target.value)} aria-label="preview limit" />
            </HStack>
          )}
          <Button size="xs" colorPalette="blue" onClick={run} loading={preview.isPending} data-testid="preview-run">
            Preview
          </Button>
        </Flex>
        {!fromConnector && (
          <Textarea
            size="sm"
            fontFamily="mono"
            rows={6}
            value={text}
            onChange={(e) => setText(e.target.value)}
            aria-label="preview records"
            placeholder="A JSON array of records, one object, or JSON lines"
          />
        )}
        {inputError && (
          <Text color="fg.error" fontSize="sm">
            {inputError}
          </Text>
        )}
        {preview.error && <ErrorNote error={preview.error} />}
        {preview.data && !preview.isPending && <Result preview={preview.data} />}
      </Stack>
    </Card>
  );
}
