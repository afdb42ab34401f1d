/**
 * The dashboard's entry point (the bundle runs it once the page has loaded): the header's auth
 * status, the stats poll, and the router.
 */
import { renderAuthStatus } from './auth.js';
import { route } from './router.js';
import { onAuthChange } from './state.js';
import { POLL_MS, pollStats } from './stats.js';
import { setRouter } from './view.js';

onAuthChange(renderAuthStatus);
setRouter(route);
window.addEventListener('hashchange', () => route(true));
renderAuthStatus();
setInterval(() => void pollStats(), POLL_MS);
void pollStats();
route();
