// Forms of the resource pages: fields described by specs (a dotted path of the request body each), secrets that are
// write-only, a JSON editor for the options without a field, and the API's field errors placed on their fields.
import { Box, Checkbox, Field, Flex, Grid, Input, NativeSelect, Text, Textarea } from "@chakra-ui/react";
import { useState, type ReactNode } from "react";
import { ApiError, errorMessage, type FieldError } from "../api/client";
import { REDACTED, type JsonObject } from "../api/resources";

/** `value`: any JSON value typed as text (42, true, "a", [..]); plain text that is not JSON is a string. */
export type FieldKind = "text" | "number" | "select" | "bool" | "secret" | "list" | "textarea" | "json" | "value";

/** One form field: `path` is where its value goes in the request body ("connection_settings.base_url"). */
export type FieldSpec = {
  path: string;
  label: string;
  kind?: FieldKind;
  options?: readonly (string | { value: string; label: string })[];
  placeholder?: string;
  help?: string;
  required?: boolean;
  /** The value shown when the row has none (bool and select fields). */
  initial?: string | boolean;
  /** Mono font (conditions, cron expressions, paths). */
  mono?: boolean;
  /** Spans the form's two columns. */
  wide?: boolean;
};

export type Values = Record<string, string | boolean>;

/** The name and enabled fields of connectors, destinations and routes. */
export const NAME_ENABLED: readonly FieldSpec[] = [
  { path: "name", label: "Name", required: true },
  { path: "enabled", label: "Enabled", kind: "bool", initial: true },
];
export type Errors = Record<string, string>;

// ---- JSON paths ("a.b.c") ----

export function getPath(object: unknown, path: string): unknown {
  let current: unknown = object;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as JsonObject)[key];
  }
  return current;
}

export function setPath(object: JsonObject, path: string, value: unknown): void {
  const keys = path.split(".");
  let current = object;
  for (const key of keys.slice(0, -1)) {
    const next = current[key];
    if (next === null || typeof next !== "object" || Array.isArray(next)) current[key] = {};
    current = current[key] as JsonObject;
  }
  current[keys[keys.length - 1] ?? path] = value;
}

/** Removes `path` and the objects it leaves empty. */
export function deletePath(object: JsonObject, path: string): void {
  const keys = path.split(".");
  const parents: JsonObject[] = [object];
  for (const key of keys.slice(0, -1)) {
    const next = parents[parents.length - 1]?.[key];
    if (next === null || typeof next !== "object" || Array.isArray(next)) return;
    parents.push(next as JsonObject);
  }
  delete parents[parents.length - 1]?.[keys[keys.length - 1] ?? path];
  for (let i = parents.length - 1; i > 0; i -= 1) {
    const parent = parents[i - 1];
    const key = keys[i - 1];
    if (parent && key !== undefined && Object.keys(parents[i] ?? {}).length === 0) delete parent[key];
  }
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

// ---- values <-> request body ----

/** The form values of `row` for `specs` (secrets always empty: a stored secret is never shown). */
export function valuesFrom(row: unknown, specs: readonly FieldSpec[]): Values {
  const values: Values = {};
  for (const spec of specs) {
    const value = getPath(row, spec.path);
    const kind = spec.kind ?? "text";
    if (kind === "bool") values[spec.path] = typeof value === "boolean" ? value : spec.initial === true;
    else if (kind === "secret") values[spec.path] = "";
    else if (kind === "list") values[spec.path] = Array.isArray(value) ? value.map(String).join(", ") : "";
    else if (kind === "json") values[spec.path] = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
    else if (kind === "value") values[spec.path] = valueText(value);
    else if (value === undefined || value === null) values[spec.path] = typeof spec.initial === "string" ? spec.initial : "";
    else values[spec.path] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return values;
}

/** The paths of `row` whose stored secret the API shows as "***" (or masks, as a URL with "***" in it). */
export function storedSecrets(row: unknown, specs: readonly FieldSpec[]): Set<string> {
  const stored = new Set<string>();
  for (const spec of specs) {
    const value = getPath(row, spec.path);
    if (spec.kind === "secret" && typeof value === "string" && value.includes(REDACTED)) stored.add(spec.path);
  }
  return stored;
}

/** A field whose text cannot be sent (JSON that does not parse): shown on the field, nothing is sent. */
export class FormError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** `text` as a JSON object; "" is {}. */
export function parseObject(text: string, field: string): JsonObject {
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FormError(field, `not JSON: ${errorMessage(error)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new FormError(field, "a JSON object {...}");
  return parsed as JsonObject;
}

/** A typed value: a number when it reads as one, JSON when it parses (true, null, [..], {..}), else the text. */
export function looseValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return "";
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return text;
  }
}

/** A JSON value as `value` fields show it: a string as itself unless it would read back as another type. */
export function valueText(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return looseValue(value) === value ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/**
 * `body` with the values of `specs` written in: empty fields are left out, an empty secret that is stored is sent
 * as "***" (the API keeps the stored value), numbers and lists are typed.
 */
export function applyValues(body: JsonObject, specs: readonly FieldSpec[], values: Values, stored: ReadonlySet<string>): JsonObject {
  const out = clone(body);
  for (const spec of specs) {
    const value = values[spec.path];
    const kind = spec.kind ?? "text";
    if (kind === "bool") {
      setPath(out, spec.path, value === true);
      continue;
    }
    const text = typeof value === "string" ? value : "";
    if (kind === "secret") {
      if (text) setPath(out, spec.path, text);
      else if (stored.has(spec.path)) setPath(out, spec.path, REDACTED);
      else deletePath(out, spec.path);
    } else if (text.trim() === "") {
      deletePath(out, spec.path);
    } else if (kind === "number") {
      const number = Number(text);
      setPath(out, spec.path, Number.isFinite(number) ? number : text);
    } else if (kind === "value") {
      setPath(out, spec.path, looseValue(text));
    } else if (kind === "list") {
      setPath(out, spec.path, text.split(/[,\n]/).map((item) => item.trim()).filter(Boolean));
    } else if (kind === "json") {
      try {
        setPath(out, spec.path, JSON.parse(text) as unknown);
      } catch (error) {
        throw new FormError(spec.path, `not JSON: ${errorMessage(error)}`);
      }
    } else {
      setPath(out, spec.path, text);
    }
  }
  return out;
}

/** `object` (a JSON column) without the keys the fields of `specs` below `column` cover: the "other options". */
export function leftover(object: unknown, column: string, specs: readonly FieldSpec[]): JsonObject {
  const rest = clone((object ?? {}) as JsonObject);
  for (const spec of specs) {
    if (spec.path.startsWith(`${column}.`)) deletePath(rest, spec.path.slice(column.length + 1));
  }
  return rest;
}

export function jsonText(object: JsonObject): string {
  return Object.keys(object).length === 0 ? "" : JSON.stringify(object, null, 2);
}

// ---- errors on fields ----

/**
 * Places a failed write's field errors on the form's fields: the field itself, else the closest field above it
 * ("connection_settings.pagination.type" lands on the "connection_settings" JSON editor); `exact` sends an error
 * of exactly that field elsewhere (a whole column's error, {"config": "config:self"}, goes under its heading).
 * What has no field stays in `rest`, shown above the buttons.
 */
export function placeErrors(
  error: unknown,
  fields: readonly string[],
  exact: Readonly<Record<string, string>> = {},
): { byField: Errors; rest: string | null } {
  const byField: Errors = {};
  if (error instanceof FormError) {
    byField[error.field] = error.message;
    return { byField, rest: null };
  }
  const found: FieldError[] = error instanceof ApiError ? error.fieldErrors : [];
  const unplaced: string[] = [];
  for (const item of found) {
    const target = exact[item.field] ?? closestField(item.field, fields);
    if (target === null) unplaced.push(`${item.field}: ${item.message}`);
    else if (!(target in byField)) byField[target] = target === item.field ? item.message : `${item.field}: ${item.message}`;
  }
  if (found.length === 0) return { byField, rest: error ? errorMessage(error) : null };
  return { byField, rest: unplaced.length ? unplaced.join("; ") : null };
}

/**
 * The errors of the last failed save, placed on the fields (see `placeErrors`); an error disappears from its field
 * once the field is changed (`touch(path)`), and they all come back at the next save (`reset()`).
 */
export function useFormErrors(error: unknown, fields: readonly string[], exact: Readonly<Record<string, string>> = {}) {
  const [touched, setTouched] = useState<ReadonlySet<string>>(() => new Set());
  const placed = placeErrors(error, fields, exact);
  const byField: Errors = {};
  for (const [field, message] of Object.entries(placed.byField)) if (!touched.has(field)) byField[field] = message;
  return {
    byField,
    rest: placed.rest,
    touch: (path: string) => setTouched((current) => (current.has(path) ? current : new Set(current).add(path))),
    reset: () => setTouched(new Set()),
  };
}

function closestField(field: string, fields: readonly string[]): string | null {
  let best: string | null = null;
  for (const candidate of fields) {
    const above = field === candidate || field.startsWith(`${candidate}.`) || field.startsWith(`${candidate}[`);
    if (above && (best === null || candidate.length > best.length)) best = candidate;
  }
  return best;
}

// ---- widgets ----

export function FormField({
  label,
  error,
  help,
  required,
  wide,
  children,
}: {
  label: string;
  error?: string | undefined;
  help?: string | undefined;
  required?: boolean | undefined;
  wide?: boolean | undefined;
  children: ReactNode;
}) {
  return (
    <Field.Root invalid={Boolean(error)} required={required} gridColumn={wide ? "1 / -1" : undefined}>
      <Field.Label>
        {label}
        {required && <Field.RequiredIndicator />}
      </Field.Label>
      {children}
      {help && !error && <Field.HelperText>{help}</Field.HelperText>}
      {error && <Field.ErrorText data-testid="field-error">{error}</Field.ErrorText>}
    </Field.Root>
  );
}

/**
 * A labelled group of inputs (checkboxes) with its error. Not a Chakra Field: a Field gives every control inside
 * it the same id, so the label of each checkbox would toggle the first one.
 */
export function FieldGroup({
  label,
  error,
  help,
  children,
  testId,
}: {
  label: string;
  error?: string | undefined;
  help?: string | undefined;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <Box role="group" aria-label={label} data-testid={testId}>
      <Text fontSize="sm" fontWeight="medium" mb={1.5}>
        {label}
      </Text>
      {children}
      {help && !error && (
        <Text fontSize="xs" color="fg.muted" mt={1.5}>
          {help}
        </Text>
      )}
      {error && (
        <Text fontSize="xs" color="fg.error" mt={1.5} data-testid="field-error">
          {error}
        </Text>
      )}
    </Box>
  );
}

export function SelectInput({
  value,
  options,
  onChange,
  label,
  placeholder,
}: {
  value: string;
  options: readonly (string | { value: string; label: string })[];
  onChange: (value: string) => void;
  label?: string;
  placeholder?: string | undefined;
}) {
  return (
    <NativeSelect.Root size="sm">
      <NativeSelect.Field value={value} onChange={(event) => onChange(event.target.value)} aria-label={label}>
        {placeholder !== undefined && <option value="">{placeholder}</option>}
        {options.map((option) => {
          const item = typeof option === "string" ? { value: option, label: option } : option;
          return (
            <option key={item.value} value={item.value}>
              {item.label}
            </option>
          );
        })}
      </NativeSelect.Field>
      <NativeSelect.Indicator />
    </NativeSelect.Root>
  );
}

/** A stored row as a select or checkbox option: its name, with its id when the two differ. */
export function rowOption(row: { id: string; name: string }): { value: string; label: string } {
  return { value: row.id, label: row.name === row.id ? row.id : `${row.name} (${row.id})` };
}

/** A checkbox per row, checked when its id is selected; a selected id no row has (deleted since) stays listed. */
export function IdChecks({
  rows,
  selected,
  onToggle,
  empty,
  testId,
}: {
  rows: readonly { id: string; name: string }[];
  selected: readonly string[];
  onToggle: (id: string, on: boolean) => void;
  empty: string;
  testId: string;
}) {
  const known = new Set(rows.map((row) => row.id));
  const options = [...rows.map(rowOption), ...selected.filter((id) => !known.has(id)).map((id) => ({ value: id, label: id }))];
  return (
    <Flex gap={4} wrap="wrap" data-testid={testId}>
      {rows.length === 0 && <Text color="fg.muted">{empty}</Text>}
      {options.map((option) => (
        <CheckboxInput key={option.value} label={option.label} checked={selected.includes(option.value)} onChange={(on) => onToggle(option.value, on)} />
      ))}
    </Flex>
  );
}

/** The type of a resource as a select; a stored type the form does not list stays selectable. */
export function TypeField({
  value,
  types,
  onChange,
  error,
}: {
  value: string;
  types: readonly string[];
  onChange: (value: string) => void;
  error?: string | undefined;
}) {
  return (
    <FormField label="Type" required error={error}>
      <SelectInput label="Type" value={value} onChange={onChange} options={types.includes(value) ? types : [...types, value]} />
    </FormField>
  );
}

/** The JSON editor of a column's options without a field of their own (`column` marks the field as touched). */
export function JsonObjectField({
  label,
  column,
  value,
  onChange,
  touch,
  error,
  help,
  placeholder,
}: {
  label: string;
  column: string;
  value: string;
  onChange: (value: string) => void;
  touch: (field: string) => void;
  error?: string | undefined;
  help: string;
  placeholder?: string;
}) {
  return (
    <FormField label={label} error={error} help={help}>
      <Textarea
        size="sm"
        fontFamily="mono"
        rows={3}
        value={value}
        onChange={(event) => {
          touch(column);
          onChange(event.target.value);
        }}
        placeholder={placeholder}
        spellCheck={false}
      />
    </FormField>
  );
}

export function CheckboxInput({
  checked,
  onChange,
  label,
  disabled,
}: {
  checked: boolean;
  onChange: (checked: boolean) => void;
  label: string;
  disabled?: boolean;
}) {
  return (
    <Checkbox.Root size="sm" checked={checked} disabled={disabled} onCheckedChange={(details) => onChange(details.checked === true)}>
      <Checkbox.HiddenInput />
      <Checkbox.Control />
      <Checkbox.Label>{label}</Checkbox.Label>
    </Checkbox.Root>
  );
}

/** One field of a spec. */
export function SpecField({
  spec,
  value,
  onChange,
  error,
  stored,
}: {
  spec: FieldSpec;
  value: string | boolean | undefined;
  onChange: (value: string | boolean) => void;
  error?: string | undefined;
  stored: boolean;
}) {
  const kind = spec.kind ?? "text";
  const text = typeof value === "string" ? value : "";
  if (kind === "bool") {
    return (
      <Field.Root invalid={Boolean(error)} gridColumn={spec.wide ? "1 / -1" : undefined} justifyContent="flex-end">
        <CheckboxInput checked={value === true} onChange={onChange} label={spec.label} />
        {spec.help && !error && <Field.HelperText>{spec.help}</Field.HelperText>}
        {error && <Field.ErrorText data-testid="field-error">{error}</Field.ErrorText>}
      </Field.Root>
    );
  }
  let input: ReactNode;
  if (kind === "select") {
    input = (
      <SelectInput
        value={text}
        options={spec.options ?? []}
        onChange={onChange}
        label={spec.label}
        placeholder={spec.placeholder ?? (spec.required ? undefined : "—")}
      />
    );
  } else if (kind === "textarea" || kind === "json") {
    input = (
      <Textarea
        size="sm"
        value={text}
        onChange={(event) => onChange(event.target.value)}
        placeholder={spec.placeholder}
        fontFamily={kind === "json" || spec.mono ? "mono" : undefined}
        rows={kind === "json" ? 4 : 3}
        autoComplete="off"
        spellCheck={false}
      />
    );
  } else {
    input = (
      <Input
        size="sm"
        type={kind === "secret" ? "password" : "text"}
        inputMode={kind === "number" ? "decimal" : undefined}
        value={text}
        onChange={(event) => onChange(event.target.value)}
        placeholder={kind === "secret" && stored ? "stored (leave empty to keep it)" : spec.placeholder}
        fontFamily={spec.mono ? "mono" : undefined}
        autoComplete={kind === "secret" ? "new-password" : "off"}
        spellCheck={false}
      />
    );
  }
  return (
    <FormField label={spec.label} error={error} help={spec.help} required={spec.required} wide={spec.wide || kind === "json" || kind === "textarea"}>
      {input}
    </FormField>
  );
}

/** The fields of `specs` in a two-column grid. */
export function SpecFields({
  specs,
  values,
  onChange,
  errors,
  stored,
}: {
  specs: readonly FieldSpec[];
  values: Values;
  onChange: (path: string, value: string | boolean) => void;
  errors: Errors;
  stored: ReadonlySet<string>;
}) {
  if (specs.length === 0) return null;
  return (
    <Grid templateColumns={{ base: "1fr", md: "1fr 1fr" }} gap={3}>
      {specs.map((spec) => (
        <SpecField
          key={spec.path}
          spec={spec}
          value={values[spec.path]}
          onChange={(value) => onChange(spec.path, value)}
          error={errors[spec.path]}
          stored={stored.has(spec.path)}
        />
      ))}
    </Grid>
  );
}

/** The title of a group of fields, with the error of the group as a whole (e.g. "exactly one of 'path' or 'glob'"). */
export function SectionTitle({ title, error }: { title: string; error?: string | undefined }) {
  return (
    <Box>
      <Text fontWeight="semibold" fontSize="sm">
        {title}
      </Text>
      {error && (
        <Text fontSize="sm" color="fg.error" data-testid="field-error">
          {error}
        </Text>
      )}
    </Box>
  );
}
