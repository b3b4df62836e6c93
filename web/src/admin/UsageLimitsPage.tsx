// Spend limits: the deployment's limit per period and per-user overrides. The API counts in
// micro-dollars; the page shows and takes dollars.
import { useState, type FormEvent } from "react";
import { api, must, type Schemas } from "../api/client";
import { DeleteButton, ErrorAlert, Field, numberOrUndefined, useAction, useLoad } from "./common";

type LimitConfig = Schemas["ChatUsageLimitConfig"];
type User = Schemas["User"];

const PERIODS = ["day", "week", "month"];

export function dollars(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return "";
  return (micros / 1_000_000).toFixed(2);
}

function micros(text: string): number | undefined {
  const n = numberOrUndefined(text);
  return n === undefined ? undefined : Math.round(n * 1_000_000);
}

async function loadAll(): Promise<{ config: LimitConfig; users: User[] }> {
  const [config, users] = await Promise.all([
    must(api.GET("/api/experimental/chats/usage-limits")),
    must(api.GET("/api/v2/users")),
  ]);
  return { config, users: users.users };
}

export function UsageLimitsPage() {
  const { data, error, reload } = useLoad(loadAll);
  return (
    <section aria-labelledby="limits-title">
      <h1 id="limits-title" className="page-title">
        Usage limits
      </h1>
      <ErrorAlert error={error} />
      {data && (
        <>
          <DeploymentLimit config={data.config} onDone={reload} />
          <Overrides config={data.config} users={data.users} reload={reload} />
        </>
      )}
    </section>
  );
}

function DeploymentLimit({ config, onDone }: { config: LimitConfig; onDone: () => Promise<void> }) {
  const [limited, setLimited] = useState(config.spend_limit_micros != null);
  const [amount, setAmount] = useState(dollars(config.spend_limit_micros));
  const [period, setPeriod] = useState(config.period || "month");
  const action = useAction();
  const [saved, setSaved] = useState(false);

  function submit(event: FormEvent) {
    event.preventDefault();
    setSaved(false);
    void action.run(async () => {
      await must(
        api.PUT("/api/experimental/chats/usage-limits", {
          body: { spend_limit_micros: limited ? (micros(amount) ?? 0) : null, period },
        }),
      );
      setSaved(true);
      await onDone();
    });
  }

  return (
    <form className="admin-form" noValidate onSubmit={submit} aria-label="Deployment limit">
      <h2>Deployment limit</h2>
      <p className="muted">
        {config.spend_limit_micros != null
          ? `Each user may spend $${dollars(config.spend_limit_micros)} per ${config.period}.`
          : "Spending is not limited."}
        {config.unpriced_model_count > 0 &&
          ` ${config.unpriced_model_count} enabled model(s) have no prices and count as free.`}
      </p>
      <label className="check">
        <input type="checkbox" checked={limited} onChange={(e) => setLimited(e.target.checked)} />
        Limit each user&apos;s spending
      </label>
      <div className="fields">
        <Field label="Spend limit (USD)">
          {(id) => (
            <input
              id={id}
              type="number"
              min={0}
              step="0.01"
              value={amount}
              disabled={!limited}
              onChange={(e) => setAmount(e.target.value)}
            />
          )}
        </Field>
        <Field label="Period">
          {(id) => (
            <select id={id} value={period} onChange={(e) => setPeriod(e.target.value)}>
              {PERIODS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <ErrorAlert error={action.error} />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          Save limit
        </button>
        {saved && <span role="status">Saved.</span>}
      </div>
    </form>
  );
}

function Overrides({
  config,
  users,
  reload,
}: {
  config: LimitConfig;
  users: User[];
  reload: () => Promise<void>;
}) {
  const [userId, setUserId] = useState("");
  const [amount, setAmount] = useState("");
  const action = useAction();
  const target = userId || users[0]?.id || "";

  async function put(user: string, value: number | undefined) {
    await must(
      api.PUT("/api/experimental/chats/usage-limits/overrides/{user}", {
        params: { path: { user } },
        body: { spend_limit_micros: value ?? 0 },
      }),
    );
    await reload();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    void action.run(async () => {
      await put(target, micros(amount));
      setAmount("");
    });
  }

  return (
    <section className="admin-block" aria-labelledby="overrides-title">
      <h2 id="overrides-title">Per-user overrides</h2>
      {config.overrides.length === 0 && <p className="empty">No user has an override.</p>}
      <ul className="admin-list" aria-label="Overrides">
        {config.overrides.map((o) => (
          <li key={o.user_id} className="admin-item" aria-label={`Override for ${o.username}`}>
            <div className="item-main">
              <strong>{o.username}</strong>{" "}
              <span>
                ${dollars(o.spend_limit_micros)} per {config.period}
              </span>
            </div>
            <div className="item-actions">
              <DeleteButton
                what={`the override for ${o.username}`}
                onDelete={async () => {
                  await must(
                    api.DELETE("/api/experimental/chats/usage-limits/overrides/{user}", {
                      params: { path: { user: o.user_id } },
                    }),
                  );
                  await reload();
                }}
              />
            </div>
          </li>
        ))}
      </ul>
      <form className="admin-form" noValidate onSubmit={submit} aria-label="Set an override">
        <h3>Set an override</h3>
        <p className="muted">A user&apos;s own limit replaces the deployment limit for them.</p>
        <div className="fields">
          <Field label="User">
            {(id) => (
              <select id={id} value={target} onChange={(e) => setUserId(e.target.value)}>
                {users.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.username}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="User's limit (USD)">
            {(id) => (
              <input id={id} type="number" min={0} step="0.01" value={amount} onChange={(e) => setAmount(e.target.value)} />
            )}
          </Field>
        </div>
        <ErrorAlert error={action.error} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={action.busy}>
            Save override
          </button>
        </div>
      </form>
    </section>
  );
}
