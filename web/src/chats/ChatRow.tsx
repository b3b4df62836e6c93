// One chat in the list: its title, status, unread and pinned marks, labels, and its menu.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { Link } from "react-router-dom";
import type { Chat, ChatStatus } from "./listing";

const STATUS_LABELS: Record<ChatStatus, string> = {
  waiting: "Idle",
  pending: "Pending",
  running: "Running",
  paused: "Paused",
  completed: "Completed",
  error: "Error",
  requires_action: "Needs action",
};

export function statusLabel(status: ChatStatus): string {
  return STATUS_LABELS[status] ?? status;
}

export function StatusBadge({ status }: { status: ChatStatus }) {
  return (
    <span className={`chat-status status-${status}`}>
      <span className="chat-status-dot" aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
}

function PinIcon() {
  return (
    <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
      <path
        fill="currentColor"
        d="M10.5 1.5 14.5 5.5 13 6.2 10.6 8.6 10.9 11.6 9.8 12.7 7.1 10 3.4 13.7 2.3 12.6 6 8.9 3.3 6.2 4.4 5.1 7.4 5.4 9.8 3z"
      />
    </svg>
  );
}

/** Pull request and changed lines, when the chat has any. */
function DiffSummary({ chat }: { chat: Chat }) {
  const diff = chat.diff_status;
  if (!diff) return null;
  const state = diff.pull_request_draft ? "draft" : diff.pull_request_state;
  const pr = diff.pr_number ? `#${diff.pr_number}${state ? ` ${state}` : ""}` : null;
  const lines = diff.additions || diff.deletions ? `+${diff.additions} −${diff.deletions}` : null;
  if (!pr && !lines) return null;
  return (
    <span className="chat-diff" title={diff.pull_request_title || undefined}>
      {pr && <span>PR {pr}</span>}
      {lines && (
        <span>
          <span className="visually-hidden">Changed lines: </span>
          {lines}
        </span>
      )}
    </span>
  );
}

export interface RowActions {
  togglePin: (chat: Chat) => void;
  move: (chat: Chat, by: -1 | 1) => void;
  toggleArchived: (chat: Chat) => void;
  setLabels: (chat: Chat, labels: Record<string, string>) => void;
  filterByLabel: (key: string, value: string) => void;
}

interface RowProps {
  chat: Chat;
  current: boolean;
  menuOpen: boolean;
  onMenu: (open: boolean) => void;
  /** The highest pin order among loaded chats (the last pinned one cannot move down). */
  lastPin: number;
  busy: boolean;
  actions: RowActions;
}

export function ChatRow({ chat, current, menuOpen, onMenu, lastPin, busy, actions }: RowProps) {
  const pinned = (chat.pin_order ?? 0) > 0;
  const labels = Object.entries(chat.labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const menuButton = useRef<HTMLButtonElement>(null);
  const menuId = `chat-menu-${chat.id}`;
  return (
    <div className={`chat-row${current ? " current" : ""}`}>
      <div className="chat-row-top">
        <Link
          to={`/chats/${chat.id}`}
          className="chat-title"
          aria-current={current ? "page" : undefined}
          title={chat.title}
        >
          {chat.title || "Untitled"}
        </Link>
        {pinned && (
          <span className="chat-pinned" title="Pinned">
            <PinIcon />
            <span className="visually-hidden">Pinned</span>
          </span>
        )}
        {chat.has_unread && (
          <span className="chat-unread" title="Unread">
            <span className="visually-hidden">Unread</span>
          </span>
        )}
        <button
          ref={menuButton}
          type="button"
          className="chat-menu-button"
          aria-label={`Actions for ${chat.title}`}
          aria-expanded={menuOpen}
          aria-controls={menuOpen ? menuId : undefined}
          onClick={() => onMenu(!menuOpen)}
        >
          <span aria-hidden="true">⋯</span>
        </button>
      </div>
      {chat.last_turn_summary && <p className="chat-summary">{chat.last_turn_summary}</p>}
      <div className="chat-row-meta">
        <StatusBadge status={chat.status} />
        <DiffSummary chat={chat} />
        {labels.map(([key, value]) => (
          <button
            key={key}
            type="button"
            className="label-chip"
            onClick={() => actions.filterByLabel(key, value)}
          >
            <span className="visually-hidden">Filter by label </span>
            {key}:{value}
          </button>
        ))}
      </div>
      {menuOpen && (
        <RowMenu
          id={menuId}
          chat={chat}
          pinned={pinned}
          lastPin={lastPin}
          busy={busy}
          actions={actions}
          close={() => {
            onMenu(false);
            menuButton.current?.focus();
          }}
        />
      )}
    </div>
  );
}

interface MenuProps {
  id: string;
  chat: Chat;
  pinned: boolean;
  lastPin: number;
  busy: boolean;
  actions: RowActions;
  close: () => void;
}

function RowMenu({ id, chat, pinned, lastPin, busy, actions, close }: MenuProps) {
  const box = useRef<HTMLDivElement>(null);
  const keyInput = useRef<HTMLInputElement>(null);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const labels = chat.labels ?? {};

  // Opened from its button: focus moves in. (Scrolled back into view: focus stays put.)
  useEffect(() => {
    const row = box.current?.closest(".chat-row");
    if (row && row.contains(document.activeElement)) {
      box.current?.querySelector<HTMLElement>("button:not(:disabled)")?.focus();
    }
  }, []);

  function onKeyDown(event: KeyboardEvent) {
    if (event.key === "Escape") {
      event.stopPropagation();
      close();
    }
  }

  function addLabel(event: FormEvent) {
    event.preventDefault();
    const k = key.trim();
    const v = value.trim();
    if (!k || !v) return;
    actions.setLabels(chat, { ...labels, [k]: v });
    setKey("");
    setValue("");
  }

  function removeLabel(name: string) {
    const next = { ...labels };
    delete next[name];
    actions.setLabels(chat, next);
    // The button goes with the label: focus stays in the menu.
    keyInput.current?.focus();
  }

  const order = chat.pin_order ?? 0;
  return (
    <div
      id={id}
      ref={box}
      className="chat-menu"
      role="group"
      aria-label={`Actions for ${chat.title}`}
      onKeyDown={onKeyDown}
    >
      <div className="chat-menu-actions">
        <button type="button" disabled={busy || chat.archived} onClick={() => actions.togglePin(chat)}>
          {pinned ? "Unpin" : "Pin"}
        </button>
        {pinned && (
          <>
            <button type="button" disabled={busy || order <= 1} onClick={() => actions.move(chat, -1)}>
              Move up
            </button>
            <button
              type="button"
              disabled={busy || order >= lastPin}
              onClick={() => actions.move(chat, 1)}
            >
              Move down
            </button>
          </>
        )}
        <button type="button" disabled={busy} onClick={() => actions.toggleArchived(chat)}>
          {chat.archived ? "Unarchive" : "Archive"}
        </button>
        <button type="button" onClick={close}>
          Close
        </button>
      </div>
      <div className="chat-menu-labels">
        {Object.entries(labels).map(([k, v]) => (
          <button
            key={k}
            type="button"
            className="label-chip removable"
            disabled={busy}
            onClick={() => removeLabel(k)}
          >
            <span className="visually-hidden">Remove label </span>
            {k}:{v} <span aria-hidden="true">×</span>
          </button>
        ))}
        <form className="chat-label-form" onSubmit={addLabel}>
          <label>
            <span className="visually-hidden">Label key</span>
            <input ref={keyInput} value={key} onChange={(e) => setKey(e.target.value)} placeholder="key" size={6} />
          </label>
          <label>
            <span className="visually-hidden">Label value</span>
            <input
              value={value}
              onChange={(e) => setValue(e.target.value)}
              placeholder="value"
              size={6}
            />
          </label>
          <button type="submit" disabled={busy || !key.trim() || !value.trim()}>
            Add label
          </button>
        </form>
      </div>
    </div>
  );
}
