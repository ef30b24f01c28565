import { Badge, Box, Button, Code, Flex, HStack, Input, Stack, Table, Text, Textarea } from "@chakra-ui/react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useMe } from "../api/useMe";
import type { ImportPlan } from "../api/tools";
import { download, exportConfig, ImportError, importConfig } from "../api/tools";
import { Card, ErrorNote } from "../components/common";

/** The API resource whose create/update permission governs each configuration table (api/v1/configuration.py). */
const RESOURCE_OF_TABLE: Record<string, string> = {
  connectors: "connectors",
  destinations: "destinations",
  routing_rules: "rules",
  rule_transformations: "rules",
  rule_destinations: "rules",
  routes: "routes",
  route_rules: "routes",
  scheduler_jobs: "jobs",
  webhook_triggers: "webhooks",
  settings: "settings",
};

const EXAMPLE = `version: 1
connectors:
  - id: orders-api
    name: Orders API
    connector_type: api
    connection_settings:
      base_url: https://example.com/api/orders
`;

function totals(plan: ImportPlan): { created: number; changed: number; unchanged: number } {
  const tables = Object.values(plan.tables);
  return {
    created: tables.reduce((n, t) => n + t.created.length, 0),
    changed: tables.reduce((n, t) => n + t.changed.length, 0),
    unchanged: tables.reduce((n, t) => n + t.unchanged, 0),
  };
}

/** The permissions an apply of `plan` needs that the user lacks ("create on settings"...). */
function missingPermissions(plan: ImportPlan, can: (resource: string, action: string) => boolean): string[] {
  const missing = new Set<string>();
  for (const [table, diff] of Object.entries(plan.tables)) {
    const resource = RESOURCE_OF_TABLE[table] ?? table;
    if (diff.created.length > 0 && !can(resource, "create")) missing.add(`${resource}:create`);
    if (diff.changed.length > 0 && !can(resource, "update")) missing.add(`${resource}:update`);
  }
  return [...missing];
}

function PlanView({ plan }: { plan: ImportPlan }) {
  const sum = totals(plan);
  const tables = Object.entries(plan.tables);
  return (
    <Stack gap={2} data-testid="import-diff">
      <Text fontSize="sm" data-testid="import-summary">
        {plan.applied
          ? `Applied: ${sum.created} created, ${sum.changed} changed, ${sum.unchanged} unchanged`
          : `Dry run, nothing written: ${sum.created} to create, ${sum.changed} to change, ${sum.unchanged} unchanged (an import never deletes)`}
      </Text>
      {tables.length === 0 && <Text color="fg.muted">The file names no table.</Text>}
      {tables.length > 0 && (
        <Table.Root size="sm">
          <Table.Header>
            <Table.Row>
              <Table.ColumnHeader>Table</Table.ColumnHeader>
              <Table.ColumnHeader>Created</Table.ColumnHeader>
              <Table.ColumnHeader>Changed (fields)</Table.ColumnHeader>
              <Table.ColumnHeader>Unchanged</Table.ColumnHeader>
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {tables.map(([table, diff]) => (
              <Table.Row key={table} data-testid="import-table" data-table={table} verticalAlign="top">
                <Table.Cell fontFamily="mono">{table}</Table.Cell>
                <Table.Cell>
                  <Stack gap={0}>
                    {diff.created.map((id) => (
                      <Text key={id} fontFamily="mono" fontSize="xs" color="fg.success" data-testid="import-created">
                        + {id}
                      </Text>
                    ))}
                  </Stack>
                </Table.Cell>
                <Table.Cell>
                  <Stack gap={0}>
                    {diff.changed.map((id) => (
                      <Text key={id} fontFamily="mono" fontSize="xs" color="fg.warning" data-testid="import-changed">
                        ~ {id} <Text as="span" color="fg.muted">({(diff.changed_fields[id] ?? []).join(", ")})</Text>
                      </Text>
                    ))}
                  </Stack>
                </Table.Cell>
                <Table.Cell>{diff.unchanged}</Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Stack>
  );
}

function Problems({ error }: { error: unknown }) {
  if (!(error instanceof ImportError) || error.problems.length === 0) return <ErrorNote error={error} />;
  return (
    <Box borderWidth="1px" borderColor="border.error" borderRadius="md" p={3} role="alert" data-testid="import-errors">
      <Text color="fg.error" mb={2}>
        Nothing was written: {error.problems.length} problem(s) in the file.
      </Text>
      <Table.Root size="sm">
        <Table.Header>
          <Table.Row>
            <Table.ColumnHeader>Line</Table.ColumnHeader>
            <Table.ColumnHeader>Table</Table.ColumnHeader>
            <Table.ColumnHeader>Row</Table.ColumnHeader>
            <Table.ColumnHeader>Field</Table.ColumnHeader>
            <Table.ColumnHeader>Expected</Table.ColumnHeader>
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {error.problems.map((problem, i) => (
            <Table.Row key={i}>
              <Table.Cell>{problem.line ?? "—"}</Table.Cell>
              <Table.Cell fontFamily="mono">{problem.table}</Table.Cell>
              <Table.Cell fontFamily="mono">{problem.row_id ?? "—"}</Table.Cell>
              <Table.Cell fontFamily="mono">{problem.field}</Table.Cell>
              <Table.Cell color="fg.error">{problem.expected}</Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
    </Box>
  );
}

/** Export the configuration as YAML; import YAML with a dry-run diff first, then apply it. */
export function ImportExportPage() {
  const { can } = useMe();
  const queryClient = useQueryClient();
  const [text, setText] = useState("");
  const [fileName, setFileName] = useState<string | null>(null);
  const [planned, setPlanned] = useState<{ text: string; plan: ImportPlan } | null>(null);
  const writer = Object.values(RESOURCE_OF_TABLE).some((resource) => can(resource, "create") || can(resource, "update"));

  const exported = useMutation({
    mutationFn: exportConfig,
    onSuccess: (yaml) => download("muxly-config.yaml", yaml, "application/yaml"),
  });
  const toEditor = useMutation({
    mutationFn: exportConfig,
    onSuccess: (yaml) => {
      setText(yaml);
      setFileName(null);
      setPlanned(null);
    },
  });
  const dryRun = useMutation({
    mutationFn: (yaml: string) => importConfig(yaml, true),
    onMutate: () => setPlanned(null),
    onSuccess: (plan, yaml) => setPlanned({ text: yaml, plan }),
  });
  const apply = useMutation({
    mutationFn: (yaml: string) => importConfig(yaml, false),
    onSuccess: (plan, yaml) => {
      setPlanned({ text: yaml, plan });
      void queryClient.invalidateQueries();
    },
  });

  const load = async (file: File | undefined) => {
    if (!file) return;
    const content = await file.text();
    setText(content);
    setFileName(file.name);
    apply.reset();
    dryRun.mutate(content);
  };

  const current = planned !== null && planned.text === text ? planned.plan : null;
  const sum = current ? totals(current) : null;
  const missing = current ? missingPermissions(current, can) : [];
  const applyable = current !== null && !current.applied && sum !== null && sum.created + sum.changed > 0 && missing.length === 0;

  return (
    <Stack gap={4}>
      <Card title="Export">
        <Stack gap={2}>
          <Text fontSize="sm" color="fg.muted">
            Every connector, destination, rule, route, job, webhook trigger and setting as YAML (<Code>GET /config/export</Code>, as{" "}
            <Code>airflow muxly config export</Code> writes it). Secrets are always written as <Code>"***"</Code>; importing the file back keeps
            the stored secrets.
          </Text>
          <HStack>
            <Button size="sm" colorPalette="blue" loading={exported.isPending} onClick={() => exported.mutate()}>
              Download export
            </Button>
            <Button size="sm" variant="outline" loading={toEditor.isPending} onClick={() => toEditor.mutate()}>
              Open the export below
            </Button>
          </HStack>
          {exported.error && <ErrorNote error={exported.error} />}
          {toEditor.error && <ErrorNote error={toEditor.error} />}
        </Stack>
      </Card>
      <Card title="Import">
        <Stack gap={3}>
          <Text fontSize="sm" color="fg.muted">
            Upload or paste YAML in the export's format. A dry run validates every row and its references and shows what would be created or
            changed; nothing is written until you apply it, then all rows are written in one transaction. Rows the file does not name are kept.
          </Text>
          <Flex gap={2} align="center" wrap="wrap">
            <Input
              type="file"
              accept=".yaml,.yml,application/yaml,text/yaml,text/plain"
              size="sm"
              maxW="sm"
              p={1}
              aria-label="YAML file"
              onChange={(e) => void load(e.target.files?.[0])}
            />
            {fileName && (
              <Badge variant="subtle" data-testid="import-file">
                {fileName}
              </Badge>
            )}
          </Flex>
          <Textarea
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              setFileName(null);
            }}
            placeholder={EXAMPLE}
            fontFamily="mono"
            fontSize="sm"
            rows={10}
            aria-label="YAML"
            spellCheck={false}
          />
          <HStack>
            <Button size="sm" variant="outline" disabled={!text.trim()} loading={dryRun.isPending} onClick={() => { apply.reset(); dryRun.mutate(text); }}>
              Dry run
            </Button>
            {writer && (
              <Button
                size="sm"
                colorPalette="blue"
                disabled={!applyable}
                loading={apply.isPending}
                onClick={() => apply.mutate(text)}
                title={current ? undefined : "Run a dry run of this text first"}
              >
                Apply
              </Button>
            )}
            {current && !current.applied && sum && sum.created + sum.changed === 0 && (
              <Text fontSize="sm" color="fg.muted">
                Nothing to apply: every row is unchanged.
              </Text>
            )}
          </HStack>
          {writer && missing.length > 0 && (
            <Text fontSize="sm" color="fg.error">
              Applying this file needs {missing.join(", ")}, which your role does not have.
            </Text>
          )}
          {dryRun.error && <Problems error={dryRun.error} />}
          {apply.error && <Problems error={apply.error} />}
          {planned && planned.text !== text && (
            <Text fontSize="sm" color="fg.muted">
              The text changed since the last dry run: run it again to apply.
            </Text>
          )}
          {current && <PlanView plan={current} />}
          {apply.isSuccess && current?.applied && (
            <Text color="fg.success" fontSize="sm" data-testid="import-applied">
              Applied in one transaction.
            </Text>
          )}
        </Stack>
      </Card>
    </Stack>
  );
}
