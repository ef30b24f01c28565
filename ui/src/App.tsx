import { Box, Button, Flex, Heading, Text } from "@chakra-ui/react";
import { Link, Outlet, Route, Routes, useLocation, useMatch } from "react-router-dom";
import { AppRoot, appRootOf, useAppPath } from "./appRoot";
import { useMe } from "./api/useMe";
import { Placeholder } from "./components/common";
import { ConnectorsPage } from "./pages/Connectors";
import { DeadLettersPage } from "./pages/DeadLetters";
import { DestinationsPage } from "./pages/Destinations";
import { ImportExportPage } from "./pages/ImportExport";
import { JobDetailPage } from "./pages/JobDetail";
import { JobsPage } from "./pages/Jobs";
import { OverviewPage } from "./pages/Overview";
import { RoutesPage } from "./pages/Routes";
import { RulesPage } from "./pages/Rules";
import { TesterPage } from "./pages/Tester";
import { WebhooksPage } from "./pages/Webhooks";

/** The pages of the app: path (relative to Airflow's plugin/muxly route) and title. */
export const PAGES: { path: string; title: string }[] = [
  { path: "", title: "Overview" },
  { path: "jobs", title: "Jobs" },
  { path: "connectors", title: "Connectors" },
  { path: "destinations", title: "Destinations" },
  { path: "rules", title: "Rules" },
  { path: "routes", title: "Routes" },
  { path: "webhooks", title: "Webhooks" },
  { path: "tester", title: "Tester" },
  { path: "dead-letters", title: "Dead letters" },
  { path: "import-export", title: "Import / export" },
];

const BUILT = new Set(["", "jobs", "connectors", "destinations", "rules", "routes", "webhooks", "tester", "dead-letters", "import-export"]);

function TabLink({ to, end, children }: { to: string; end: boolean; children: string }) {
  const path = useAppPath(to);
  const active = useMatch({ path, end }) !== null;
  return (
    <Button asChild size="sm" variant={active ? "subtle" : "ghost"} aria-current={active ? "page" : undefined}>
      <Link to={path}>{children}</Link>
    </Button>
  );
}

function Shell() {
  const { me } = useMe();
  return (
    <Box p={4} color="fg">
      <Flex align="center" justify="space-between" mb={3} gap={4} wrap="wrap">
        <Heading size="lg">Muxly</Heading>
        {me && (
          <Text color="fg.muted" fontSize="sm" data-testid="muxly-user">
            {me.display_name ?? me.username} · {me.roles.join(", ") || "no role"}
          </Text>
        )}
      </Flex>
      <Flex as="nav" gap={1} wrap="wrap" borderBottomWidth="1px" borderColor="border" pb={2} mb={4}>
        {PAGES.map((page) => (
          <TabLink key={page.path} to={page.path} end={page.path === ""}>
            {page.title}
          </TabLink>
        ))}
      </Flex>
      <Outlet />
    </Box>
  );
}

/** The Muxly app: its own routes below Airflow's `plugin/muxly/*` route. */
export function MuxlyApp() {
  const root = appRootOf(useLocation().pathname);
  return (
    <AppRoot.Provider value={root}>
      <Routes>
        <Route element={<Shell />}>
          <Route index element={<OverviewPage />} />
          <Route path="overview" element={<OverviewPage />} />
          <Route path="jobs" element={<JobsPage />} />
          <Route path="jobs/:jobId" element={<JobDetailPage />} />
          <Route path="connectors" element={<ConnectorsPage />} />
          <Route path="destinations" element={<DestinationsPage />} />
          <Route path="rules" element={<RulesPage />} />
          <Route path="routes" element={<RoutesPage />} />
          <Route path="webhooks" element={<WebhooksPage />} />
          <Route path="tester" element={<TesterPage />} />
          <Route path="dead-letters" element={<DeadLettersPage />} />
          <Route path="import-export" element={<ImportExportPage />} />
          {PAGES.filter((page) => !BUILT.has(page.path)).map((page) => (
            <Route key={page.path} path={page.path} element={<Placeholder title={page.title} />} />
          ))}
          <Route path="*" element={<Placeholder title="Not found" />} />
        </Route>
      </Routes>
    </AppRoot.Provider>
  );
}
