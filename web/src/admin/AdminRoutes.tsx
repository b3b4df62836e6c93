// The site owner's pages under /admin: a sub-navigation and one page per kind of setting.
import { Link, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { useSession } from "../session";
import { ModelConfigsPage } from "./ModelConfigsPage";
import { ProvidersPage } from "./ProvidersPage";
import { TemplatesPage } from "./TemplatesPage";
import { UsageLimitsPage } from "./UsageLimitsPage";
import { UsersPage } from "./UsersPage";
import "./Admin.css";

const SECTIONS = [
  { path: "providers", label: "Providers" },
  { path: "models", label: "Models" },
  { path: "usage-limits", label: "Usage limits" },
  { path: "templates", label: "Templates" },
  { path: "users", label: "Users and tokens" },
];

export function AdminRoutes() {
  const { isOwner } = useSession();
  const { pathname } = useLocation();
  // /admin itself shows the first section.
  const atIndex = /^\/admin\/?$/.test(pathname);
  if (!isOwner) {
    return (
      <section className="admin not-allowed">
        <h1 className="page-title">Admin</h1>
        <p role="alert">
          You are not allowed to see the admin pages: they are for the site&apos;s owners.
        </p>
        <p>
          <Link to="/">Back to your chats</Link>
        </p>
      </section>
    );
  }
  return (
    <div className="admin">
      <nav className="admin-nav" aria-label="Admin sections">
        {SECTIONS.map((s, i) =>
          atIndex && i === 0 ? (
            <Link key={s.path} to={`/admin/${s.path}`} className="active" aria-current="page">
              {s.label}
            </Link>
          ) : (
            <NavLink key={s.path} to={`/admin/${s.path}`}>
              {s.label}
            </NavLink>
          ),
        )}
      </nav>
      <div className="admin-page">
        <Routes>
          <Route index element={<ProvidersPage />} />
          <Route path="providers" element={<ProvidersPage />} />
          <Route path="models" element={<ModelConfigsPage />} />
          <Route path="usage-limits" element={<UsageLimitsPage />} />
          <Route path="templates" element={<TemplatesPage />} />
          <Route path="users" element={<UsersPage />} />
          <Route path="*" element={<p className="empty">No such admin page.</p>} />
        </Routes>
      </div>
    </div>
  );
}
