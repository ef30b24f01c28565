import type { SystemContext } from "@chakra-ui/react";

declare global {
  // Set by Airflow's UI (3.3) for plugins: the host's Chakra system, themed by `[api] theme`.
  var ChakraUISystem: SystemContext | undefined;
}

export {};
