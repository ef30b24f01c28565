import { createContext, useContext } from "react";

/**
 * The app's own root path inside the host router ("/plugin/muxly"). Links are built from it, not relative:
 * Airflow mounts plugins under the splat route `plugin/:page/*`, and react-router 7 resolves relative links inside
 * a splat route against the whole current URL, so "jobs" seen from /plugin/muxly/jobs would lead to .../jobs/jobs.
 */
export const AppRoot = createContext("");

/** The root of the app in `pathname` (router-relative, without the basename). */
export function appRootOf(pathname: string): string {
  return /^(.*?\/plugin\/[^/]+)/.exec(pathname)?.[1] ?? "";
}

/** The router path of an app page: "" is the overview, "jobs" the jobs page... */
export function useAppPath(page: string): string {
  const root = useContext(AppRoot);
  return page ? `${root}/${page}` : root || "/";
}
