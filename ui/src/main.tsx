// The react_apps entry of Muxly: ONE default export (the UMD build puts it on globalThis.AirflowPlugin).
import { ChakraProvider, defaultSystem } from "@chakra-ui/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MuxlyApp } from "./App";
import { DagTab } from "./pages/DagTab";

/** The props Airflow's plugin page passes (from its route parameters). */
export type PluginProps = { dagId?: string; runId?: string; taskId?: string; mapIndex?: string };

const queryClient = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false, staleTime: 10_000 } },
});

/** Muxly in Airflow's UI: the DAG tab when Airflow passes a dagId, else the Muxly app with its own sub-routes. */
export default function MuxlyPlugin(props: PluginProps) {
  return (
    <ChakraProvider value={globalThis.ChakraUISystem ?? defaultSystem}>
      <QueryClientProvider client={queryClient}>
        {props.dagId ? <DagTab dagId={props.dagId} /> : <MuxlyApp />}
      </QueryClientProvider>
    </ChakraProvider>
  );
}

// Both react_apps entries ("Muxly" and "Muxly job") load this same module URL; the browser evaluates it once, and
// Airflow's loader clears globalThis.AirflowPlugin before each import and reads globalThis[name] first. Setting the
// two names here lets the second entry find the component although the module is not evaluated again.
const registry = globalThis as unknown as Record<string, unknown>;
registry["Muxly"] = MuxlyPlugin;
registry["Muxly job"] = MuxlyPlugin;
