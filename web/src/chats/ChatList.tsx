// The chat list in the sidebar (placeholder: replaced by the chat list work).
export function ChatList() {
  return <p className="empty">No chats yet.</p>;
}
