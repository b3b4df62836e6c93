// The new-chat page's pickers: the model (catalog grouped by provider, each entry tied to its
// model config) and the workspace (none, an existing one, or a new one from a template).
import { useEffect, useState } from "react";
import { api, errorText, must, type Schemas } from "../api/client";

type ModelConfig = Schemas["ChatModelConfig"];
type Provider = Schemas["ChatModelProvider"];
type Workspace = Schemas["Workspace"];
type Template = Schemas["Template"];

const REASONS: Record<string, string> = {
  missing_api_key: "no API key configured",
  user_api_key_required: "needs your own API key",
  fetch_failed: "its models could not be listed",
};

interface ModelOption {
  /** The model config's id ("" when no config stands behind the catalog entry). */
  value: string;
  label: string;
  disabled: boolean;
}

interface ModelGroup {
  provider: string;
  reason: string | null;
  options: ModelOption[];
}

function configFor(configs: ModelConfig[], model: Schemas["ChatModel"]): ModelConfig | undefined {
  const name = model.model.toLowerCase();
  const provider = model.provider.toLowerCase();
  const same = configs.filter((c) => c.model.toLowerCase().replace(/^[^:/]+[:/]/, "") === name || c.model.toLowerCase() === name);
  return same.find((c) => c.provider.toLowerCase() === provider) ?? (same.length === 1 ? same[0] : undefined);
}

function groupModels(providers: Provider[], configs: ModelConfig[]): ModelGroup[] {
  return providers.map((p) => {
    const reason = p.available ? null : (REASONS[p.unavailable_reason ?? ""] ?? "unavailable");
    return {
      provider: p.provider,
      reason,
      options: p.models.map((m) => {
        const config = configFor(configs, m);
        const why = reason ?? (config ? null : "no model config");
        return {
          value: config?.id ?? "",
          label: `${m.display_name || m.model}${why ? ` (unavailable: ${why})` : ""}`,
          disabled: !!why,
        };
      }),
    };
  });
}

export interface ModelChoice {
  groups: ModelGroup[];
  loading: boolean;
  error: string | null;
  defaultId: string;
}

export function useModels(): ModelChoice {
  const [state, setState] = useState<ModelChoice>({ groups: [], loading: true, error: null, defaultId: "" });
  useEffect(() => {
    let live = true;
    Promise.all([
      must(api.GET("/api/experimental/chats/models")),
      must(api.GET("/api/experimental/chats/model-configs")),
    ])
      .then(([catalog, configs]) => {
        if (!live) return;
        const groups = groupModels(catalog.providers, configs);
        const usable = groups.flatMap((g) => g.options).filter((o) => !o.disabled);
        const preferred = configs.find((c) => c.is_default && usable.some((o) => o.value === c.id));
        setState({
          groups,
          loading: false,
          error: null,
          defaultId: preferred?.id ?? usable[0]?.value ?? "",
        });
      })
      .catch((err: unknown) => live && setState((s) => ({ ...s, loading: false, error: errorText(err) })));
    return () => {
      live = false;
    };
  }, []);
  return state;
}

export function ModelPicker({
  choice,
  value,
  onChange,
}: {
  choice: ModelChoice;
  value: string;
  onChange: (id: string) => void;
}) {
  const empty = !choice.loading && choice.groups.every((g) => g.options.length === 0);
  return (
    <label className="new-chat-field">
      <span>Model</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} disabled={choice.loading}>
        {choice.loading && <option value="">Loading models…</option>}
        {empty && <option value="">Server default</option>}
        {choice.groups.map((g) => (
          <optgroup key={g.provider} label={g.reason ? `${g.provider} (unavailable: ${g.reason})` : g.provider}>
            {g.options.length === 0 && (
              <option disabled value="">
                No models
              </option>
            )}
            {g.options.map((o, i) => (
              <option key={`${o.value}-${i}`} value={o.value} disabled={o.disabled}>
                {o.label}
              </option>
            ))}
          </optgroup>
        ))}
      </select>
    </label>
  );
}

export type WorkspaceMode = "none" | "existing" | "template";

export interface WorkspaceChoice {
  mode: WorkspaceMode;
  workspaceId: string;
  templateId: string;
  name: string;
  parameters: Record<string, string>;
}

export const NO_WORKSPACE: WorkspaceChoice = {
  mode: "none",
  workspaceId: "",
  templateId: "",
  name: "",
  parameters: {},
};

export function useWorkspaceSources(organizationId: string | undefined, reloadKey: number) {
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    must(api.GET("/api/v2/workspaces"))
      .then((answer) => live && setWorkspaces(answer.workspaces.filter((w) => !organizationId || w.organization_id === organizationId)))
      .catch((err: unknown) => live && setError(errorText(err)));
    return () => {
      live = false;
    };
  }, [organizationId, reloadKey]);
  useEffect(() => {
    if (!organizationId) return;
    let live = true;
    must(api.GET("/api/v2/organizations/{organization}/templates", { params: { path: { organization: organizationId } } }))
      .then((answer) => live && setTemplates(answer))
      .catch((err: unknown) => live && setError(errorText(err)));
    return () => {
      live = false;
    };
  }, [organizationId]);
  return { workspaces, templates, error };
}

export function WorkspacePicker({
  value,
  onChange,
  workspaces,
  templates,
}: {
  value: WorkspaceChoice;
  onChange: (next: WorkspaceChoice) => void;
  workspaces: Workspace[];
  templates: Template[];
}) {
  const template = templates.find((t) => t.id === value.templateId);
  const set = (change: Partial<WorkspaceChoice>) => onChange({ ...value, ...change });
  /** The template and its parameters' defaults. */
  function templateChange(id: string): Partial<WorkspaceChoice> {
    const t = templates.find((x) => x.id === id);
    const parameters: Record<string, string> = {};
    for (const p of t?.parameters ?? []) parameters[p.name] = p.default ?? "";
    return { templateId: id, parameters };
  }
  return (
    <fieldset className="new-chat-workspace">
      <legend>Workspace</legend>
      <div className="new-chat-radios">
        <label>
          <input type="radio" name="workspace-mode" checked={value.mode === "none"} onChange={() => set({ mode: "none" })} />
          None
        </label>
        <label>
          <input
            type="radio"
            name="workspace-mode"
            checked={value.mode === "existing"}
            disabled={workspaces.length === 0}
            onChange={() => set({ mode: "existing", workspaceId: value.workspaceId || workspaces[0]?.id || "" })}
          />
          Existing workspace
        </label>
        <label>
          <input
            type="radio"
            name="workspace-mode"
            checked={value.mode === "template"}
            disabled={templates.length === 0}
            onChange={() =>
              set({
                mode: "template",
                ...(!value.templateId && templates[0] ? templateChange(templates[0].id) : {}),
              })
            }
          />
          New from a template
        </label>
      </div>
      {value.mode === "existing" && (
        <label className="new-chat-field">
          <span>Existing workspace</span>
          <select value={value.workspaceId} onChange={(e) => set({ workspaceId: e.target.value })}>
            {workspaces.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
                {w.template_name ? ` (${w.template_name})` : ""}
              </option>
            ))}
          </select>
        </label>
      )}
      {value.mode === "template" && (
        <div className="new-chat-template">
          <label className="new-chat-field">
            <span>Template</span>
            <select value={value.templateId} onChange={(e) => set(templateChange(e.target.value))}>
              {templates.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.display_name || t.name}
                </option>
              ))}
            </select>
          </label>
          {template?.description && <p className="muted new-chat-hint">{template.description}</p>}
          <label className="new-chat-field">
            <span>Workspace name (optional)</span>
            <input value={value.name} onChange={(e) => set({ name: e.target.value })} />
          </label>
          {(template?.parameters ?? []).map((p) => (
            <label key={p.name} className="new-chat-field">
              <span>
                {p.name}
                {p.required ? " (required)" : ""}
              </span>
              <input
                value={value.parameters[p.name] ?? ""}
                required={p.required}
                onChange={(e) => set({ parameters: { ...value.parameters, [p.name]: e.target.value } })}
              />
              {p.description && <small className="muted">{p.description}</small>}
            </label>
          ))}
        </div>
      )}
    </fieldset>
  );
}
