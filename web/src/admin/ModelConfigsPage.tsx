// Model configs: which models of the configured providers users may pick, with their context
// limit, prices (for spend limits) and call settings.
import { useState, type FormEvent } from "react";
import { api, must, type Schemas } from "../api/client";
import {
  Check,
  DeleteButton,
  ErrorAlert,
  Field,
  numberOrUndefined,
  numberText,
  useAction,
  useLoad,
} from "./common";

type ModelConfig = Schemas["ChatModelConfig"];
type CallConfig = Schemas["ChatModelCallConfig"];
type Cost = Schemas["ChatModelCost"];
type Provider = Schemas["ChatProviderConfig"];

async function loadAll(): Promise<{ configs: ModelConfig[]; providers: Provider[] }> {
  const [configs, providers] = await Promise.all([
    must(api.GET("/api/experimental/chats/model-configs")),
    must(api.GET("/api/experimental/chats/providers")),
  ]);
  return { configs, providers: providers.filter((p) => p.source !== "supported") };
}

const COSTS: { key: keyof Cost; label: string }[] = [
  { key: "input_price_per_million_tokens", label: "Input price" },
  { key: "output_price_per_million_tokens", label: "Output price" },
  { key: "cache_read_price_per_million_tokens", label: "Cache read price" },
  { key: "cache_write_price_per_million_tokens", label: "Cache write price" },
];

const CALLS: { key: Exclude<keyof CallConfig, "cost" | "provider_options">; label: string; step: string }[] = [
  { key: "max_output_tokens", label: "Max output tokens", step: "1" },
  { key: "temperature", label: "Temperature", step: "any" },
  { key: "top_p", label: "Top p", step: "any" },
  { key: "top_k", label: "Top k", step: "1" },
  { key: "presence_penalty", label: "Presence penalty", step: "any" },
  { key: "frequency_penalty", label: "Frequency penalty", step: "any" },
];

export function ModelConfigsPage() {
  const { data, error, reload } = useLoad(loadAll);
  const [editing, setEditing] = useState<string | null>(null);
  const providerName = (name: string) =>
    data?.providers.find((p) => p.provider === name)?.display_name ?? name;

  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title" className="page-title">
        Models
      </h1>
      <ErrorAlert error={error} />
      {data && data.configs.length === 0 && <p className="empty">No model is configured yet.</p>}
      <ul className="admin-list" aria-label="Model configs">
        {data?.configs.map((m) =>
          editing === m.id ? (
            <li key={m.id} className="admin-item">
              <ModelForm
                config={m}
                providers={data.providers}
                onDone={async () => {
                  setEditing(null);
                  await reload();
                }}
                onCancel={() => setEditing(null)}
              />
            </li>
          ) : (
            <li key={m.id} className="admin-item" aria-label={m.display_name || m.model}>
              <div className="item-main">
                <strong>{m.display_name || m.model}</strong>{" "}
                <span className="muted">
                  {providerName(m.provider)} · {m.model}
                </span>
                {m.is_default && <span className="badge ok">Default</span>}
                {!m.enabled && <span className="badge">Disabled</span>}
                <div className="item-meta muted">
                  <span>Context {m.context_limit.toLocaleString()} tokens</span>
                  <span>Compress at {m.compression_threshold}%</span>
                  <span>{costSummary(m.model_config?.cost)}</span>
                </div>
              </div>
              <div className="item-actions">
                <button type="button" onClick={() => setEditing(m.id)} aria-label={`Edit ${m.display_name || m.model}`}>
                  Edit
                </button>
                <DeleteButton
                  what={m.display_name || m.model}
                  onDelete={async () => {
                    await must(
                      api.DELETE("/api/experimental/chats/model-configs/{model_config_id}", {
                        params: { path: { model_config_id: m.id } },
                      }),
                    );
                    await reload();
                  }}
                />
              </div>
            </li>
          ),
        )}
      </ul>
      {data && (
        <details className="admin-create" open={data.configs.length === 0}>
          <summary>Add a model</summary>
          {data.providers.length === 0 ? (
            <p className="muted">Configure a provider first.</p>
          ) : (
            <ModelForm providers={data.providers} onDone={reload} />
          )}
        </details>
      )}
    </section>
  );
}

function costSummary(cost: Cost | null | undefined): string {
  const input = cost?.input_price_per_million_tokens;
  const output = cost?.output_price_per_million_tokens;
  if (input == null && output == null) return "No prices";
  return `$${input ?? 0} in / $${output ?? 0} out per million tokens`;
}

function ModelForm({
  config,
  providers,
  onDone,
  onCancel,
}: {
  config?: ModelConfig;
  providers: Provider[];
  onDone: () => Promise<void>;
  onCancel?: () => void;
}) {
  const call = config?.model_config ?? undefined;
  const [provider, setProvider] = useState(config?.provider ?? providers[0]?.provider ?? "");
  const [model, setModel] = useState(config?.model ?? "");
  const [displayName, setDisplayName] = useState(config?.display_name ?? "");
  const [contextLimit, setContextLimit] = useState(numberText(config?.context_limit ?? 128000));
  const [threshold, setThreshold] = useState(numberText(config?.compression_threshold ?? 70));
  const [enabled, setEnabled] = useState(config?.enabled ?? true);
  const [isDefault, setIsDefault] = useState(config?.is_default ?? false);
  const [costs, setCosts] = useState<Record<string, string>>(() =>
    Object.fromEntries(COSTS.map((c) => [c.key, numberText(call?.cost?.[c.key])])),
  );
  const [calls, setCalls] = useState<Record<string, string>>(() =>
    Object.fromEntries(CALLS.map((c) => [c.key, numberText(call?.[c.key])])),
  );
  const action = useAction();

  function callConfig(): CallConfig {
    const value = (text: string | undefined) => numberOrUndefined(text ?? "") ?? null;
    const cost = Object.fromEntries(COSTS.map((c) => [c.key, value(costs[c.key])])) as Cost;
    const settings = Object.fromEntries(CALLS.map((c) => [c.key, value(calls[c.key])]));
    return { ...(settings as Omit<CallConfig, "cost" | "provider_options">), cost, provider_options: call?.provider_options ?? null };
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    void action.run(async () => {
      const body = {
        provider,
        model,
        display_name: displayName,
        context_limit: numberOrUndefined(contextLimit) ?? 0,
        compression_threshold: numberOrUndefined(threshold) ?? null,
        enabled,
        is_default: isDefault,
        model_config: callConfig(),
      };
      if (config) {
        await must(
          api.PATCH("/api/experimental/chats/model-configs/{model_config_id}", {
            params: { path: { model_config_id: config.id } },
            body,
          }),
        );
      } else {
        await must(api.POST("/api/experimental/chats/model-configs", { body }));
        setModel("");
        setDisplayName("");
      }
      await onDone();
    });
  }

  const title = config ? `Edit ${config.display_name || config.model}` : "New model";
  return (
    <form className="admin-form" noValidate onSubmit={submit} aria-label={title}>
      <h2>{title}</h2>
      <div className="fields">
        <Field label="Provider">
          {(id) => (
            <select id={id} value={provider} onChange={(e) => setProvider(e.target.value)}>
              {providers.map((p) => (
                <option key={p.id} value={p.provider}>
                  {p.display_name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Model name" hint="As the provider names it, e.g. gpt-4o.">
          {(id, d) => <input id={id} aria-describedby={d} value={model} onChange={(e) => setModel(e.target.value)} />}
        </Field>
        <Field label="Display name">
          {(id) => <input id={id} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
        </Field>
        <Field label="Context limit (tokens)">
          {(id) => (
            <input id={id} type="number" min={1} step={1} value={contextLimit} onChange={(e) => setContextLimit(e.target.value)} />
          )}
        </Field>
        <Field label="Compression threshold (%)" hint="Summarise older messages past this share of the context.">
          {(id, d) => (
            <input id={id} aria-describedby={d} type="number" min={0} max={100} step={1} value={threshold} onChange={(e) => setThreshold(e.target.value)} />
          )}
        </Field>
      </div>
      <fieldset className="checks">
        <legend>State</legend>
        <Check label="Enabled" checked={enabled} onChange={setEnabled} />
        <Check label="Default model" checked={isDefault} onChange={setIsDefault} />
      </fieldset>
      <fieldset>
        <legend>Prices (USD per million tokens)</legend>
        <div className="fields">
          {COSTS.map((c) => (
            <Field key={c.key} label={c.label}>
              {(id) => (
                <input
                  id={id}
                  type="number"
                  min={0}
                  step="any"
                  value={costs[c.key]}
                  onChange={(e) => setCosts({ ...costs, [c.key]: e.target.value })}
                />
              )}
            </Field>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>Call settings (empty: the provider&apos;s default)</legend>
        <div className="fields">
          {CALLS.map((c) => (
            <Field key={c.key} label={c.label}>
              {(id) => (
                <input
                  id={id}
                  type="number"
                  step={c.step}
                  value={calls[c.key]}
                  onChange={(e) => setCalls({ ...calls, [c.key]: e.target.value })}
                />
              )}
            </Field>
          ))}
        </div>
      </fieldset>
      <ErrorAlert error={action.error} />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {config ? "Save model" : "Create model"}
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
