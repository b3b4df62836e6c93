// The new-chat page: a prompt, attachments, a model, a workspace and plan mode; creating the
// chat lands on its page.
import { useRef, useState, type DragEvent, type FormEvent, type KeyboardEvent } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorText, must, type Schemas } from "../api/client";
import { useSession } from "../session";
import { useAttachments } from "./attachments";
import {
  ModelPicker,
  NO_WORKSPACE,
  useModels,
  useWorkspaceSources,
  WorkspacePicker,
  type WorkspaceChoice,
} from "./pickers";
import "./NewChat.css";

type InputPart = Schemas["ChatInputPart"];

const PART: InputPart = {
  type: "text",
  text: null,
  file_id: null,
  file_name: null,
  start_line: null,
  end_line: null,
  content: null,
};

const CREATE: Omit<Schemas["CreateChatRequest"], "organization_id" | "content"> = {
  system_prompt: null,
  workspace_id: null,
  model_config_id: null,
  mcp_server_ids: null,
  labels: null,
  unsafe_dynamic_tools: null,
  plan_mode: null,
  client_type: "ui",
};

const ACCEPT =
  "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/markdown,text/csv,application/json,.md,.csv,.json,.txt";

export function NewChat() {
  const { user } = useSession();
  const organizationId = user?.organization_ids[0];
  const navigate = useNavigate();
  const [text, setText] = useState("");
  const [planMode, setPlanMode] = useState(false);
  const models = useModels();
  const [model, setModel] = useState<string | null>(null);
  const [workspace, setWorkspace] = useState<WorkspaceChoice>(NO_WORKSPACE);
  const [sourcesKey, setSourcesKey] = useState(0);
  const sources = useWorkspaceSources(organizationId, sourcesKey);
  const attachments = useAttachments(organizationId);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  const chosenModel = model ?? models.defaultId;
  const uploading = attachments.items.some((a) => a.state === "uploading");
  const ready = attachments.items.filter((a) => a.state === "ready");
  const failed = attachments.items.some((a) => a.state === "failed");
  const canSend = !busy && !uploading && !failed && (text.trim() !== "" || ready.length > 0);

  async function create() {
    if (!canSend) return;
    if (!organizationId) {
      setError("You belong to no organization, so there is nowhere to create a chat.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      let workspaceId: string | null = null;
      if (workspace.mode === "existing") {
        if (!workspace.workspaceId) throw new Error("Choose a workspace.");
        workspaceId = workspace.workspaceId;
      } else if (workspace.mode === "template") {
        if (!workspace.templateId) throw new Error("Choose a template.");
        const created = await must(
          api.POST("/api/v2/organizations/{organization}/members/{user}/workspaces", {
            params: { path: { organization: organizationId, user: "me" } },
            body: {
              template_id: workspace.templateId,
              name: workspace.name.trim() || null,
              rich_parameter_values: Object.entries(workspace.parameters).map(([name, value]) => ({ name, value })),
            },
          }),
        );
        workspaceId = created.id;
        // Made once: a retry after a failed create uses it rather than making another.
        setWorkspace({ ...NO_WORKSPACE, mode: "existing", workspaceId: created.id });
        setSourcesKey((k) => k + 1);
      }
      const content: InputPart[] = [];
      if (text.trim()) content.push({ ...PART, type: "text", text });
      for (const a of ready) content.push({ ...PART, type: "file", file_id: a.fileId ?? null });
      const chat = await must(
        api.POST("/api/experimental/chats", {
          body: {
            ...CREATE,
            organization_id: organizationId,
            content,
            workspace_id: workspaceId,
            model_config_id: chosenModel || null,
            plan_mode: planMode ? "plan" : null,
          },
        }),
      );
      attachments.clear();
      navigate(`/chats/${chat.id}`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void create();
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void create();
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length) attachments.add(event.dataTransfer.files);
  }

  return (
    <div className="new-chat">
      <h1 className="page-title">New chat</h1>
      <form
        className={`new-chat-form${dragging ? " dragging" : ""}`}
        onSubmit={onSubmit}
        onDragOver={(e) => {
          if (e.dataTransfer.types.includes("Files")) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        aria-busy={busy}
      >
        <label htmlFor="new-chat-prompt" className="new-chat-label">
          What should the agent do?
        </label>
        <textarea
          id="new-chat-prompt"
          rows={6}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          onPaste={(e) => {
            if (e.clipboardData.files.length) {
              e.preventDefault();
              attachments.add(e.clipboardData.files);
            }
          }}
          placeholder="Describe the task. Enter sends, Shift+Enter adds a line. Paste or drop files to attach them."
          aria-describedby={error ? "new-chat-error" : undefined}
        />
        {attachments.items.length > 0 && (
          <ul className="new-chat-attachments" aria-label="Attachments">
            {attachments.items.map((a) => (
              <li key={a.key} className={`attachment-chip ${a.state}`}>
                {a.preview ? (
                  <img src={a.preview} alt="" width={32} height={32} />
                ) : (
                  <span className="attachment-icon" aria-hidden="true">
                    {(a.file.name.split(".").pop() ?? "").slice(0, 4).toUpperCase() || "FILE"}
                  </span>
                )}
                <span className="attachment-name" title={a.file.name}>
                  {a.file.name}
                </span>
                <span className={a.state === "failed" ? "error attachment-state" : "muted attachment-state"}>
                  {a.state === "uploading" ? "Uploading…" : a.state === "failed" ? `Failed: ${a.error}` : "Ready"}
                </span>
                <button type="button" className="attachment-remove" onClick={() => attachments.remove(a.key)}>
                  <span aria-hidden="true">×</span>
                  <span className="visually-hidden">Remove {a.file.name}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
        <div className="new-chat-options">
          <ModelPicker choice={models} value={chosenModel} onChange={setModel} />
          <label className="new-chat-check">
            <input type="checkbox" checked={planMode} onChange={(e) => setPlanMode(e.target.checked)} />
            Plan mode
          </label>
          <button type="button" onClick={() => fileInput.current?.click()}>
            Attach files
          </button>
          <input
            ref={fileInput}
            type="file"
            multiple
            accept={ACCEPT}
            hidden
            aria-label="Attach files"
            onChange={(e) => {
              if (e.target.files?.length) attachments.add(e.target.files);
              e.target.value = "";
            }}
          />
        </div>
        <WorkspacePicker
          value={workspace}
          onChange={setWorkspace}
          workspaces={sources.workspaces}
          templates={sources.templates}
        />
        {(models.error || sources.error) && (
          <p role="alert" className="error">
            {models.error ?? sources.error}
          </p>
        )}
        {error && (
          <p id="new-chat-error" role="alert" className="error new-chat-error">
            {error}
          </p>
        )}
        <div className="new-chat-actions">
          {failed && <span className="muted">Remove the attachments that failed to send.</span>}
          <button type="submit" className="primary" disabled={!canSend}>
            {busy ? "Creating…" : "Send"}
          </button>
        </div>
      </form>
    </div>
  );
}
