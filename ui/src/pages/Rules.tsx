import { Badge, Box, Button, Flex, Grid, HStack, Stack, Text, Textarea } from "@chakra-ui/react";
import { useRef, useState } from "react";
import type { Destination, JsonObject, Rule, Transformation } from "../api/resources";
import {
  FieldGroup,
  IdChecks,
  FormField,
  SelectInput,
  SpecFields,
  applyValues,
  jsonText,
  leftover,
  parseObject,
  useFormErrors,
  valuesFrom,
  type Errors,
  type FieldSpec,
  type Values,
} from "../components/form";
import { EditorFrame, IdField, NameCell, ResourcePage, YesNo, useOptions, useSaveRow, type EditorProps } from "../components/resourcePage";

const PATH = "/rules";

const k = (name: string) => `config.${name}`;

const OPERATORS = [">", "<", ">=", "<=", "=", "==", "!=", "contains", "not_contains", "starts_with", "ends_with"];

/** The fields of each transformation type's `config` (docs/routing.md, Transformations); the rest is JSON. */
const STEP_FIELDS: Record<string, FieldSpec[]> = {
  rename_field: [
    { path: k("from"), label: "From field", required: true, mono: true, placeholder: "purchase_amount" },
    { path: k("to"), label: "To field", required: true, mono: true, placeholder: "revenue" },
  ],
  set_field: [
    { path: k("field"), label: "Field", required: true, mono: true, placeholder: "source" },
    { path: k("value"), label: "Value", kind: "value", mono: true, placeholder: "shop", help: 'Text, or JSON: 42, true, null, "42", {"a": 1}' },
  ],
  remove_field: [{ path: k("field"), label: "Field", required: true, mono: true, placeholder: "internal_notes" }],
  filter: [
    { path: k("field"), label: "Field", required: true, mono: true },
    { path: k("operator"), label: "Operator", kind: "select", options: OPERATORS, initial: "=", required: true },
    { path: k("value"), label: "Value", kind: "value", mono: true, help: 'Text, or JSON: 42, true, "42"' },
  ],
  formula: [
    { path: k("output_field"), label: "Output field", required: true, mono: true, placeholder: "total" },
    { path: k("formula"), label: "Formula", required: true, mono: true, placeholder: "round(price * qty, 2)" },
  ],
  format_string: [
    { path: k("output_field"), label: "Output field", required: true, mono: true, placeholder: "label" },
    { path: k("template"), label: "Template", required: true, mono: true, placeholder: "{{customer_name}} ({{country}})" },
  ],
  extract: [{ path: k("fields"), label: "Fields to keep", kind: "list", required: true, mono: true, placeholder: "order_id, country, revenue" }],
  array_flatten: [
    { path: k("array_field"), label: "Array field", required: true, mono: true, placeholder: "items" },
    { path: k("flatten_fields"), label: "Fields of each element", kind: "list", mono: true, help: "Empty: all its keys" },
    { path: k("preserve_parent"), label: "Keep the parent's fields", kind: "bool", initial: true },
  ],
  join: [
    { path: k("left_key"), label: "Record key", required: true, mono: true },
    { path: k("right_key"), label: "Lookup key", required: true, mono: true },
    { path: k("join_type"), label: "Join", kind: "select", options: ["left", "inner", "right"], initial: "left", required: true },
    { path: k("join_connector_id"), label: "Lookup connector id", help: "Or inline rows: lookup in the JSON editor" },
  ],
  aggregate: [
    { path: k("group_by"), label: "Group by", kind: "list", mono: true },
    { path: k("aggregations"), label: "Aggregations (JSON)", kind: "json", required: true, placeholder: '[{"function": "sum", "field": "revenue", "as": "total"}]' },
  ],
};

export const TRANSFORMATION_TYPES = Object.keys(STEP_FIELDS);

function stepFields(type: string): FieldSpec[] {
  return STEP_FIELDS[type] ?? [];
}

/** A step being edited: its stored id (kept on save), type, field values and other config as JSON. */
type Step = { key: number; id: string | null; type: string; values: Values; other: string };

function stepOf(step: Transformation | null, key: number, type = "rename_field"): Step {
  const kind = step?.transformation_type ?? type;
  return {
    key,
    id: step?.id ?? null,
    type: kind,
    values: valuesFrom(step, stepFields(kind)),
    other: jsonText(leftover(step?.config, "config", stepFields(kind))),
  };
}

/** The errors under `prefix` ("transformations[0]."), with the prefix taken off. */
function under(errors: Errors, prefix: string): Errors {
  const out: Errors = {};
  for (const [field, message] of Object.entries(errors)) {
    if (field.startsWith(prefix)) out[field.slice(prefix.length)] = message;
    else if (`${field}.` === prefix) out[""] = message;
  }
  return out;
}

function StepEditor({
  step,
  index,
  count,
  errors,
  onChange,
  onTouch,
  onMove,
  onRemove,
}: {
  step: Step;
  index: number;
  count: number;
  errors: Errors;
  onChange: (step: Step) => void;
  onTouch: (path: string) => void;
  onMove: (by: number) => void;
  onRemove: () => void;
}) {
  const fields = stepFields(step.type);
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} data-testid="transformation">
      <Flex gap={2} align="flex-end" mb={2} wrap="wrap">
        <Box flex="1" minW="48">
          <FormField label={`Step ${index + 1}`} error={errors.transformation_type ?? errors[""]}>
            <SelectInput
              label={`Step ${index + 1} type`}
              value={step.type}
              options={TRANSFORMATION_TYPES.includes(step.type) ? TRANSFORMATION_TYPES : [...TRANSFORMATION_TYPES, step.type]}
              onChange={(type) => {
                onTouch("transformation_type");
                onChange({ ...stepOf(null, step.key, type), id: step.id });
              }}
            />
          </FormField>
        </Box>
        <HStack gap={1}>
          <Button size="xs" variant="ghost" disabled={index === 0} onClick={() => onMove(-1)} aria-label="move up">
            ↑
          </Button>
          <Button size="xs" variant="ghost" disabled={index === count - 1} onClick={() => onMove(1)} aria-label="move down">
            ↓
          </Button>
          <Button size="xs" variant="ghost" colorPalette="red" onClick={onRemove}>
            Remove step
          </Button>
        </HStack>
      </Flex>
      <SpecFields
        specs={fields}
        values={step.values}
        onChange={(path, value) => {
          onTouch(path);
          onChange({ ...step, values: { ...step.values, [path]: value } });
        }}
        errors={errors}
        stored={new Set()}
      />
      {(fields.length === 0 || step.other || errors.config || step.type === "join") && (
        <Box mt={2}>
          <FormField label="Other options (JSON)" error={errors.config}>
            <Textarea
              size="sm"
              fontFamily="mono"
              rows={2}
              value={step.other}
              onChange={(event) => {
                onTouch("config");
                onChange({ ...step, other: event.target.value });
              }}
              spellCheck={false}
            />
          </FormField>
        </Box>
      )}
    </Box>
  );
}

const MAIN: FieldSpec[] = [
  { path: "name", label: "Name", required: true },
  { path: "priority", label: "Priority", kind: "number", placeholder: "100", help: "Lower runs first" },
  {
    path: "condition",
    label: "Condition",
    kind: "textarea",
    mono: true,
    placeholder: "country == 'US' AND purchase_amount > 100",
    help: "Empty: every record matches (docs/conditions.md). Try it on records in the Tester.",
  },
  { path: "enabled", label: "Enabled", kind: "bool", initial: true },
];

function RuleEditor({ row, onDone }: EditorProps<Rule>) {
  const destinations = useOptions<Destination>("/destinations");
  const nextKey = useRef(row?.transformations.length ?? 0);
  const [id, setId] = useState("");
  const [values, setValues] = useState<Values>(() => valuesFrom(row, MAIN));
  const [steps, setSteps] = useState<Step[]>(() => (row?.transformations ?? []).map((step, index) => stepOf(step, index)));
  const [targets, setTargets] = useState<string[]>(row?.destination_ids ?? []);
  const [localError, setLocalError] = useState<unknown>(null);
  const save = useSaveRow<Rule>(PATH, row?.id ?? null);

  const fields = ["id", "destination_ids", "transformations", ...MAIN.map((spec) => spec.path)];
  steps.forEach((step, index) => {
    const prefix = `transformations[${index}]`;
    fields.push(prefix, `${prefix}.transformation_type`, `${prefix}.config`, ...stepFields(step.type).map((spec) => `${prefix}.${spec.path}`));
  });
  const { byField, rest, touch, reset } = useFormErrors(localError ?? save.error, fields);

  const changeStep = (index: number, step: Step) => setSteps((current) => current.map((s, i) => (i === index ? step : s)));
  const move = (index: number, by: number) =>
    setSteps((current) => {
      const next = [...current];
      const [moved] = next.splice(index, 1);
      if (moved) next.splice(index + by, 0, moved);
      return next;
    });
  const addStep = () => {
    nextKey.current += 1;
    setSteps((current) => [...current, stepOf(null, nextKey.current)]);
  };
  const toggleTarget = (destinationId: string, on: boolean) => {
    touch("destination_ids");
    setTargets((current) => (on ? [...current, destinationId] : current.filter((d) => d !== destinationId)));
  };

  const submit = () => {
    setLocalError(null);
    reset();
    try {
      const base: JsonObject = {};
      if (!row && id.trim()) base.id = id.trim();
      const body = applyValues(base, MAIN, values, new Set());
      // An empty condition is "always": sent as null so that an edit can clear a stored one.
      if (typeof body.condition !== "string") body.condition = null;
      body.transformations = steps.map((step, index) => {
        const config = parseObject(step.other, `transformations[${index}].config`);
        const transformation = applyValues({ config }, stepFields(step.type), step.values, new Set());
        return {
          ...(step.id ? { id: step.id } : {}),
          transformation_type: step.type,
          config: transformation.config ?? {},
          sequence_order: index,
        };
      });
      body.destination_ids = targets;
      save.mutate(body, { onSuccess: (saved) => onDone(saved) });
    } catch (error) {
      setLocalError(error);
    }
  };

  return (
    <EditorFrame title={row ? `Edit rule ${row.name}` : "New rule"} onSubmit={submit} onCancel={() => onDone(null)} saving={save.isPending} error={rest}>
      <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
        <IdField row={row} value={id} onChange={(value) => {
          touch("id");
          setId(value);
        }} error={byField.id} />
      </Grid>
      <SpecFields specs={MAIN} values={values} onChange={(path, value) => {
          touch(path);
          setValues((current) => ({ ...current, [path]: value }));
        }} errors={byField} stored={new Set()} />
      <FieldGroup label="Destinations" error={byField.destination_ids} help="A matching record's transformed copy goes to each of them">
        <IdChecks rows={destinations} selected={targets} onToggle={toggleTarget} empty="No destination yet: create one on the Destinations page." testId="rule-destinations" />
      </FieldGroup>
      <Stack gap={2}>
        <Text fontWeight="semibold" fontSize="sm">
          Transformations
        </Text>
        {byField.transformations && (
          <Text color="fg.error" fontSize="sm">
            {byField.transformations}
          </Text>
        )}
        {steps.length === 0 && <Text color="fg.muted" fontSize="sm">None: a matching record is sent as it is.</Text>}
        {steps.map((step, index) => (
          <StepEditor
            key={step.key}
            step={step}
            index={index}
            count={steps.length}
            errors={under(byField, `transformations[${index}].`)}
            onChange={(next) => changeStep(index, next)}
            onTouch={(path) => touch(`transformations[${index}].${path}`)}
            onMove={(by) => move(index, by)}
            onRemove={() => setSteps((current) => current.filter((_, i) => i !== index))}
          />
        ))}
        <Box>
          <Button size="xs" variant="outline" onClick={addStep}>
            Add transformation
          </Button>
        </Box>
      </Stack>
    </EditorFrame>
  );
}

function describeStep(step: Transformation): string {
  const config = step.config;
  switch (step.transformation_type) {
    case "rename_field":
      return `rename ${String(config.from)} → ${String(config.to)}`;
    case "set_field":
      return `set ${String(config.field)} = ${JSON.stringify(config.value)}`;
    case "remove_field":
      return `remove ${String(config.field)}`;
    case "filter":
      return `filter ${String(config.field)} ${String(config.operator)} ${JSON.stringify(config.value)}`;
    case "formula":
      return `${String(config.output_field)} = ${String(config.formula)}`;
    default:
      return step.transformation_type;
  }
}

/** Rules: a condition, transformations and destinations. */
export function RulesPage() {
  return (
    <ResourcePage<Rule>
      resource="rules"
      path={PATH}
      kind="rule"
      title="Rules"
      intro="Within a route, rules are tried by priority; every rule whose condition holds sends its transformed copy of the record to its destinations."
      Editor={RuleEditor}
      columns={[
        { title: "Rule", render: (row) => <NameCell name={row.name} id={row.id} /> },
        { title: "Priority", render: (row) => row.priority },
        {
          title: "Condition",
          render: (row) => (
            <Text fontFamily="mono" fontSize="xs" maxW="xs" truncate title={row.condition ?? ""} color={row.condition ? undefined : "fg.muted"}>
              {row.condition ?? "always"}
            </Text>
          ),
        },
        {
          title: "Transformations",
          render: (row) => (
            <Stack gap={0}>
              {row.transformations.length === 0 && <Text color="fg.muted">—</Text>}
              {row.transformations.map((step) => (
                <Text key={step.id} fontSize="xs" fontFamily="mono" truncate maxW="xs" title={JSON.stringify(step.config)}>
                  {describeStep(step)}
                </Text>
              ))}
            </Stack>
          ),
        },
        {
          title: "Destinations",
          render: (row) => (
            <Flex gap={1} wrap="wrap">
              {row.destination_ids.length === 0 && <Text color="fg.muted">—</Text>}
              {row.destination_ids.map((d) => (
                <Badge key={d} variant="outline">
                  {d}
                </Badge>
              ))}
            </Flex>
          ),
        },
        { title: "Enabled", render: (row) => <YesNo value={row.enabled} /> },
      ]}
    />
  );
}
