// Model providers: the configured ones (edit, enable or disable, delete) and a form that sets
// up one of the supported kinds not configured yet. API keys are write-only: the server only
// says whether one is stored.
import { useState, type FormEvent } from "react";
import { api, must, type Schemas } from "../api/client";
import { Check, DeleteButton, ErrorAlert, Field, useAction, useLoad } from "./common";

type Provider = Schemas["ChatProviderConfig"];

/** A PATCH body that changes nothing (null: keep), to spread the changes over. */
const UNCHANGED: Schemas["UpdateChatProviderConfigRequest"] = {
  display_name: null,
  api_key: null,
  base_url: null,
  enabled: null,
  central_api_key_enabled: null,
  allow_user_api_key: null,
  allow_central_api_key_fallback: null,
};

async function loadProviders(): Promise<Provider[]> {
  return must(api.GET("/api/experimental/chats/providers"));
}

export function ProvidersPage() {
  const { data, error, reload } = useLoad(loadProviders);
  const [editing, setEditing] = useState<string | null>(null);
  const configured = (data ?? []).filter((p) => p.source !== "supported");
  const available = (data ?? []).filter((p) => p.source === "supported");

  return (
    <section aria-labelledby="providers-title">
      <h1 id="providers-title" className="page-title">
        Providers
      </h1>
      <ErrorAlert error={error} />
      {data && configured.length === 0 && <p className="empty">No provider is configured yet.</p>}
      <ul className="admin-list" aria-label="Configured providers">
        {configured.map((p) =>
          editing === p.id ? (
            <li key={p.id} className="admin-item">
              <ProviderForm
                provider={p}
                onDone={async () => {
                  setEditing(null);
                  await reload();
                }}
                onCancel={() => setEditing(null)}
              />
            </li>
          ) : (
            <ProviderRow key={p.id} provider={p} onEdit={() => setEditing(p.id)} reload={reload} />
          ),
        )}
      </ul>
      {data && available.length > 0 && (
        <details className="admin-create" open={configured.length === 0}>
          <summary>Add a provider</summary>
          <ProviderForm choices={available} onDone={reload} />
        </details>
      )}
    </section>
  );
}

function ProviderRow({
  provider: p,
  onEdit,
  reload,
}: {
  provider: Provider;
  onEdit: () => void;
  reload: () => Promise<void>;
}) {
  const toggle = useAction();
  return (
    <li className="admin-item" aria-label={p.display_name}>
      <div className="item-main">
        <strong>{p.display_name}</strong> <span className="muted">({p.provider})</span>
        <span className={p.enabled ? "badge ok" : "badge"}>{p.enabled ? "Enabled" : "Disabled"}</span>
        <div className="item-meta muted">
          <span>{p.has_api_key ? "API key stored" : "No API key stored"}</span>
          {p.base_url && <span>Base URL: {p.base_url}</span>}
          {p.allow_user_api_key && <span>Users may bring their own key</span>}
        </div>
      </div>
      <div className="item-actions">
        <button type="button" onClick={onEdit} aria-label={`Edit ${p.display_name}`}>
          Edit
        </button>
        <button
          type="button"
          disabled={toggle.busy}
          onClick={() =>
            toggle.run(async () => {
              await must(
                api.PATCH("/api/experimental/chats/providers/{provider_id}", {
                  params: { path: { provider_id: p.id } },
                  body: { ...UNCHANGED, enabled: !p.enabled },
                }),
              );
              await reload();
            })
          }
        >
          {p.enabled ? "Disable" : "Enable"}
        </button>
        <DeleteButton
          what={p.display_name}
          onDelete={async () => {
            await must(
              api.DELETE("/api/experimental/chats/providers/{provider_id}", {
                params: { path: { provider_id: p.id } },
              }),
            );
            await reload();
          }}
        />
      </div>
      <ErrorAlert error={toggle.error} />
    </li>
  );
}

/** Creates a provider (given `choices`, the kinds not configured yet) or edits `provider`. */
function ProviderForm({
  provider,
  choices,
  onDone,
  onCancel,
}: {
  provider?: Provider;
  choices?: Provider[];
  onDone: () => Promise<void>;
  onCancel?: () => void;
}) {
  const [kind, setKind] = useState(provider?.provider ?? choices?.[0]?.provider ?? "");
  const [displayName, setDisplayName] = useState(provider?.display_name ?? "");
  const [apiKey, setApiKey] = useState("");
  const [baseURL, setBaseURL] = useState(provider?.base_url ?? "");
  const [enabled, setEnabled] = useState(provider?.enabled ?? true);
  const [central, setCentral] = useState(provider?.central_api_key_enabled ?? true);
  const [userKeys, setUserKeys] = useState(provider?.allow_user_api_key ?? false);
  const [fallback, setFallback] = useState(provider?.allow_central_api_key_fallback ?? false);
  const action = useAction();

  function submit(event: FormEvent) {
    event.preventDefault();
    void action.run(async () => {
      const common = {
        display_name: displayName.trim() || null,
        base_url: baseURL.trim(),
        enabled,
        central_api_key_enabled: central,
        allow_user_api_key: userKeys,
        allow_central_api_key_fallback: fallback,
      };
      if (provider) {
        // An empty key field keeps the stored key.
        await must(
          api.PATCH("/api/experimental/chats/providers/{provider_id}", {
            params: { path: { provider_id: provider.id } },
            body: { ...UNCHANGED, ...common, api_key: apiKey || null },
          }),
        );
      } else {
        await must(
          api.POST("/api/experimental/chats/providers", {
            body: { provider: kind, ...common, api_key: apiKey || null },
          }),
        );
        setDisplayName("");
        setBaseURL("");
      }
      setApiKey("");
      await onDone();
    });
  }

  const title = provider ? `Edit ${provider.display_name}` : "New provider";
  return (
    <form className="admin-form" noValidate onSubmit={submit} aria-label={title}>
      <h2>{title}</h2>
      <div className="fields">
        {!provider && (
          <Field label="Provider type">
            {(id) => (
              <select id={id} value={kind} onChange={(e) => setKind(e.target.value)}>
                {(choices ?? []).map((c) => (
                  <option key={c.provider} value={c.provider}>
                    {c.display_name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        <Field label="Display name" hint="Empty: the provider type's name.">
          {(id, d) => (
            <input id={id} aria-describedby={d} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          )}
        </Field>
        <Field
          label="API key"
          hint={
            provider?.has_api_key
              ? "A key is stored; it is never shown. Type a new one to replace it."
              : "Stored encrypted; never shown again."
          }
        >
          {(id, d) => (
            <input
              id={id}
              aria-describedby={d}
              type="password"
              autoComplete="new-password"
              value={apiKey}
              onChange={(e) => setApiKey(e.target.value)}
            />
          )}
        </Field>
        <Field label="Base URL" hint="For OpenAI-compatible servers, e.g. http://localhost:11434/v1">
          {(id, d) => (
            <input id={id} aria-describedby={d} inputMode="url" value={baseURL} onChange={(e) => setBaseURL(e.target.value)} />
          )}
        </Field>
      </div>
      <fieldset className="checks">
        <legend>Credentials and state</legend>
        <Check label="Enabled" checked={enabled} onChange={setEnabled} />
        <Check label="Use the central API key" checked={central} onChange={setCentral} />
        <Check label="Users may bring their own key" checked={userKeys} onChange={setUserKeys} />
        <Check label="Fall back to the central key" checked={fallback} onChange={setFallback} />
      </fieldset>
      <ErrorAlert error={action.error} />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {provider ? "Save provider" : "Create provider"}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
