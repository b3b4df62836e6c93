// Workspace templates of the default organization: the built-in ones (read-only here) and the
// `external` and `command` ones an owner adds, with their parameters.
import { useState, type FormEvent } from "react";
import { api, must, type Schemas } from "../api/client";
import { useSession } from "../session";
import { Check, DeleteButton, ErrorAlert, Field, fieldError, useAction, useLoad } from "./common";

type Template = Schemas["Template"];
type Parameter = Schemas["TemplateParameterRequest"];

export function TemplatesPage() {
  const { user } = useSession();
  const org = user?.organization_ids[0] ?? "";
  const { data, error, reload } = useLoad(() =>
    must(api.GET("/api/v2/organizations/{organization}/templates", { params: { path: { organization: org } } })),
  );
  const [editing, setEditing] = useState<string | null>(null);

  return (
    <section aria-labelledby="templates-title">
      <h1 id="templates-title" className="page-title">
        Templates
      </h1>
      <ErrorAlert error={error} />
      <ul className="admin-list" aria-label="Templates">
        {data?.map((t) =>
          editing === t.id ? (
            <li key={t.id} className="admin-item">
              <TemplateForm
                org={org}
                template={t}
                onDone={async () => {
                  setEditing(null);
                  await reload();
                }}
                onCancel={() => setEditing(null)}
              />
            </li>
          ) : (
            <li key={t.id} className="admin-item" aria-label={t.display_name || t.name}>
              <div className="item-main">
                <strong>{t.display_name || t.name}</strong> <span className="muted">{t.name}</span>
                <span className="badge">{t.kind}</span>
                {t.builtin && <span className="badge">Built-in</span>}
                {t.description && <div>{t.description}</div>}
                <div className="item-meta muted">
                  {t.command && (
                    <span>
                      Command: <code>{t.command}</code>
                    </span>
                  )}
                  {t.parameters.length > 0 && (
                    <span>Parameters: {t.parameters.map((p) => p.name + (p.required ? " (required)" : "")).join(", ")}</span>
                  )}
                </div>
              </div>
              {!t.builtin && (
                <div className="item-actions">
                  <button type="button" onClick={() => setEditing(t.id)} aria-label={`Edit ${t.display_name || t.name}`}>
                    Edit
                  </button>
                  <DeleteButton
                    what={t.display_name || t.name}
                    onDelete={async () => {
                      await must(api.DELETE("/api/v2/templates/{template}", { params: { path: { template: t.id } } }));
                      await reload();
                    }}
                  />
                </div>
              )}
            </li>
          ),
        )}
      </ul>
      {data && (
        <details className="admin-create">
          <summary>Add a template</summary>
          <TemplateForm org={org} onDone={reload} />
        </details>
      )}
    </section>
  );
}

function TemplateForm({
  org,
  template,
  onDone,
  onCancel,
}: {
  org: string;
  template?: Template;
  onDone: () => Promise<void>;
  onCancel?: () => void;
}) {
  const [kind, setKind] = useState<string>(template?.kind ?? "external");
  const [name, setName] = useState(template?.name ?? "");
  const [displayName, setDisplayName] = useState(template?.display_name ?? "");
  const [description, setDescription] = useState(template?.description ?? "");
  const [command, setCommand] = useState(template?.command ?? "");
  const [parameters, setParameters] = useState<Parameter[]>(
    template?.parameters.map((p) => ({ ...p })) ?? [],
  );
  const action = useAction();

  function setParameter(index: number, change: Partial<Parameter>) {
    setParameters(parameters.map((p, i) => (i === index ? { ...p, ...change } : p)));
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    void action.run(async () => {
      const body = {
        name,
        display_name: displayName,
        description,
        parameters,
        command: kind === "command" ? command : null,
      };
      if (template) {
        await must(api.PATCH("/api/v2/templates/{template}", { params: { path: { template: template.id } }, body }));
      } else {
        await must(
          api.POST("/api/v2/organizations/{organization}/templates", {
            params: { path: { organization: org } },
            body: { ...body, kind },
          }),
        );
        setName("");
        setDisplayName("");
        setDescription("");
        setCommand("");
        setParameters([]);
      }
      await onDone();
    });
  }

  const title = template ? `Edit ${template.display_name || template.name}` : "New template";
  return (
    <form className="admin-form" noValidate onSubmit={submit} aria-label={title}>
      <h2>{title}</h2>
      <div className="fields">
        {!template && (
          <Field label="Kind" error={fieldError(action.error, "kind")}>
            {(id, d) => (
              <select id={id} aria-describedby={d} value={kind} onChange={(e) => setKind(e.target.value)}>
                <option value="external">External</option>
                <option value="command">Command (on the server)</option>
              </select>
            )}
          </Field>
        )}
        <Field label="Name" hint="Lowercase letters, digits and dashes." error={fieldError(action.error, "name")}>
          {(id, d) => <input id={id} aria-describedby={d} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Display name" error={fieldError(action.error, "display_name")}>
          {(id, d) => (
            <input id={id} aria-describedby={d} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          )}
        </Field>
        <Field label="Description" wide error={fieldError(action.error, "description")}>
          {(id, d) => (
            <textarea id={id} aria-describedby={d} rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        {kind === "command" && (
          <Field
            label="Command"
            wide
            hint="Runs unsandboxed on the server's host, as the server's user; parameters arrive as environment variables."
            error={fieldError(action.error, "command")}
          >
            {(id, d) => (
              <textarea id={id} aria-describedby={d} rows={2} className="mono" value={command} onChange={(e) => setCommand(e.target.value)} />
            )}
          </Field>
        )}
      </div>
      <fieldset>
        <legend>Parameters</legend>
        {parameters.length === 0 && <p className="muted">No parameters.</p>}
        {parameters.map((p, i) => (
          <div className="parameter" key={i} role="group" aria-label={`Parameter ${i + 1}`}>
            <Field label={`Parameter ${i + 1} name`} error={fieldError(action.error, `parameters.${i}.name`)}>
              {(id, d) => (
                <input id={id} aria-describedby={d} value={p.name} onChange={(e) => setParameter(i, { name: e.target.value })} />
              )}
            </Field>
            <Field label="Description" error={fieldError(action.error, `parameters.${i}.description`)}>
              {(id, d) => (
                <input
                  id={id}
                  aria-describedby={d}
                  value={p.description ?? ""}
                  onChange={(e) => setParameter(i, { description: e.target.value })}
                />
              )}
            </Field>
            <Field label="Default" error={fieldError(action.error, `parameters.${i}.default`)}>
              {(id, d) => (
                <input
                  id={id}
                  aria-describedby={d}
                  value={p.default ?? ""}
                  onChange={(e) => setParameter(i, { default: e.target.value })}
                />
              )}
            </Field>
            <Check label="Required" checked={!!p.required} onChange={(v) => setParameter(i, { required: v })} />
            <button
              type="button"
              onClick={() => setParameters(parameters.filter((_, j) => j !== i))}
              aria-label={`Remove parameter ${i + 1}`}
            >
              Remove
            </button>
          </div>
        ))}
        <button type="button" onClick={() => setParameters([...parameters, { name: "", description: "", default: "", required: false }])}>
          Add parameter
        </button>
      </fieldset>
      <ErrorAlert error={action.error} />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {template ? "Save template" : "Create template"}
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
