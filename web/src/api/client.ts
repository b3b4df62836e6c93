// The HTTP client: typed by the server's own OpenAPI document (src/api/schema.d.ts is generated
// from it by `npm run gen-api`), authenticated by the session cookie the login sets.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });

/** The reference's error envelope: `{message, detail?, validations?}`. */
export interface Envelope {
  message: string;
  detail?: string;
  validations?: { field: string; detail: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly envelope: Envelope,
  ) {
    super(envelope.message);
  }

  /** The message and, when the server gave one, its detail. */
  get text(): string {
    const { message, detail, validations } = this.envelope;
    const parts = [message];
    if (detail) parts.push(detail);
    for (const v of validations ?? []) parts.push(`${v.field}: ${v.detail}`);
    return parts.join(" ");
  }
}

/** Fires when any answer is a 401, so the app can go back to the sign-in page. */
export const unauthorized = new EventTarget();

function envelopeOf(error: unknown, status: number): Envelope {
  if (error && typeof error === "object" && "message" in error) {
    return error as Envelope;
  }
  return { message: `Request failed (HTTP ${status}).` };
}

/**
 * The data of an openapi-fetch answer, or an ApiError carrying the server's envelope.
 * `await must(api.GET("/api/v2/users/me"))`.
 */
export async function must<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    if (response.status === 401) unauthorized.dispatchEvent(new Event("unauthorized"));
    throw new ApiError(response.status, envelopeOf(error, response.status));
  }
  return data as T;
}

/** A message for anything thrown by a call. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.text;
  if (err instanceof Error) return err.message;
  return String(err);
}
