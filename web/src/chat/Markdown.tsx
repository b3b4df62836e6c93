// Message text as Markdown: GitHub flavour, highlighted code blocks, links that open safely.
// react-markdown never renders raw HTML and drops unsafe link targets (javascript: and the like).
import { memo } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import rehypeHighlight from "rehype-highlight";
import remarkGfm from "remark-gfm";
import "./Markdown.css";
import { markdownBlocks } from "./markdownBlocks";

const components: Components = {
  a: ({ node: _node, ...props }) => <a {...props} target="_blank" rel="noopener noreferrer nofollow" />,
};

const remarkPlugins = [remarkGfm];
const rehypePlugins = [[rehypeHighlight, { detect: false, ignoreMissing: true }]] as const;

const Block = memo(function Block({ text }: { text: string }) {
  return (
    <ReactMarkdown
      remarkPlugins={remarkPlugins}
      rehypePlugins={rehypePlugins as never}
      components={components}
    >
      {text}
    </ReactMarkdown>
  );
});

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <Block text={text} />
    </div>
  );
});

/**
 * Markdown for a reply still being streamed: rendered block by block, so a frame re-renders
 * only the block that grew (the whole text is rendered as one once the message is committed).
 */
export function StreamingMarkdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      {markdownBlocks(text).map((block, i) => (
        <Block key={i} text={block} />
      ))}
    </div>
  );
}
