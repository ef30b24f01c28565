import { Badge, Box, Heading, Spinner, Text } from "@chakra-ui/react";
import type { ReactNode } from "react";
import { errorMessage } from "../api/client";

const palettes: Record<string, string> = {
  success: "green",
  failed: "red",
  running: "blue",
  queued: "gray",
  never: "gray",
};

/** A run status as a coloured badge (Chakra palettes follow the light or dark mode). */
export function StatusBadge({ status }: { status: string | null | undefined }) {
  const value = status ?? "never";
  return (
    <Badge colorPalette={palettes[value] ?? "orange"} variant="subtle">
      {value}
    </Badge>
  );
}

export function Loading() {
  return (
    <Box p={4}>
      <Spinner size="sm" /> <Text as="span" color="fg.muted">Loading…</Text>
    </Box>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  return (
    <Box p={3} borderWidth="1px" borderColor="border.error" bg="bg.error" borderRadius="md" role="alert">
      <Text color="fg.error">{errorMessage(error)}</Text>
    </Box>
  );
}

export function Card({ title, children }: { title?: string; children: ReactNode }) {
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={4} bg="bg.panel">
      {title && (
        <Heading size="sm" mb={3}>
          {title}
        </Heading>
      )}
      {children}
    </Box>
  );
}

/** An ISO time as the browser's local time ("—" when absent). */
export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <Text as="span" color="fg.muted">—</Text>;
  const date = new Date(iso);
  return <span title={iso}>{date.toLocaleString()}</span>;
}

export function Placeholder({ title }: { title: string }) {
  return (
    <Card title={title}>
      <Text color="fg.muted">This page is not built yet. Muxly's API already serves it (see docs/api.md).</Text>
    </Card>
  );
}
