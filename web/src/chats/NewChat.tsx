// The new-chat page (placeholder: replaced by the new-chat work).
export function NewChat() {
  return <h1 className="page-title">New chat</h1>;
}
