/**
 * Exact JSON text of a value inside a request body. JSON.parse turns every number into a double, so
 * `12345678901234567890` in a callback body would be sent as `12345678901234567000`. The body is
 * kept as the exact text the client gave whenever parsing would change one of its numbers.
 * Pure; the input is text JSON.parse has already accepted.
 */

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    while (this.i < this.s.length && WS.has(this.s.charCodeAt(this.i))) this.i++;
  }

  /** Skips a string token; returns its raw text (quotes included). */
  string(): string {
    const start = this.i;
    this.i++; // opening quote
    for (;;) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x5c) this.i += 2;
      else if (c === 0x22) {
        this.i++;
        return this.s.slice(start, this.i);
      } else if (Number.isNaN(c)) throw new Error('unterminated string');
      else this.i++;
    }
  }

  /** Skips any value; calls `onNumber` with each number token's text. */
  value(onNumber?: (tok: string) => void): void {
    this.ws();
    const c = this.s[this.i];
    if (c === '"') this.string();
    else if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      this.i++;
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          this.ws();
          this.string();
          this.ws();
          this.i++; // ':'
        }
        this.value(onNumber);
        this.ws();
        const sep = this.s[this.i++];
        if (sep === close) return;
      }
    } else {
      const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|^true|^false|^null/.exec(this.s.slice(this.i, this.i + 400));
      if (!m) throw new Error(`unexpected character at ${this.i}`);
      if (onNumber && m[0] !== 'true' && m[0] !== 'false' && m[0] !== 'null') onNumber(m[0]);
      this.i += m[0].length;
    }
  }
}

/** The raw text of the value at `path` (object keys) in JSON text, or null. The last duplicate key wins, as in JSON.parse. */
export function valueText(json: string, path: readonly string[]): string | null {
  const sc = new Scanner(json);
  let start = -1;
  let end = -1;
  const walk = (depth: number): void => {
    sc.ws();
    if (sc.s[sc.i] !== '{' || depth === path.length) {
      sc.value();
      return;
    }
    sc.i++;
    sc.ws();
    if (sc.s[sc.i] === '}') {
      sc.i++;
      return;
    }
    for (;;) {
      sc.ws();
      const key = JSON.parse(sc.string()) as string;
      sc.ws();
      sc.i++; // ':'
      sc.ws();
      if (key === path[depth]) {
        if (depth === path.length - 1) {
          const s0 = sc.i;
          sc.value();
          start = s0;
          end = sc.i;
        } else walk(depth + 1);
      } else sc.value();
      sc.ws();
      if (sc.s[sc.i++] === '}') return;
    }
  };
  try {
    walk(0);
  } catch {
    return null;
  }
  return start < 0 ? null : json.slice(start, end);
}

/** True when parsing `json` would change one of its numbers (JSON.stringify would not give it back). */
export function hasLossyNumber(json: string): boolean {
  let lossy = false;
  new Scanner(json).value((tok) => {
    if (!lossy && JSON.stringify(Number(tok)) !== tok) lossy = true;
  });
  return lossy;
}

/** The exact text of `callback.body` (or the value at `path`) when parsing it would change one of its numbers, else null. */
export function exactBodyText(requestText: string | undefined, path: readonly string[] = ['callback', 'body']): string | null {
  if (requestText === undefined || !/\d{16}|\d[eE.]/.test(requestText)) return null; // fast path: no number that can lose digits or change spelling
  const text = valueText(requestText, path);
  return text !== null && hasLossyNumber(text) ? text : null;
}
