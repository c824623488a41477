// A small typed fetch wrapper over the generated schema (schema.d.ts, from openapi.json).
import type { paths } from "./schema";

type Get<P extends keyof paths> = paths[P] extends { get: { responses: { 200: { content: { "application/json": infer R } } } } }
  ? R
  : never;
type PathParams<P extends keyof paths> = paths[P] extends { get: { parameters: { path: infer A } } } ? A : never;

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

function fill(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(params[k])));
}

export async function get<P extends keyof paths>(
  path: P,
  params?: PathParams<P> extends never ? undefined : PathParams<P>,
  query: Record<string, string> = {},
): Promise<Get<P>> {
  const qs = new URLSearchParams(query).toString();
  const url = fill(path as string, params as Record<string, string | number>) + (qs ? `?${qs}` : "");
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => null);
    if (response.status === 401 || body?.error?.code === "not_authenticated") {
      window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
    }
    throw new ApiError(response.status, body?.error?.message ?? "Not allowed.");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body?.error?.message ?? `Error ${response.status}`);
  }
  return (await response.json()) as Get<P>;
}

export function url<P extends keyof paths>(path: P, params: Record<string, string | number>, query: Record<string, string> = {}): string {
  const qs = new URLSearchParams(query).toString();
  return fill(path as string, params) + (qs ? `?${qs}` : "");
}
