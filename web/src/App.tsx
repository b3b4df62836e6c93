// The pages: sign-in outside the shell; everything else inside it, for a signed-in user.
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { AdminRoutes } from "./admin/AdminRoutes";
import { ChatView } from "./chat/ChatView";
import { NewChat } from "./chats/NewChat";
import { Shell } from "./layout/Shell";
import { SignIn } from "./pages/SignIn";
import { SessionProvider, useSession } from "./session";

function RequireUser({ children }: { children: React.ReactNode }) {
  const { user, loading } = useSession();
  const location = useLocation();
  if (loading) return <p className="loading">Loading…</p>;
  if (!user) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

export function App() {
  return (
    <SessionProvider>
      <Routes>
        <Route path="/login" element={<SignIn />} />
        <Route
          element={
            <RequireUser>
              <Shell />
            </RequireUser>
          }
        >
          <Route index element={<NewChat />} />
          <Route path="new" element={<NewChat />} />
          <Route path="chats/:chatId" element={<ChatView />} />
          <Route path="admin/*" element={<AdminRoutes />} />
          <Route path="*" element={<p className="empty">Page not found.</p>} />
        </Route>
      </Routes>
    </SessionProvider>
  );
}
