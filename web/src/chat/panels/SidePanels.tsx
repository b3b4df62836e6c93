// The panels beside a chat with a workspace: its diff and its desktop (placeholder: the panels
// work replaces the body).
import type { Schemas } from "../../api/client";

export interface SidePanelsProps {
  chat: Schemas["Chat"];
}

export function SidePanels({ chat }: SidePanelsProps) {
  if (!chat.workspace_id) return null;
  return <aside className="side-panels" aria-label="Workspace" />;
}
