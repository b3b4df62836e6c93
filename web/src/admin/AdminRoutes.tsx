// The site owner's pages (placeholder: replaced by the admin work).
export function AdminRoutes() {
  return <h1 className="page-title">Admin</h1>;
}
