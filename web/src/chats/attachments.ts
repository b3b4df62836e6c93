// Files attached to a new message: uploaded at once to POST /api/experimental/chats/files,
// then referenced by id in the message's content.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, errorText, must } from "../api/client";

export interface Attachment {
  key: string;
  file: File;
  /** An object URL for an image's thumbnail (revoked when the attachment goes). */
  preview: string | null;
  state: "uploading" | "ready" | "failed";
  fileId?: string;
  error?: string;
}

/** A header value carrying UTF-8 bytes as Latin-1 characters (how the server reads it). */
function headerSafe(text: string): string {
  const bytes = new TextEncoder().encode(text.replace(/["\\\r\n]/g, "_"));
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

let counter = 0;

export function useAttachments(organizationId: string | undefined) {
  const [items, setItems] = useState<Attachment[]>([]);
  const itemsRef = useRef(items);
  itemsRef.current = items;

  // Object URLs live as long as the page.
  useEffect(
    () => () => {
      for (const item of itemsRef.current) if (item.preview) URL.revokeObjectURL(item.preview);
    },
    [],
  );

  const update = (key: string, change: Partial<Attachment>) =>
    setItems((list) => list.map((a) => (a.key === key ? { ...a, ...change } : a)));

  const add = useCallback(
    (files: Iterable<File>) => {
      for (const file of files) {
        const key = `attachment-${++counter}`;
        const preview = file.type.startsWith("image/") ? URL.createObjectURL(file) : null;
        setItems((list) => [...list, { key, file, preview, state: "uploading" }]);
        if (!organizationId) {
          update(key, { state: "failed", error: "No organization to upload to." });
          continue;
        }
        must(
          api.POST("/api/experimental/chats/files", {
            params: { query: { organization: organizationId } },
            // The body is the file's bytes as they are.
            body: file.name,
            bodySerializer: () => file,
            headers: {
              "Content-Type": file.type || "application/octet-stream",
              "Content-Disposition": `attachment; filename="${headerSafe(file.name)}"`,
            },
          }),
        )
          .then((answer) => update(key, { state: "ready", fileId: answer.id }))
          .catch((err: unknown) => update(key, { state: "failed", error: errorText(err) }));
      }
    },
    [organizationId],
  );

  const remove = useCallback((key: string) => {
    setItems((list) => {
      const gone = list.find((a) => a.key === key);
      if (gone?.preview) URL.revokeObjectURL(gone.preview);
      return list.filter((a) => a.key !== key);
    });
  }, []);

  const clear = useCallback(() => setItems([]), []);

  return { items, add, remove, clear };
}
