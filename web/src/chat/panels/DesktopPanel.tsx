// The workspace's desktop through noVNC, opened on demand. The socket carries raw RFB bytes.
import type RFB from "@novnc/novnc";
import { useEffect, useRef, useState } from "react";
import { api } from "../../api/client";
import { socketUrl } from "../../api/socket";

type Phase = "idle" | "connecting" | "connected" | "closed" | "failed";

/** Why the desktop could not be opened: the browser is never shown the server's refusal, so
 * ask about the workspace's agent to tell "no desktop" from "agent away". */
async function whyFailed(workspaceId: string | null | undefined): Promise<string> {
  if (!workspaceId) return "This chat has no workspace.";
  try {
    const { data } = await api.GET("/api/v2/workspaces/{workspace}", {
      params: { path: { workspace: workspaceId } },
    });
    const status = data?.agent?.status;
    if (status && status !== "connected") {
      return `The workspace's agent is ${status}; the desktop opens once it is connected.`;
    }
  } catch {
    // fall through to the common case
  }
  return "This workspace has no desktop.";
}

export function DesktopPanelBody({ chatId, workspaceId }: { chatId: string; workspaceId?: string | null }) {
  const screen = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [phase, setPhase] = useState<Phase>("idle");
  const [problem, setProblem] = useState<string>();
  const [viewOnly, setViewOnly] = useState(false);

  useEffect(() => () => rfb.current?.disconnect(), []);

  async function connect() {
    if (!screen.current || rfb.current) return;
    setPhase("connecting");
    setProblem(undefined);
    let opened = false;
    try {
      const { default: Client } = await import("@novnc/novnc");
      const url = socketUrl(`/api/experimental/chats/${encodeURIComponent(chatId)}/stream/desktop`);
      const client = new Client(screen.current, url, { shared: true });
      client.scaleViewport = true;
      client.resizeSession = false;
      client.background = "transparent";
      client.viewOnly = viewOnly;
      client.addEventListener("connect", () => {
        opened = true;
        setPhase("connected");
      });
      client.addEventListener("disconnect", (event) => {
        rfb.current = null;
        const clean = (event as CustomEvent<{ clean: boolean }>).detail?.clean;
        if (opened) {
          setPhase("closed");
          if (!clean) setProblem("The connection to the desktop was lost.");
          return;
        }
        setPhase("failed");
        void whyFailed(workspaceId).then(setProblem);
      });
      client.addEventListener("securityfailure", (event) => {
        const reason = (event as CustomEvent<{ reason?: string }>).detail?.reason;
        setProblem(`The desktop refused the connection${reason ? `: ${reason}` : "."}`);
      });
      rfb.current = client;
    } catch (err) {
      rfb.current = null;
      setPhase("failed");
      setProblem(err instanceof Error ? err.message : String(err));
    }
  }

  function disconnect() {
    rfb.current?.disconnect();
  }

  function toggleViewOnly() {
    const next = !viewOnly;
    setViewOnly(next);
    if (rfb.current) rfb.current.viewOnly = next;
  }

  const active = phase === "connecting" || phase === "connected";
  return (
    <div className="desktop-panel">
      <div className="desktop-actions">
        {active ? (
          <button type="button" onClick={disconnect}>
            Disconnect
          </button>
        ) : (
          <button type="button" className="primary" onClick={() => void connect()}>
            {phase === "idle" ? "Connect to desktop" : "Connect again"}
          </button>
        )}
        <label className="desktop-viewonly">
          <input type="checkbox" checked={viewOnly} onChange={toggleViewOnly} /> View only
        </label>
        {phase === "connecting" && (
          <span className="muted" role="status">
            Connecting…
          </span>
        )}
        {phase === "connected" && (
          <span className="desktop-live" role="status">
            Connected
          </span>
        )}
      </div>
      {problem && (
        <p className={phase === "failed" ? "desktop-problem" : "muted"} role="alert">
          {problem}
        </p>
      )}
      <div
        ref={screen}
        className="desktop-screen"
        data-phase={phase}
        aria-label="Workspace desktop"
        role="application"
      />
    </div>
  );
}
