// Users (list and create) and the signed-in owner's own API tokens: a new token is shown once,
// with a copy button; afterwards only its name and dates are listed.
import { useState, type FormEvent } from "react";
import { api, must, type Schemas } from "../api/client";
import { DeleteButton, ErrorAlert, Field, fieldError, formatDate, numberOrUndefined, useAction, useLoad } from "./common";

type User = Schemas["User"];

async function loadUsers(): Promise<User[]> {
  return (await must(api.GET("/api/v2/users"))).users;
}

async function loadTokens(): Promise<Schemas["APIKey"][]> {
  return must(api.GET("/api/v2/users/{user}/keys/tokens", { params: { path: { user: "me" } } }));
}

export function UsersPage() {
  return (
    <>
      <Users />
      <Tokens />
    </>
  );
}

function Users() {
  const { data, error, reload } = useLoad(loadUsers);
  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title" className="page-title">
        Users
      </h1>
      <ErrorAlert error={error} />
      <div className="table-wrap" role="region" aria-label="Users table" tabIndex={0}>
        <table className="admin-table">
          <caption className="visually-hidden">Users</caption>
          <thead>
            <tr>
              <th scope="col">Username</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {data?.map((u) => (
              <tr key={u.id}>
                <td>
                  {u.username}
                  {u.name && <span className="muted"> ({u.name})</span>}
                </td>
                <td>{u.email}</td>
                <td>{u.roles.some((r) => r.name === "owner") ? "Owner" : "Member"}</td>
                <td>{u.status}</td>
                <td>{formatDate(u.last_seen_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <details className="admin-create">
        <summary>Add a user</summary>
        <NewUserForm onDone={reload} />
      </details>
    </section>
  );
}

function NewUserForm({ onDone }: { onDone: () => Promise<void> }) {
  const [email, setEmail] = useState("");
  const [username, setUsername] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const action = useAction();

  function submit(event: FormEvent) {
    event.preventDefault();
    setCreated(null);
    void action.run(async () => {
      const user = await must(api.POST("/api/v2/users", { body: { email, username, name, password, organization_ids: null } }));
      setCreated(user.username);
      setEmail("");
      setUsername("");
      setName("");
      setPassword("");
      await onDone();
    });
  }

  return (
    <form className="admin-form" noValidate onSubmit={submit} aria-label="New user">
      <h2>New user</h2>
      <div className="fields">
        <Field label="Email" error={fieldError(action.error, "email")}>
          {(id, d) => (
            <input id={id} aria-describedby={d} type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />
          )}
        </Field>
        <Field label="Username" error={fieldError(action.error, "username")}>
          {(id, d) => (
            <input id={id} aria-describedby={d} autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
          )}
        </Field>
        <Field label="Full name" error={fieldError(action.error, "name")}>
          {(id, d) => <input id={id} aria-describedby={d} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Password" error={fieldError(action.error, "password")}>
          {(id, d) => (
            <input
              id={id}
              aria-describedby={d}
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
      </div>
      <ErrorAlert error={action.error} />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          Create user
        </button>
        {created && <span role="status">Created {created}.</span>}
      </div>
    </form>
  );
}

const LIFETIMES = [
  { days: 7, label: "7 days" },
  { days: 30, label: "30 days" },
  { days: 90, label: "90 days" },
  { days: 365, label: "1 year" },
];
const NANOS_PER_DAY = 86_400 * 1e9;

function Tokens() {
  const { data, error, reload } = useLoad(loadTokens);
  const [tokenName, setTokenName] = useState("");
  const [days, setDays] = useState("30");
  const [fresh, setFresh] = useState<{ name: string; key: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const action = useAction();

  function submit(event: FormEvent) {
    event.preventDefault();
    void action.run(async () => {
      const made = await must(
        api.POST("/api/v2/users/{user}/keys/tokens", {
          params: { path: { user: "me" } },
          body: { token_name: tokenName, lifetime: (numberOrUndefined(days) ?? 30) * NANOS_PER_DAY, scope: null },
        }),
      );
      setFresh({ name: tokenName, key: made.key });
      setCopied(false);
      setTokenName("");
      await reload();
    });
  }

  async function copy(key: string) {
    try {
      await navigator.clipboard.writeText(key);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  }

  return (
    <section className="admin-block" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Your API tokens</h2>
      <p className="muted">Tokens act as you from the CLI or other clients.</p>
      <ErrorAlert error={error} />
      {fresh && (
        <div className="new-token" role="region" aria-label="Token created">
          <p>
            <strong>Token {fresh.name ? `"${fresh.name}"` : ""} created.</strong> Copy it now: it is not shown
            again.
          </p>
          <code className="token-value" data-testid="new-token">
            {fresh.key}
          </code>
          <div className="form-actions">
            <button type="button" onClick={() => copy(fresh.key)}>
              Copy token
            </button>
            <button type="button" onClick={() => setFresh(null)}>
              Done
            </button>
            {copied && <span role="status">Copied.</span>}
          </div>
        </div>
      )}
      {data && data.length === 0 && <p className="empty">You have no API tokens.</p>}
      <ul className="admin-list" aria-label="API tokens">
        {data?.map((t) => (
          <li key={t.id} className="admin-item" aria-label={`Token ${t.token_name || t.id}`}>
            <div className="item-main">
              <strong>{t.token_name || "(unnamed)"}</strong> <span className="muted">{t.id}</span>
              <div className="item-meta muted">
                <span>Created {formatDate(t.created_at)}</span>
                <span>Expires {formatDate(t.expires_at)}</span>
                <span>Last used {formatDate(t.last_used)}</span>
              </div>
            </div>
            <div className="item-actions">
              <DeleteButton
                what={`token ${t.token_name || t.id}`}
                onDelete={async () => {
                  await must(
                    api.DELETE("/api/v2/users/{user}/keys/{keyid}", { params: { path: { user: "me", keyid: t.id } } }),
                  );
                  if (fresh?.key.startsWith(`${t.id}-`)) setFresh(null);
                  await reload();
                }}
              />
            </div>
          </li>
        ))}
      </ul>
      <form className="admin-form" noValidate onSubmit={submit} aria-label="New token">
        <h3>New token</h3>
        <div className="fields">
          <Field label="Token name">
            {(id) => <input id={id} value={tokenName} onChange={(e) => setTokenName(e.target.value)} />}
          </Field>
          <Field label="Lifetime">
            {(id) => (
              <select id={id} value={days} onChange={(e) => setDays(e.target.value)}>
                {LIFETIMES.map((l) => (
                  <option key={l.days} value={l.days}>
                    {l.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <ErrorAlert error={action.error} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={action.busy}>
            Create token
          </button>
        </div>
      </form>
    </section>
  );
}
