// One chat, streamed live (placeholder: replaced by the chat view work).
import { useParams } from "react-router-dom";

export function ChatView() {
  const { chatId } = useParams();
  return <h1 className="page-title">Chat {chatId}</h1>;
}
