// The turn's status, a waiting retry with its countdown, and the last error.
import { useEffect, useState } from "react";
import type { ChatError, ChatStatus, Retry } from "./state";

const LABELS: Record<ChatStatus, string> = {
  waiting: "Idle",
  pending: "Starting…",
  running: "Running…",
  paused: "Paused",
  completed: "Completed",
  error: "Error",
  requires_action: "Waiting for tool results",
};

export function statusLabel(status: ChatStatus | null): string {
  return status ? LABELS[status] : "Connecting…";
}

export function StatusBadge({ status }: { status: ChatStatus | null }) {
  return (
    <span className={`status-badge status-${status ?? "unknown"}`} data-status={status ?? ""}>
      {statusLabel(status)}
    </span>
  );
}

function useSecondsUntil(at: string): number {
  const target = Date.parse(at);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 250);
    return () => window.clearInterval(timer);
  }, [target]);
  return Math.max(0, Math.ceil((target - now) / 1000));
}

export function RetryNotice({ retry }: { retry: Retry }) {
  const seconds = useSecondsUntil(retry.retrying_at);
  return (
    <div className="notice notice-warn retry" role="status">
      <strong>
        Attempt {retry.attempt} failed{retry.status_code ? ` (HTTP ${retry.status_code})` : ""}
        {retry.kind ? ` · ${retry.kind}` : ""}
      </strong>
      <span>{retry.error}</span>
      <span className="countdown">
        {seconds > 0 ? `Retrying in ${seconds} s` : "Retrying now…"}
      </span>
    </div>
  );
}

export function ErrorNotice({ error }: { error: ChatError }) {
  return (
    <div className="notice notice-error" role="alert">
      <strong>
        Error{error.kind ? ` (${error.kind})` : ""}
        {error.status_code ? ` · HTTP ${error.status_code}` : ""}
      </strong>
      <span>{error.message}</span>
      {error.detail && error.detail !== error.message && (
        <details>
          <summary>Details</summary>
          <pre>{error.detail}</pre>
        </details>
      )}
    </div>
  );
}
