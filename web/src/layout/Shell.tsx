// The frame of every signed-in page: a header, the chat list beside the page, the shortcuts.
//
// On a narrow screen (a phone) only one of the two shows: the list at "/", the page elsewhere
// (with a way back to the list in the header).
import { useEffect, useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { ChatList } from "../chats/ChatList";
import { useSession } from "../session";
import { saveTheme, storedTheme, type Theme } from "../theme";
import "./Shell.css";

const THEMES: Theme[] = ["system", "light", "dark"];
const THEME_NAMES: Record<Theme, string> = { system: "System", light: "Light", dark: "Dark" };

/** Shortcuts that work anywhere: `/` search, Alt+N new chat (the chat view adds its own). */
function useGlobalShortcuts() {
  const navigate = useNavigate();
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      const target = event.target as HTMLElement | null;
      const typing =
        !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
      if (event.key === "/" && !typing) {
        const search = document.getElementById("chat-search");
        if (search) {
          event.preventDefault();
          search.focus();
        }
      } else if (event.altKey && (event.key === "n" || event.key === "N")) {
        event.preventDefault();
        navigate("/new");
      }
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [navigate]);
}

export function Shell() {
  const { user, isOwner, signOut } = useSession();
  const location = useLocation();
  const navigate = useNavigate();
  const [theme, setTheme] = useState<Theme>(storedTheme());
  useGlobalShortcuts();

  const atHome = location.pathname === "/";
  const inAdmin = location.pathname.startsWith("/admin");

  function changeTheme(next: Theme) {
    setTheme(next);
    saveTheme(next);
  }

  return (
    <div className="shell" data-home={atHome ? "yes" : "no"}>
      <header className="topbar">
        <Link to="/" className="brand" aria-label="chatd home">
          <img src="/favicon.svg" alt="" width={22} height={22} />
          <span>chatd</span>
        </Link>
        {!atHome && (
          <Link to="/" className="back-to-list">
            ← Chats
          </Link>
        )}
        <nav className="topnav" aria-label="Main">
          <NavLink
            to="/new"
            className="button primary new-chat"
            title="New chat (Alt+N)"
            aria-label="New chat"
          >
            New<span className="wide-only"> chat</span>
          </NavLink>
          {isOwner && (
            <NavLink to="/admin" className="button">
              Admin
            </NavLink>
          )}
          <button
            type="button"
            className="button theme-toggle"
            onClick={() => changeTheme(THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]!)}
            aria-label={`Theme: ${THEME_NAMES[theme]} (change)`}
            title="Change theme"
          >
            <span aria-hidden="true">◐</span>
            <span className="wide-only">{THEME_NAMES[theme]}</span>
          </button>
          <button
            type="button"
            className="button"
            onClick={async () => {
              await signOut();
              navigate("/login");
            }}
            title={user ? `Signed in as ${user.username}` : undefined}
          >
            Sign out
          </button>
        </nav>
      </header>
      <div className="columns">
        {!inAdmin && (
          <aside className="sidebar" aria-label="Chats">
            <ChatList />
          </aside>
        )}
        <main className="page">
          <Outlet />
        </main>
      </div>
    </div>
  );
}
