// Who is signed in: the user behind the session cookie, loaded once and on sign-in.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api, ApiError, must, unauthorized, type Schemas } from "./api/client";

export type User = Schemas["User"];

interface Session {
  user: User | null;
  loading: boolean;
  /** The user is a site owner (the admin pages are theirs). */
  isOwner: boolean;
  reload: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);

  const reload = useCallback(async () => {
    try {
      const me = await must(api.GET("/api/v2/users/{user}", { params: { path: { user: "me" } } }));
      setUser(me);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) throw err;
      setUser(null);
    } finally {
      setLoading(false);
    }
  }, []);

  const signOut = useCallback(async () => {
    await api.POST("/api/v2/users/logout");
    setUser(null);
  }, []);

  useEffect(() => {
    void reload();
    const lost = () => setUser(null);
    unauthorized.addEventListener("unauthorized", lost);
    return () => unauthorized.removeEventListener("unauthorized", lost);
  }, [reload]);

  const isOwner = !!user?.roles.some((r) => r.name === "owner");
  return (
    <SessionContext.Provider value={{ user, loading, isOwner, reload, signOut }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
