// Command output as a terminal block: ANSI colours become spans with classes (text only, so
// nothing in the output is ever HTML), and long output shows its tail until asked for all.
import Anser from "anser";
import { useId, useMemo, useState, type CSSProperties } from "react";
import "./Terminal.css";

const TAIL_LINES = 30;

const BASIC = /^ansi-(bright-)?(black|red|green|yellow|blue|magenta|cyan|white)$/;

function colourClass(prefix: "fg" | "bg", value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const m = BASIC.exec(value);
  if (m) return `${prefix}-${m[1] ? "bright-" : ""}${m[2]}`;
  // The palette's first 16 entries are the basic colours.
  const p = /^ansi-palette-(\d+)$/.exec(value);
  const index = p ? Number(p[1]) : -1;
  if (index < 0 || index > 15) return undefined;
  const names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
  return `${prefix}-${index > 7 ? "bright-" : ""}${names[index % 8]}`;
}

/** The RGB of a 256-colour palette entry past the 16 basic ones. */
function paletteRgb(index: number): string | undefined {
  if (index >= 232 && index <= 255) {
    const v = 8 + (index - 232) * 10;
    return `${v}, ${v}, ${v}`;
  }
  if (index < 16 || index > 231) return undefined;
  const level = (n: number) => (n === 0 ? 0 : 55 + n * 40);
  const i = index - 16;
  return `${level(Math.floor(i / 36))}, ${level(Math.floor(i / 6) % 6)}, ${level(i % 6)}`;
}

function rgbOf(value: string | null | undefined, truecolor: string | null | undefined): string | undefined {
  if (value === "ansi-truecolor" && truecolor) return `rgb(${truecolor})`;
  const palette = value?.startsWith("ansi-palette-") ? paletteRgb(Number(value.slice(13))) : undefined;
  return palette ? `rgb(${palette})` : undefined;
}

/** Paints a colour that has no class (256-colour palette, true colour) through the CSSOM,
 * which the page's policy allows (no style attribute is ever written as markup). */
function colourStyle(entry: Anser.AnserJsonEntry): CSSProperties | undefined {
  const color = rgbOf(entry.fg, entry.fg_truecolor);
  const backgroundColor = rgbOf(entry.bg, entry.bg_truecolor);
  if (!color && !backgroundColor) return undefined;
  return { color, backgroundColor };
}

function AnsiText({ text }: { text: string }) {
  const entries = useMemo(
    () => Anser.ansiToJson(text, { json: true, use_classes: true, remove_empty: true }),
    [text],
  );
  return (
    <>
      {entries.map((entry, i) => {
        const classes = [
          colourClass("fg", entry.fg),
          colourClass("bg", entry.bg),
          ...(entry.decorations ?? []).map((d) => `ansi-${d}`),
        ].filter(Boolean);
        if (!classes.length && !colourStyle(entry)) return entry.content;
        return (
          <span key={i} className={classes.join(" ")} style={colourStyle(entry)}>
            {entry.content}
          </span>
        );
      })}
    </>
  );
}

/** Carriage returns redraw a line in a terminal: keep what the last one wrote. */
function settleCarriageReturns(text: string): string {
  if (!text.includes("\r")) return text;
  return text
    .split("\n")
    .map((line) => {
      const parts = line.replace(/\r$/, "").split("\r");
      return parts[parts.length - 1] ?? "";
    })
    .join("\n");
}

export interface TerminalProps {
  output: string;
  /** Label for the block (screen readers). */
  label: string;
  command?: string;
}

export function Terminal({ output, label, command }: TerminalProps) {
  const [all, setAll] = useState(false);
  const id = useId();
  const text = settleCarriageReturns(output.replace(/\n$/, ""));
  const lines = text.split("\n");
  const long = lines.length > TAIL_LINES;
  const shown = long && !all ? lines.slice(-TAIL_LINES).join("\n") : text;
  return (
    <div className="terminal">
      {long && (
        <div className="terminal-more">
          <span className="muted">
            {all ? `${lines.length} lines` : `Last ${TAIL_LINES} of ${lines.length} lines`}
          </span>
          <button type="button" className="link" aria-controls={id} onClick={() => setAll(!all)}>
            {all ? "Show the tail" : "Show all"}
          </button>
        </div>
      )}
      <pre id={id} className="terminal-screen" role="group" aria-label={label} tabIndex={0}>
        {command !== undefined && (
          <span className="terminal-prompt">
            <span aria-hidden="true">$ </span>
            {command}
            {"\n"}
          </span>
        )}
        <AnsiText text={shown} />
      </pre>
    </div>
  );
}
