// The chat workspace's git state, live from /stream/git: the first message after each
// (re)connect, and the answer to a refresh, hold every repository; the others only the
// repositories that changed (a removed one once, with `removed`).
import { useCallback, useEffect, useRef, useState } from "react";
import type { Schemas } from "../../api/client";
import { LiveSocket } from "../../api/socket";

export type GitRepo = Schemas["WorkspaceAgentRepoChanges"];
type ServerMessage = Schemas["WorkspaceAgentGitServerMessage"];
/** What the client may send (the server document has no schema for it). */
type ClientMessage = { type: "refresh" };

export type Connection = "connecting" | "live" | "waiting";

export interface GitState {
  repos: GitRepo[];
  connection: Connection;
  /** The last `error` message, or the note of the last `changes` message (what was cut). */
  message?: string;
  error?: string;
  scannedAt?: string;
  /** Received at least one full state since the panel opened. */
  loaded: boolean;
  refresh: () => void;
}

export function useGitState(chatId: string, enabled: boolean): GitState {
  const [repos, setRepos] = useState<Map<string, GitRepo>>(new Map());
  const [connection, setConnection] = useState<Connection>("connecting");
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<string>();
  const [scannedAt, setScannedAt] = useState<string>();
  const [loaded, setLoaded] = useState(false);
  const socket = useRef<LiveSocket<ServerMessage> | null>(null);
  const full = useRef(true);

  useEffect(() => {
    if (!enabled) return;
    setConnection("connecting");
    const live = new LiveSocket<ServerMessage>({
      path: () => `/api/experimental/chats/${encodeURIComponent(chatId)}/stream/git`,
      onOpen: () => {
        full.current = true;
        setConnection("live");
      },
      onClose: () => setConnection("waiting"),
      onMessage: (m) => {
        if (m.type === "error") {
          setError(m.message ?? "The workspace's git state could not be read.");
          return;
        }
        if (m.type !== "changes") return;
        setError(undefined);
        setMessage(m.message ?? undefined);
        setScannedAt(m.scanned_at ?? undefined);
        const replace = full.current;
        full.current = false;
        setLoaded(true);
        setRepos((old) => {
          const next = new Map(replace ? [] : old);
          for (const repo of m.repositories ?? []) {
            if (repo.removed) next.delete(repo.repo_root);
            else next.set(repo.repo_root, repo);
          }
          return next;
        });
      },
    });
    socket.current = live;
    return () => {
      live.close();
      socket.current = null;
    };
  }, [chatId, enabled]);

  const refresh = useCallback(() => {
    full.current = true;
    const request: ClientMessage = { type: "refresh" };
    socket.current?.send(request);
  }, []);

  const sorted = [...repos.values()].sort((a, b) => a.repo_root.localeCompare(b.repo_root));
  return { repos: sorted, connection, message, error, scannedAt, loaded, refresh };
}
