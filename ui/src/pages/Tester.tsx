import { Badge, Box, Button, Checkbox, Code, Flex, HStack, Input, NativeSelect, Stack, Table, Text, Textarea } from "@chakra-ui/react";
import { keepPreviousData, useMutation, useQuery } from "@tanstack/react-query";
import { useMemo, useRef, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { Page } from "../api/types";
import { useMe } from "../api/useMe";
import type { ConnectorRow, RulesTestResult, Sample, StoredRule, TestedRule, UnsavedRule } from "../api/tools";
import { useDebouncedValue } from "../api/tools";
import { Card, ErrorNote } from "../components/common";

const EXAMPLE_RECORDS = `[
  {"id": 1, "total": 1500, "country": "US"},
  {"id": 2, "total": 40, "country": "FR"}
]`;
const TYPED_ID = "rules[0]"; // the API's id of the first unsaved rule of a request

type Parsed<T> = { value: T; error: null } | { value: null; error: string };

/** The records of the text: a JSON array of objects, one JSON object, or JSON lines. */
function parseRecords(text: string): Parsed<Record<string, unknown>[]> {
  const trimmed = text.trim();
  if (!trimmed) return { value: [], error: null };
  let values: unknown[];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    values = Array.isArray(parsed) ? parsed : [parsed];
  } catch (error) {
    const lines = trimmed.split("\n").filter((line) => line.trim());
    try {
      values = lines.map((line) => JSON.parse(line) as unknown);
    } catch {
      return { value: null, error: `not JSON (an array of objects, an object or JSON lines): ${errorMessage(error)}` };
    }
  }
  const bad = values.findIndex((value) => typeof value !== "object" || value === null || Array.isArray(value));
  if (bad >= 0) return { value: null, error: `record ${bad} is not a JSON object` };
  if (values.length > 1000) return { value: null, error: `at most 1,000 records (got ${values.length})` };
  return { value: values as Record<string, unknown>[], error: null };
}

/** The unsaved rule's steps: a JSON list of {transformation_type, config}. */
function parseSteps(text: string): Parsed<unknown[]> {
  if (!text.trim()) return { value: [], error: null };
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return { value: null, error: "a JSON list of steps, e.g. [{\"transformation_type\": ...}]" };
    return { value: parsed, error: null };
  } catch (error) {
    return { value: null, error: `not JSON: ${errorMessage(error)}` };
  }
}

/** The expression under a caret at its 0-based `position`, and why it does not parse. */
export function ConditionCaret({
  label,
  expression,
  position,
  reason,
  onGoTo,
}: {
  label?: string;
  expression: string;
  position: number;
  reason: string;
  onGoTo?: () => void;
}) {
  return (
    <Box borderWidth="1px" borderColor="border.error" bg="bg.error" borderRadius="md" p={2} role="alert" data-testid="condition-caret" data-position={position}>
      {label && (
        <Text fontSize="xs" color="fg.muted" mb={1}>
          {label}
        </Text>
      )}
      <Box as="pre" fontFamily="mono" fontSize="sm" m={0} whiteSpace="pre" overflowX="auto" color="fg">
        {expression}
        {"\n"}
        <Text as="span" color="fg.error" fontWeight="bold" data-testid="caret">
          {" ".repeat(position)}^
        </Text>
      </Box>
      <Flex align="center" gap={2} mt={1}>
        <Text color="fg.error" fontSize="sm" data-testid="condition-error">
          {reason}
        </Text>
        {onGoTo && (
          <Button size="2xs" variant="outline" ml="auto" onClick={onGoTo}>
            Go to position {position}
          </Button>
        )}
      </Flex>
    </Box>
  );
}

function Json({ value }: { value: unknown }) {
  return (
    <Code display="block" whiteSpace="pre-wrap" wordBreak="break-all" p={1} fontSize="xs" maxH="40" overflowY="auto">
      {JSON.stringify(value)}
    </Code>
  );
}

function RuleStatus({ rule, expression, onGoTo }: { rule: TestedRule; expression: string | null; onGoTo?: () => void }) {
  const typed = rule.id === TYPED_ID;
  const label = typed ? "typed condition" : rule.name;
  if (!rule.error) {
    return (
      <HStack fontSize="sm" data-testid="tested-rule">
        <Badge colorPalette="green" variant="subtle">compiles</Badge>
        <Text>{label}</Text>
        {rule.flushed.length > 0 && <Text color="fg.muted">· {rule.flushed.length} record(s) flushed at the end</Text>}
      </HStack>
    );
  }
  if (expression !== null && rule.error.field === "condition" && rule.error.position !== null) {
    return (
      <ConditionCaret
        label={typed ? undefined : `stored rule ${rule.name}`}
        expression={expression}
        position={rule.error.position}
        reason={rule.error.reason}
        onGoTo={onGoTo}
      />
    );
  }
  return (
    <HStack fontSize="sm" align="start" data-testid="tested-rule">
      <Badge colorPalette="red" variant="subtle">error</Badge>
      <Text>
        {label}: <Code>{rule.error.field}</Code> <Text as="span" color="fg.error">{rule.error.reason}</Text>
        {rule.error.position !== null && ` (position ${rule.error.position})`}
      </Text>
    </HStack>
  );
}

function SamplePicker({ onSample }: { onSample: (records: Record<string, unknown>[], note: string) => void }) {
  const connectors = useQuery({
    queryKey: ["connectors", "all-for-tester"],
    queryFn: () => api<Page<ConnectorRow>>("/connectors", { query: { limit: 1000, sort: "name" } }),
  });
  const [connector, setConnector] = useState("");
  const [limit, setLimit] = useState("10");
  const sample = useMutation({
    mutationFn: (id: string) =>
      api<Sample>(`/connectors/${encodeURIComponent(id)}/sample`, { method: "POST", body: { limit: Number(limit) || 10 } }),
    onSuccess: (data) =>
      onSample(
        data.records,
        `${data.records.length} record(s) from ${connector}${data.truncated ? " (more were there)" : ""}${data.timed_out ? ", stopped after 20 s" : ""}`,
      ),
  });
  const items = connectors.data?.items ?? [];
  const chosen = connector || items[0]?.id || "";
  return (
    <Stack gap={1}>
      <HStack>
        <NativeSelect.Root size="sm" maxW="xs">
          <NativeSelect.Field value={chosen} onChange={(e) => setConnector(e.target.value)} aria-label="sample connector">
            {items.length === 0 && <option value="">no connector</option>}
            {items.map((row) => (
              <option key={row.id} value={row.id}>
                {row.name} ({row.id})
              </option>
            ))}
          </NativeSelect.Field>
          <NativeSelect.Indicator />
        </NativeSelect.Root>
        <Input size="sm" w="20" type="number" min={1} max={100} value={limit} onChange={(e) => setLimit(e.target.value)} aria-label="sample size" />
        <Button size="sm" variant="outline" disabled={!chosen} loading={sample.isPending} onClick={() => { setConnector(chosen); sample.mutate(chosen); }}>
          Fetch sample
        </Button>
      </HStack>
      {sample.error && <Text color="fg.error" fontSize="sm">{errorMessage(sample.error)}</Text>}
    </Stack>
  );
}

/** Try a typed condition, an unsaved rule's steps and stored rules on records; live, per record. */
export function TesterPage() {
  const { can } = useMe();
  const [recordsText, setRecordsText] = useState(EXAMPLE_RECORDS);
  const [sampleNote, setSampleNote] = useState<string | null>(null);
  const [condition, setCondition] = useState("total > 100");
  const [stepsText, setStepsText] = useState("");
  const [picked, setPicked] = useState<string[]>([]);
  const conditionInput = useRef<HTMLInputElement>(null);

  const rules = useQuery({
    queryKey: ["rules", "all-for-tester"],
    queryFn: () => api<Page<StoredRule>>("/rules", { query: { limit: 1000, sort: "priority" } }),
  });
  const ruleNames = useMemo(() => {
    const names: Record<string, string> = { [TYPED_ID]: "typed condition" };
    for (const rule of rules.data?.items ?? []) names[rule.id] = rule.name;
    return names;
  }, [rules.data]);
  const storedConditions = useMemo(() => {
    const conditions: Record<string, string | null> = {};
    for (const rule of rules.data?.items ?? []) conditions[rule.id] = rule.condition?.trim() ?? null;
    return conditions;
  }, [rules.data]);

  const records = parseRecords(recordsText);
  const steps = parseSteps(stepsText);
  const expression = condition.trim();
  const typed: UnsavedRule | null =
    expression || (steps.value && steps.value.length > 0)
      ? { id: TYPED_ID, name: "typed condition", condition: expression || null, transformations: steps.value ?? [] }
      : null;
  const problem = records.error ?? steps.error;
  const request =
    problem || !records.value || records.value.length === 0 || (!typed && picked.length === 0)
      ? null
      : JSON.stringify({
          records: records.value,
          ...(picked.length > 0 ? { rule_ids: picked } : {}),
          ...(typed ? { rules: [{ name: typed.name, condition: typed.condition, transformations: typed.transformations }] } : {}),
        });
  const debounced = useDebouncedValue(request, 350);
  const tested = useQuery({
    queryKey: ["rules-test", debounced],
    queryFn: async ({ signal }) => {
      // The answer keeps the expression it was computed for: a caret is drawn under that text, not under newer typing.
      const body = JSON.parse(debounced ?? "{}") as { rules?: { condition: string | null }[] };
      const result = await api<RulesTestResult>("/rules/test", { method: "POST", body, signal });
      return { ...result, expression: body.rules?.[0]?.condition ?? "" };
    },
    enabled: debounced !== null,
    placeholderData: keepPreviousData,
    staleTime: Infinity,
    retry: false,
  });
  const stale = tested.isFetching || debounced !== request;

  const goTo = (position: number) => {
    const input = conditionInput.current;
    if (!input) return;
    const offset = condition.length - condition.trimStart().length + position;
    input.focus();
    input.setSelectionRange(offset, Math.min(offset + 1, condition.length));
  };
  const toggle = (id: string) => setPicked((now) => (now.includes(id) ? now.filter((x) => x !== id) : [...now, id]));
  const data = debounced === null ? undefined : tested.data;
  const typedRule = data?.rules.find((rule) => rule.id === TYPED_ID);
  const notRun = data?.rules.filter((rule) => rule.error !== null) ?? [];
  const nothingRuns = data !== undefined && notRun.length === data.rules.length;

  return (
    <Stack gap={4}>
      <Flex gap={4} direction={{ base: "column", lg: "row" }} align="stretch">
        <Box flex="1">
          <Card title="Records">
            <Stack gap={2}>
              <Textarea
                value={recordsText}
                onChange={(e) => { setRecordsText(e.target.value); setSampleNote(null); }}
                fontFamily="mono"
                fontSize="sm"
                rows={10}
                aria-label="records"
                placeholder="A JSON array of objects, one object, or JSON lines"
              />
              {records.error ? (
                <Text color="fg.error" fontSize="sm" data-testid="records-error">Records: {records.error}</Text>
              ) : (
                <Text color="fg.muted" fontSize="sm" data-testid="records-count">
                  {records.value?.length ?? 0} record(s){sampleNote ? ` · ${sampleNote}` : ""}
                </Text>
              )}
              {can("connectors", "execute") ? (
                <SamplePicker
                  onSample={(sample, note) => {
                    setRecordsText(JSON.stringify(sample, null, 2));
                    setSampleNote(note);
                  }}
                />
              ) : (
                <Text color="fg.muted" fontSize="xs">Fetching a sample from a connector needs connectors:execute.</Text>
              )}
            </Stack>
          </Card>
        </Box>
        <Box flex="1">
          <Card title="Condition and rules">
            <Stack gap={3}>
              <Box>
                <Text fontSize="sm" mb={1} color="fg.muted">
                  Condition (e.g. <Code>total &gt; 100 AND country == 'US'</Code>; empty: every record)
                </Text>
                <Input
                  ref={conditionInput}
                  value={condition}
                  onChange={(e) => setCondition(e.target.value)}
                  fontFamily="mono"
                  aria-label="condition"
                  spellCheck={false}
                  autoComplete="off"
                />
              </Box>
              {typedRule && data && (
                <RuleStatus rule={typedRule} expression={data.expression} onGoTo={() => goTo(typedRule.error?.position ?? 0)} />
              )}
              <Box>
                <Text fontSize="sm" mb={1} color="fg.muted">
                  Transformations of the typed rule (optional, not saved): a JSON list such as{" "}
                  <Code>[{"{"}"transformation_type": "rename_field", "config": {"{"}"from": "total", "to": "revenue"{"}}"}]</Code>
                </Text>
                <Textarea value={stepsText} onChange={(e) => setStepsText(e.target.value)} fontFamily="mono" fontSize="sm" rows={3} aria-label="transformations" />
                {steps.error && <Text color="fg.error" fontSize="sm">Transformations: {steps.error}</Text>}
              </Box>
              <Box>
                <Text fontSize="sm" mb={1} color="fg.muted">Stored rules to try as well</Text>
                {rules.error && <ErrorNote error={rules.error} />}
                {rules.data && rules.data.items.length === 0 && <Text color="fg.muted" fontSize="sm">No stored rule.</Text>}
                <Stack gap={1} maxH="40" overflowY="auto" data-testid="stored-rules">
                  {(rules.data?.items ?? []).map((rule) => (
                    <Checkbox.Root key={rule.id} size="sm" checked={picked.includes(rule.id)} onCheckedChange={() => toggle(rule.id)}>
                      <Checkbox.HiddenInput />
                      <Checkbox.Control />
                      <Checkbox.Label>
                        {rule.name}{" "}
                        <Text as="span" color="fg.muted" fontFamily="mono" fontSize="xs">
                          {rule.condition ?? "(always)"}
                          {rule.transformations.length > 0 ? ` · ${rule.transformations.length} step(s)` : ""}
                          {rule.enabled ? "" : " · disabled"}
                        </Text>
                      </Checkbox.Label>
                    </Checkbox.Root>
                  ))}
                </Stack>
              </Box>
              {data && data.rules.filter((rule) => rule.id !== TYPED_ID).length > 0 && (
                <Stack gap={1}>
                  {data.rules
                    .filter((rule) => rule.id !== TYPED_ID)
                    .map((rule) => (
                      <RuleStatus key={rule.id} rule={rule} expression={storedConditions[rule.id] ?? null} />
                    ))}
                </Stack>
              )}
            </Stack>
          </Card>
        </Box>
      </Flex>
      <Card title="Per record">
        {request === null && !problem && (
          <Text color="fg.muted">Give records, then type a condition or pick stored rules.</Text>
        )}
        {problem && <Text color="fg.muted">Fix the input above to see the results.</Text>}
        {tested.error && <ErrorNote error={tested.error} />}
        {request !== null && data && nothingRuns && (
          <Text color="fg.muted" data-testid="tester-nothing-runs">
            No rule runs: {notRun.length === 1 ? "it does" : "they do"} not compile (see above).
          </Text>
        )}
        {request !== null && data && !nothingRuns && notRun.length > 0 && (
          <Text color="fg.muted" fontSize="sm" mb={2}>
            Not run (they do not compile): {notRun.map((rule) => ruleNames[rule.id] ?? rule.name).join(", ")}.
          </Text>
        )}
        {request !== null && data && !nothingRuns && (
          <Box opacity={stale ? 0.6 : 1} data-testid="tester-results" data-stale={stale ? "true" : "false"} overflowX="auto">
            <Table.Root size="sm">
              <Table.Header>
                <Table.Row>
                  <Table.ColumnHeader w="10">#</Table.ColumnHeader>
                  <Table.ColumnHeader>Record</Table.ColumnHeader>
                  <Table.ColumnHeader>Matches</Table.ColumnHeader>
                  <Table.ColumnHeader>Output</Table.ColumnHeader>
                  <Table.ColumnHeader>Errors</Table.ColumnHeader>
                </Table.Row>
              </Table.Header>
              <Table.Body>
                {data.results.map((result) => (
                  <Table.Row key={result.index} data-testid="tester-record" data-matched={result.matched.join(",")} verticalAlign="top">
                    <Table.Cell>{result.index}</Table.Cell>
                    <Table.Cell maxW="sm">
                      <Json value={records.value?.[result.index]} />
                    </Table.Cell>
                    <Table.Cell>
                      {result.matched.length === 0 ? (
                        <Badge variant="subtle" colorPalette="gray">no match</Badge>
                      ) : (
                        <Stack gap={1} align="start">
                          {result.matched.map((id) => (
                            <Badge key={id} variant="subtle" colorPalette="green" data-testid="match">
                              {ruleNames[id] ?? id}
                            </Badge>
                          ))}
                        </Stack>
                      )}
                    </Table.Cell>
                    <Table.Cell maxW="md">
                      <Stack gap={1}>
                        {Object.entries(result.outputs).map(([id, outputs]) => (
                          <Box key={id}>
                            <Text fontSize="xs" color="fg.muted">
                              {ruleNames[id] ?? id}: {outputs.length} record(s)
                            </Text>
                            {outputs.map((output, i) => (
                              <Json key={i} value={output} />
                            ))}
                          </Box>
                        ))}
                      </Stack>
                    </Table.Cell>
                    <Table.Cell>
                      {result.errors.map((error, i) => (
                        <Text key={i} fontSize="xs" color="fg.error">
                          {ruleNames[error.rule_id] ?? error.rule_id}: {error.field}: {error.reason}
                        </Text>
                      ))}
                    </Table.Cell>
                  </Table.Row>
                ))}
              </Table.Body>
            </Table.Root>
          </Box>
        )}
      </Card>
    </Stack>
  );
}
