import { Badge, Box, Button, Flex, Grid, HStack, Stack, Text } from "@chakra-ui/react";
import { useState } from "react";
import type { Connector, Destination, JsonObject, Route, Rule } from "../api/resources";
import { FieldGroup, FormField, NAME_ENABLED, rowOption, SectionTitle, SelectInput, SpecFields, applyValues, useFormErrors, valuesFrom, type FieldSpec, type Values } from "../components/form";
import { EditorFrame, IdField, NameCell, ResourcePage, YesNo, useOptions, useSaveRow, type EditorProps } from "../components/resourcePage";

const PATH = "/routes";

const MODES = [
  { value: "continue", label: "continue: count failed records and go on" },
  { value: "dead_letter", label: "dead_letter: send failed records to a destination" },
  { value: "fail", label: "fail: fail the run" },
];

/** `error_handling` as the form edits it: the API also accepts the original names on_error and error_destination_id. */
function handlingOf(route: Route | null): JsonObject {
  const stored = route?.error_handling ?? {};
  return {
    error_handling: {
      mode: stored.mode ?? stored.on_error ?? "continue",
      default_destination_id: stored.default_destination_id,
      dead_letter_destination_id: stored.dead_letter_destination_id ?? stored.error_destination_id,
      max_failed_records: stored.max_failed_records,
    },
  };
}

function RouteEditor({ row, onDone }: EditorProps<Route>) {
  const connectors = useOptions<Connector>("/connectors");
  const destinations = useOptions<Destination>("/destinations");
  const rules = useOptions<Rule>("/rules");
  const handlingSpecs: FieldSpec[] = [
    { path: "error_handling.mode", label: "When a transformation fails", kind: "select", options: MODES, initial: "continue", required: true },
    { path: "error_handling.dead_letter_destination_id", label: "Dead-letter destination", kind: "select", options: destinations.map(rowOption), help: "Needed in dead_letter mode" },
    { path: "error_handling.default_destination_id", label: "Destination of unmatched records", kind: "select", options: destinations.map(rowOption), placeholder: "— none: counted as unmatched" },
    { path: "error_handling.max_failed_records", label: "Fail the run above this many failed records", kind: "number" },
  ];
  const [id, setId] = useState("");
  const [connectorId, setConnectorId] = useState(row?.connector_id ?? "");
  const [values, setValues] = useState<Values>(() => ({ ...valuesFrom(row, NAME_ENABLED), ...valuesFrom(handlingOf(row), handlingSpecs) }));
  const [ruleIds, setRuleIds] = useState<string[]>(() => (row?.rules ?? []).map((r) => r.rule_id));
  const [adding, setAdding] = useState("");
  const [localError, setLocalError] = useState<unknown>(null);
  const save = useSaveRow<Route>(PATH, row?.id ?? null);
  const specs = [...NAME_ENABLED, ...handlingSpecs];
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, ["id", "connector_id", "error_handling", "rules", ...specs.map((spec) => spec.path)]);
  const set = (path: string, value: string | boolean) => {
    touch(path);
    setValues((current) => ({ ...current, [path]: value }));
  };
  const names = new Map(rules.map((rule) => [rule.id, rule]));

  const move = (index: number, by: number) =>
    setRuleIds((current) => {
      const next = [...current];
      const [moved] = next.splice(index, 1);
      if (moved) next.splice(index + by, 0, moved);
      return next;
    });

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = { connector_id: connectorId, error_handling: {} };
      if (!row && id.trim()) base.id = id.trim();
      const body = applyValues(base, specs, values, new Set());
      if (!body.error_handling) body.error_handling = {};
      body.rules = ruleIds.map((ruleId, index) => ({ rule_id: ruleId, sequence_order: index }));
      save.mutate(body, { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  const free = rules.filter((rule) => !ruleIds.includes(rule.id));
  return (
    <EditorFrame title={row ? `Edit route ${row.name}` : "New route"} onSubmit={submit} onCancel={() => onDone(null)} saving={save.isPending} error={rest}>
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <IdField row={row} value={id} onChange={(value) => {
          touch("id");
          setId(value);
        }} error={byField.id} />
        <FormField label="Connector" required error={byField.connector_id} help="The route sees every record of this connector's jobs (sync)">
          <SelectInput label="Connector" value={connectorId} onChange={(value) => {
              touch("connector_id");
              setConnectorId(value);
            }} options={connectors.map(rowOption)} placeholder="— choose a connector" />
        </FormField>
      </Grid>
      <SpecFields specs={NAME_ENABLED} values={values} onChange={set} errors={byField} stored={new Set()} />
      <FieldGroup label="Rules, in order" error={byField.rules} help="Rules are tried by priority, then by this order">
        <Stack gap={1} w="full" data-testid="route-rules">
          {ruleIds.length === 0 && <Text color="fg.muted" fontSize="sm">No rule yet: the route matches nothing.</Text>}
          {ruleIds.map((ruleId, index) => (
            <HStack key={ruleId} gap={2} borderWidth="1px" borderColor="border.muted" borderRadius="sm" px={2} py={1}>
              <Text fontSize="sm" flex="1">
                {index + 1}. {names.get(ruleId)?.name ?? ruleId}{" "}
                <Text as="span" color="fg.muted" fontFamily="mono" fontSize="xs">
                  {names.get(ruleId)?.condition ?? ""}
                </Text>
              </Text>
              <Button size="xs" variant="ghost" disabled={index === 0} onClick={() => move(index, -1)} aria-label="move up">
                ↑
              </Button>
              <Button size="xs" variant="ghost" disabled={index === ruleIds.length - 1} onClick={() => move(index, 1)} aria-label="move down">
                ↓
              </Button>
              <Button size="xs" variant="ghost" colorPalette="red" onClick={() => setRuleIds((current) => current.filter((r) => r !== ruleId))}>
                Remove
              </Button>
            </HStack>
          ))}
          <HStack gap={2} mt={1}>
            <Box flex="1" maxW="md">
              <SelectInput label="Rule to add" value={adding} onChange={setAdding} options={free.map(rowOption)} placeholder="— a rule to add" />
            </Box>
            <Button
              size="xs"
              variant="outline"
              disabled={!adding}
              onClick={() => {
                touch("rules");
                setRuleIds((current) => [...current, adding]);
                setAdding("");
              }}
            >
              Add rule
            </Button>
          </HStack>
        </Stack>
      </FieldGroup>
      <SectionTitle title="Error handling" error={byField.error_handling} />
      <SpecFields specs={handlingSpecs} values={values} onChange={set} errors={byField} stored={new Set()} />
    </EditorFrame>
  );
}

/** Routes: a connector's records through rules. */
export function RoutesPage() {
  const rules = useOptions<Rule>("/rules");
  const names = new Map(rules.map((rule) => [rule.id, rule.name]));
  return (
    <ResourcePage<Route>
      resource="routes"
      path={PATH}
      kind="route"
      title="Routes"
      intro="A route sends every record of its connector through its rules. A sync job runs every enabled route of its connector; a pipeline job one route."
      Editor={RouteEditor}
      columns={[
        { title: "Route", render: (row) => <NameCell name={row.name} id={row.id} /> },
        { title: "Connector", render: (row) => <Text fontFamily="mono" fontSize="sm">{row.connector_id}</Text> },
        {
          title: "Rules",
          render: (row) => (
            <Flex gap={1} wrap="wrap">
              {row.rules.length === 0 && <Text color="fg.muted">—</Text>}
              {row.rules.map((link) => (
                <Badge key={link.rule_id} variant="outline">
                  {names.get(link.rule_id) ?? link.rule_id}
                </Badge>
              ))}
            </Flex>
          ),
        },
        { title: "On failure", render: (row) => String(row.error_handling.mode ?? row.error_handling.on_error ?? "continue") },
        { title: "Enabled", render: (row) => <YesNo value={row.enabled} /> },
      ]}
    />
  );
}
