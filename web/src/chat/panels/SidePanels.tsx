// The panels beside a chat with a workspace: its uncommitted changes (live) and its desktop.
// Wide screens show them as a column of collapsible sections; on a phone a bar of buttons
// opens each as a full-screen sheet.
import { useCallback, useEffect, useId, useRef, useState, type MouseEvent, type ReactNode } from "react";
import type { Schemas } from "../../api/client";
import { Counts } from "../tools/DiffFiles";
import { DesktopPanelBody } from "./DesktopPanel";
import { GitPanelBody, gitTotals } from "./GitPanel";
import { useGitState } from "./gitState";
import "./SidePanels.css";

export interface SidePanelsProps {
  chat: Schemas["Chat"];
}

type PanelName = "git" | "desktop";

interface PanelProps {
  name: PanelName;
  title: string;
  sheet: PanelName | null;
  closeSheet: () => void;
  actions?: ReactNode;
  extra?: ReactNode;
  children: ReactNode;
}

function Panel({ name, title, sheet, closeSheet, actions, extra, children }: PanelProps) {
  const [open, setOpen] = useState(true);
  const bodyId = useId();
  const headingId = useId();
  const inSheet = sheet === name;
  const closeButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (inSheet) closeButton.current?.focus();
  }, [inSheet]);

  useEffect(() => {
    if (!inSheet) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") closeSheet();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [inSheet, closeSheet]);

  return (
    <section
      className="panel"
      data-panel={name}
      data-open={open || inSheet}
      aria-labelledby={headingId}
      {...(inSheet ? { role: "dialog", "aria-modal": true } : {})}
    >
      <header className="panel-head">
        <h2 id={headingId} className="panel-title">
          <button
            type="button"
            className="panel-toggle"
            aria-expanded={open}
            aria-controls={bodyId}
            onClick={() => setOpen(!open)}
          >
            <span className="panel-chevron" aria-hidden="true">
              ▸
            </span>
            {title}
          </button>
        </h2>
        {extra}
        <div className="panel-actions">
          {actions}
          <button type="button" ref={closeButton} className="panel-close" onClick={closeSheet}>
            Close
          </button>
        </div>
      </header>
      <div className="panel-body" id={bodyId}>
        {children}
      </div>
    </section>
  );
}

export function SidePanels({ chat }: SidePanelsProps) {
  if (!chat.workspace_id) return null;
  // A fresh set of panels (sockets, desktop) for each chat.
  return <WorkspacePanels key={chat.id} chat={chat} />;
}

function WorkspacePanels({ chat }: SidePanelsProps) {
  const git = useGitState(chat.id, true);
  const [sheet, setSheet] = useState<PanelName | null>(null);
  const opener = useRef<HTMLButtonElement | null>(null);

  const totals = gitTotals(git.repos);
  const counts = git.loaded ? <Counts {...totals} /> : null;
  const open = (name: PanelName) => (e: MouseEvent<HTMLButtonElement>) => {
    opener.current = e.currentTarget;
    setSheet(name);
  };
  const closeSheet = useCallback(() => {
    setSheet(null);
    opener.current?.focus();
  }, []);

  return (
    <aside className="side-panels" aria-label="Workspace" data-sheet={sheet ?? undefined}>
      <div className="panel-bar">
        <button type="button" onClick={open("git")}>
          Changes {counts}
        </button>
        <button type="button" onClick={open("desktop")}>
          Desktop
        </button>
      </div>
      <Panel
        name="git"
        title="Changes"
        sheet={sheet}
        closeSheet={closeSheet}
        extra={counts}
        actions={
          <button type="button" onClick={git.refresh} disabled={git.connection !== "live"}>
            Refresh
          </button>
        }
      >
        <GitPanelBody state={git} />
      </Panel>
      <Panel name="desktop" title="Desktop" sheet={sheet} closeSheet={closeSheet}>
        <DesktopPanelBody chatId={chat.id} workspaceId={chat.workspace_id} />
      </Panel>
    </aside>
  );
}
