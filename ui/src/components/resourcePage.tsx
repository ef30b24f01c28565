// The list-create-edit-delete page every configuration resource shares (connectors, destinations, rules, routes,
// webhook triggers), and the editor frame of their forms.
import { Box, Button, Flex, HStack, Heading, Input, Stack, Table, Text, chakra } from "@chakra-ui/react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent, type ReactNode } from "react";
import { api } from "../api/client";
import type { TestResult } from "../api/resources";
import type { Page } from "../api/types";
import { useMe } from "../api/useMe";
import { ErrorNote, Loading } from "./common";
import { FormField } from "./form";

const PAGE_SIZE = 100;

export type Column<T> = { title: string; render: (row: T) => ReactNode };

/** The props a page's form gets: the row to edit (null: a new one) and what to call when done. */
export type EditorProps<T> = { row: T | null; onDone: (saved: T | null) => void };

/** `GET <path>?limit=1000`: the rows a form offers in its selects (connectors, destinations, rules...). */
export function useOptions<T>(path: string) {
  const query = useQuery({
    queryKey: ["options", path],
    queryFn: () => api<Page<T>>(path, { query: { limit: 1000 } }),
  });
  return query.data?.items ?? [];
}

/** A create (`POST path`) or change (`PATCH path/id`) of a row; every list and page is fetched again after it. */
export function useSaveRow<T>(path: string, id: string | null) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: unknown) =>
      id === null
        ? api<T>(path, { method: "POST", body })
        : api<T>(`${path}/${encodeURIComponent(id)}`, { method: "PATCH", body }),
    onSuccess: () => queryClient.invalidateQueries(),
  });
}

/** The frame of a form: title, fields, the error that has no field, Save and Cancel. */
export function EditorFrame({
  title,
  onSubmit,
  onCancel,
  saving,
  error,
  children,
}: {
  title: string;
  onSubmit: () => void;
  onCancel: () => void;
  saving: boolean;
  error: string | null;
  children: ReactNode;
}) {
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSubmit();
  };
  return (
    <chakra.form
      onSubmit={submit}
      borderWidth="1px"
      borderColor="border.emphasized"
      borderRadius="md"
      p={4}
      mb={4}
      bg="bg.panel"
      data-testid="editor"
      noValidate
    >
      <Heading size="sm" mb={3}>
        {title}
      </Heading>
      <Stack gap={4}>{children}</Stack>
      {error && (
        <Text color="fg.error" mt={3} role="alert" data-testid="form-error">
          {error}
        </Text>
      )}
      <HStack mt={4}>
        <Button type="submit" size="sm" colorPalette="blue" loading={saving}>
          Save
        </Button>
        <Button size="sm" variant="ghost" onClick={onCancel}>
          Cancel
        </Button>
      </HStack>
    </chakra.form>
  );
}

/** The id of a new row (optional: the server makes one) or the id of the row being edited (read-only). */
export function IdField({ row, value, onChange, error }: { row: { id: string } | null; value: string; onChange: (value: string) => void; error?: string | undefined }) {
  if (row) {
    return (
      <FormField label="Id">
        <Text fontFamily="mono" fontSize="sm" py={1}>
          {row.id}
        </Text>
      </FormField>
    );
  }
  return (
    <FormField label="Id" error={error} help="Letters, digits and _ . : @ -; empty: generated">
      <Input size="sm" value={value} onChange={(event) => onChange(event.target.value)} fontFamily="mono" autoComplete="off" spellCheck={false} />
    </FormField>
  );
}

/** A row's Test connection, Edit and Delete (each when allowed), with the test's outcome below them. */
function RowActions({
  path,
  id,
  kind,
  canTest,
  canUpdate,
  canDelete,
  onEdit,
}: {
  path: string;
  id: string;
  kind: string;
  canTest: boolean;
  canUpdate: boolean;
  canDelete: boolean;
  onEdit: () => void;
}) {
  const test = useMutation({ mutationFn: () => api<TestResult>(`${path}/${encodeURIComponent(id)}/test`, { method: "POST" }) });
  return (
    <Stack gap={1}>
      <HStack gap={1} wrap="wrap">
        {canTest && (
          <Button size="xs" variant="outline" onClick={() => test.mutate()} loading={test.isPending}>
            Test connection
          </Button>
        )}
        {canUpdate && (
          <Button size="xs" variant="outline" onClick={onEdit}>
            Edit
          </Button>
        )}
        {canDelete && <DeleteButton path={path} id={id} kind={kind} />}
      </HStack>
      {test.data && (
        <Text fontSize="xs" color={test.data.ok ? "fg.success" : "fg.error"} data-testid="test-result" maxW="md">
          {test.data.ok ? "OK: " : "Failed: "}
          {test.data.message}
        </Text>
      )}
      {test.error && (
        <Text fontSize="xs" color="fg.error" data-testid="test-result" maxW="md">
          {test.error.message}
        </Text>
      )}
    </Stack>
  );
}

function DeleteButton({ path, id, kind }: { path: string; id: string; kind: string }) {
  const queryClient = useQueryClient();
  const [asking, setAsking] = useState(false);
  const remove = useMutation({
    mutationFn: () => api(`${path}/${encodeURIComponent(id)}`, { method: "DELETE" }),
    onSuccess: () => queryClient.invalidateQueries(),
  });
  if (!asking) {
    return (
      <Button size="xs" variant="outline" colorPalette="red" onClick={() => setAsking(true)}>
        Delete
      </Button>
    );
  }
  return (
    <Stack gap={1}>
      <HStack gap={1}>
        <Text fontSize="xs">Delete {kind} {id}?</Text>
        <Button size="xs" colorPalette="red" onClick={() => remove.mutate()} loading={remove.isPending}>
          Yes, delete
        </Button>
        <Button size="xs" variant="ghost" onClick={() => setAsking(false)}>
          No
        </Button>
      </HStack>
      {remove.error && (
        <Text fontSize="xs" color="fg.error">
          {remove.error.message}
        </Text>
      )}
    </Stack>
  );
}

type Editing<T> = { row: T | null } | null;

/**
 * A list of `path` with server-side paging, a "New" button, and Edit, Delete (and Test connection) on each row,
 * each shown only when the signed-in user's role allows it (`resource:create|update|delete|execute`).
 */
export function ResourcePage<T extends { id: string }>({
  resource,
  path,
  kind,
  title,
  intro,
  columns,
  Editor,
  testable = false,
}: {
  resource: string;
  path: string;
  kind: string;
  title: string;
  intro?: ReactNode;
  columns: Column<T>[];
  Editor: (props: EditorProps<T>) => ReactNode;
  testable?: boolean;
}) {
  const { can } = useMe();
  const [offset, setOffset] = useState(0);
  const [editing, setEditing] = useState<Editing<T>>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const query = useQuery({
    queryKey: ["rows", path, offset],
    queryFn: ({ signal }) => api<Page<T>>(path, { query: { limit: PAGE_SIZE, offset }, signal }),
    placeholderData: keepPreviousData,
  });
  const items = query.data?.items ?? [];
  const total = query.data?.total ?? 0;
  const canCreate = can(resource, "create");
  const canUpdate = can(resource, "update");
  const canDelete = can(resource, "delete");
  const canTest = testable && can(resource, "execute");
  const hasActions = canUpdate || canDelete || canTest;

  const open = (row: T | null) => {
    setSaved(null);
    setEditing({ row });
    window.scrollTo({ top: 0 });
  };
  const done = (row: T | null) => {
    setEditing(null);
    if (row) setSaved(`Saved ${kind} ${row.id}.`);
  };

  return (
    <Box>
      <Flex gap={2} mb={3} align="center" wrap="wrap">
        <Heading size="md">{title}</Heading>
        <Text color="fg.muted" fontSize="sm" data-testid="rows-range">
          {total === 0 ? `no ${kind}` : `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total.toLocaleString()}`}
        </Text>
        <HStack ml="auto" gap={2}>
          {total > PAGE_SIZE && (
            <>
              <Button size="sm" variant="outline" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
                Previous
              </Button>
              <Button size="sm" variant="outline" disabled={offset + PAGE_SIZE >= total} onClick={() => setOffset(offset + PAGE_SIZE)}>
                Next
              </Button>
            </>
          )}
          {canCreate && (
            <Button size="sm" colorPalette="blue" onClick={() => open(null)} disabled={editing !== null && editing.row === null}>
              New {kind}
            </Button>
          )}
        </HStack>
      </Flex>
      {intro && (
        <Text color="fg.muted" fontSize="sm" mb={3}>
          {intro}
        </Text>
      )}
      {editing && <Editor key={editing.row?.id ?? "(new)"} row={editing.row} onDone={done} />}
      {saved && (
        <Text color="fg.success" mb={3} data-testid="saved">
          {saved}
        </Text>
      )}
      {query.isLoading && <Loading />}
      {query.error && <ErrorNote error={query.error} />}
      {query.data && items.length === 0 && (
        <Text color="fg.muted" data-testid="empty">
          No {kind} yet.{canCreate ? ` "New ${kind}" creates one.` : ""}
        </Text>
      )}
      {items.length > 0 && (
        <Box borderWidth="1px" borderColor="border" borderRadius="md" overflowX="auto">
          <Table.Root size="sm" data-testid={`${resource}-table`}>
            <Table.Header>
              <Table.Row bg="bg.muted">
                {columns.map((column) => (
                  <Table.ColumnHeader key={column.title}>{column.title}</Table.ColumnHeader>
                ))}
                {hasActions && <Table.ColumnHeader />}
              </Table.Row>
            </Table.Header>
            <Table.Body>
              {items.map((row) => (
                <Table.Row key={row.id} data-testid="resource-row" data-id={row.id}>
                  {columns.map((column) => (
                    <Table.Cell key={column.title} verticalAlign="top">
                      {column.render(row)}
                    </Table.Cell>
                  ))}
                  {hasActions && (
                    <Table.Cell verticalAlign="top">
                      <RowActions
                        path={path}
                        id={row.id}
                        kind={kind}
                        canTest={canTest}
                        canUpdate={canUpdate}
                        canDelete={canDelete}
                        onEdit={() => open(row)}
                      />
                    </Table.Cell>
                  )}
                </Table.Row>
              ))}
            </Table.Body>
          </Table.Root>
        </Box>
      )}
    </Box>
  );
}

/** A row's name over its id. */
export function NameCell({ name, id }: { name: string; id: string }) {
  return (
    <Box>
      <Text fontWeight="medium">{name}</Text>
      <Text fontSize="xs" color="fg.muted" fontFamily="mono">
        {id}
      </Text>
    </Box>
  );
}

/** A long value (a URL, a path, a condition) in one truncated monospace line, whole in its tooltip. */
export function MonoCell({ text }: { text: string }) {
  return (
    <Text fontFamily="mono" fontSize="xs" maxW="sm" truncate title={text}>
      {text || "—"}
    </Text>
  );
}

export function YesNo({ value }: { value: boolean }) {
  return <Text color={value ? undefined : "fg.muted"}>{value ? "yes" : "no"}</Text>;
}
