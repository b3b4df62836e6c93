// What the admin pages share: loading a list, showing a server error (with its per-field
// validations), labelled fields that carry their own error, and a two-step delete button.
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { ApiError, errorText } from "../api/client";

/** Loads data once and on `reload()`; `error` holds what the last load threw. */
export function useLoad<T>(load: () => Promise<T>) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const loader = useRef(load);
  loader.current = load;
  const reload = useCallback(async () => {
    try {
      setData(await loader.current());
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, reload };
}

/** Runs a form's submit: tracks `busy` and the error the call threw. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(null) };
}

/** The validation the server gave for `field` (or a field under it, "parameters.0.name"). */
export function fieldError(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const hit = error.envelope.validations?.find((v) => v.field === field);
  return hit?.detail;
}

/** A server error, as an alert: the message, its detail and the validations. */
export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    const { message, detail, validations } = error.envelope;
    return (
      <div role="alert" className="admin-alert">
        <strong>{message}</strong>
        {detail && <span> {detail}</span>}
        {validations && validations.length > 0 && (
          <ul>
            {validations.map((v) => (
              <li key={v.field}>
                <code>{v.field}</code>: {v.detail}
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  return (
    <div role="alert" className="admin-alert">
      {errorText(error)}
    </div>
  );
}

/** A labelled input (or any control given as `children(id, describedBy)`) with its error. */
export function Field({
  label,
  hint,
  error,
  children,
  wide,
}: {
  label: string;
  hint?: string;
  error?: string;
  wide?: boolean;
  children: (id: string, describedBy: string | undefined) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ") || undefined;
  return (
    <div className={wide ? "field wide" : "field"}>
      <label htmlFor={id}>{label}</label>
      {children(id, describedBy)}
      {hint && (
        <span id={hintId} className="muted field-hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={errorId} className="error field-error">
          {error}
        </span>
      )}
    </div>
  );
}

/** A labelled checkbox. */
export function Check({
  label,
  checked,
  onChange,
}: {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
}) {
  return (
    <label className="check">
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {label}
    </label>
  );
}

/** "Delete" that asks once more in place (no browser dialog) before calling `onDelete`. */
export function DeleteButton({ what, onDelete }: { what: string; onDelete: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  const action = useAction();
  if (!asking) {
    return (
      <button type="button" className="danger" onClick={() => setAsking(true)} aria-label={`Delete ${what}`}>
        Delete
      </button>
    );
  }
  return (
    <span className="confirm">
      <button
        type="button"
        className="danger"
        disabled={action.busy}
        onClick={() => action.run(onDelete)}
        aria-label={`Confirm deleting ${what}`}
      >
        Confirm delete
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
      <ErrorAlert error={action.error} />
    </span>
  );
}

/** A number typed into an input, or undefined when it is empty. */
export function numberOrUndefined(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** A number for a text field ("" when there is none). */
export function numberText(n: number | null | undefined): string {
  return n === null || n === undefined ? "" : String(n);
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "never";
  const d = new Date(iso);
  return d.getFullYear() < 1971 ? "never" : d.toLocaleString();
}
