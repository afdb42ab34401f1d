/**
 * The dashboard's HTML page, rendered on the server with hono/jsx. It holds no task data (that is
 * fetched by /ui/app.js with the user's token), so it is served without authentication.
 */
import type { FC } from 'hono/jsx';

export interface ShellProps {
  version: string;
  defaultTimezone: string;
  /** Cache-busting tags of the two assets. */
  jsTag: string;
  cssTag: string;
}

const Nav: FC = () => (
  <nav aria-label="sections">
    <a href="#/" data-nav="overview">
      Overview
    </a>
    <a href="#/tasks" data-nav="tasks">
      Tasks
    </a>
    <a href="#/new" data-nav="new">
      New task
    </a>
    <a href="#/executors" data-nav="executors">
      Executors
    </a>
    <a href="#/cluster" data-nav="cluster">
      Cluster
    </a>
  </nav>
);

export const Shell: FC<ShellProps> = ({ version, defaultTimezone, jsTag, cssTag }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <title>xcron dashboard</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href={`/ui/app.css?v=${cssTag}`} />
      <script src={`/ui/app.js?v=${jsTag}`} defer></script>
    </head>
    <body data-default-tz={defaultTimezone} data-version={version}>
      <header class="top">
        <a class="brand" href="#/">
          xcron
        </a>
        <Nav />
        <span id="auth-status"></span>
      </header>
      <div id="flash"></div>
      <main id="view">
        <noscript>The xcron dashboard needs JavaScript. The same data is available from the JSON API under /xcron/.</noscript>
        <p class="muted">Loading…</p>
      </main>
      <footer>
        xcron {version} · dashboard over the <code>/xcron/*</code> JSON API
      </footer>
    </body>
  </html>
);

/** The whole page as a string (doctype included). */
export async function renderShell(props: ShellProps): Promise<string> {
  const html = await (<Shell {...props} />);
  return `<!DOCTYPE html>${html.toString()}`;
}
