import { useQuery } from "@tanstack/react-query";
import { api } from "./client";
import type { Me } from "./types";

/** Whether one of `permissions` ('resource:action', '*' a wildcard on either side) covers resource:action. */
export function allows(permissions: readonly string[], resource: string, action: string): boolean {
  return permissions.some((granted) => {
    if (granted === "*") return true;
    const [r, a] = granted.split(":");
    return (r === "*" || r === resource) && (a === "*" || a === action);
  });
}

/** The signed-in user (`GET /auth/me`) and `can(resource, action)`; nothing is allowed until it is known. */
export function useMe() {
  const query = useQuery({ queryKey: ["me"], queryFn: () => api<Me>("/auth/me"), staleTime: 60_000 });
  const permissions = query.data?.permissions ?? [];
  return {
    me: query.data,
    isLoading: query.isLoading,
    error: query.error,
    can: (resource: string, action: string) => allows(permissions, resource, action),
  };
}
