// WebSockets to the server, authenticated by the session cookie (same origin), reconnecting on
// their own after a drop with a capped backoff.

export function socketUrl(path: string): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export interface LiveSocketOptions<T> {
  /** The path to open, asked again before every (re)connect (it may carry `after_id`). */
  path: () => string;
  onMessage: (message: T) => void;
  onOpen?: () => void;
  /** Called when the socket closes; `willRetry` is false once closed for good. */
  onClose?: (event: CloseEvent, willRetry: boolean) => void;
  /** Close codes after which there is no point in trying again. */
  finalCodes?: number[];
}

/** A socket that reconnects until `close()` is called. */
export class LiveSocket<T> {
  private socket: WebSocket | null = null;
  private closed = false;
  private attempt = 0;
  private timer: number | undefined;

  constructor(private readonly options: LiveSocketOptions<T>) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const socket = new WebSocket(socketUrl(this.options.path()));
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.options.onOpen?.();
    };
    socket.onmessage = (event: MessageEvent<string>) => {
      this.options.onMessage(JSON.parse(event.data) as T);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const final = this.closed || (this.options.finalCodes ?? []).includes(event.code);
      this.options.onClose?.(event, !final);
      if (final) return;
      const delay = Math.min(10_000, 250 * 2 ** this.attempt);
      this.attempt += 1;
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  send(message: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.socket?.close(1000);
    this.socket = null;
  }
}
