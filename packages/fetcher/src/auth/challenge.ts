/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1):
 *
 *   WWW-Authenticate = #challenge
 *   challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param       = token BWS "=" BWS ( token / quoted-string )
 *
 * Commas separate both challenges and the params inside one, so a token that is not followed by
 * "=" after a comma starts the next challenge.
 *
 * Malformed input: by default a challenge that cannot be parsed is skipped (best effort: parsing
 * resumes at the next comma that is followed by something shaped like a new challenge), because
 * one odd challenge from a registry must not hide a usable Bearer or Basic one next to it. With
 * `{ strict: true }` the parser throws {@link InvalidArgumentError} naming the position instead.
 * The lenient mode also accepts unquoted values that are not RFC tokens (`realm=https://a/b`),
 * which some servers send; strict mode rejects them.
 */
import { InvalidArgumentError } from "@ferry/core";

export interface Challenge {
  /** Auth scheme, lowercased (`bearer`, `basic`, …). */
  scheme: string;
  /** Auth params by lowercased name; values unquoted and unescaped. The first of duplicates wins. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge used it instead of params. */
  token68?: string;
}

export interface ParseChallengesOptions {
  /** Throw {@link InvalidArgumentError} on malformed input instead of skipping the bad challenge. Default `false`. */
  strict?: boolean;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

class Malformed extends Error {
  constructor(
    readonly reason: string,
    readonly at: number,
  ) {
    super(reason);
  }
}

/**
 * Parse one or more `WWW-Authenticate` header values into challenges, in order. Several header
 * lines are treated like one comma-joined list.
 */
export function parseChallenges(
  header: string | readonly string[] | undefined | null,
  options: ParseChallengesOptions = {},
): Challenge[] {
  const lines = header == null ? [] : typeof header === "string" ? [header] : header;
  const out: Challenge[] = [];
  for (const line of lines) new LineParser(line, options.strict === true).parse(out);
  return out;
}

/** The first challenge with `scheme` (case-insensitive), if any. */
export function findChallenge(challenges: readonly Challenge[], scheme: string): Challenge | undefined {
  const s = scheme.toLowerCase();
  return challenges.find((c) => c.scheme === s);
}

class LineParser {
  #s: string;
  #i = 0;
  #strict: boolean;

  constructor(s: string, strict: boolean) {
    this.#s = s;
    this.#strict = strict;
  }

  parse(out: Challenge[]): void {
    this.#skipSeparators();
    while (this.#i < this.#s.length) {
      const start = this.#i;
      try {
        out.push(this.#challenge());
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        if (this.#strict) {
          throw new InvalidArgumentError(
            `malformed WWW-Authenticate header at offset ${err.at}: ${err.reason} (${JSON.stringify(clip(this.#s))})`,
            { details: { offset: err.at, reason: err.reason } },
          );
        }
        this.#recover(start);
      }
      this.#skipSeparators();
    }
  }

  #challenge(): Challenge {
    const s = this.#s;
    const schemeAt = this.#i;
    const scheme = this.#token();
    if (scheme === "") throw new Malformed(`expected an auth-scheme, found ${describe(s[this.#i])}`, schemeAt);
    const c = this.#i < s.length ? s[this.#i] : undefined;
    if (c !== undefined && c !== " " && c !== "\t" && c !== ",") {
      throw new Malformed(`unexpected ${describe(c)} after auth-scheme ${JSON.stringify(scheme)}`, this.#i);
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: Object.create(null) as Record<string, string> };
    this.#skipWS();

    // token68: the whole rest of this list element, e.g. `Negotiate YII=` (not `name=value`).
    const t68 = TOKEN68.exec(s.slice(this.#i));
    if (t68) {
      const after = this.#i + t68[0].length;
      let j = after;
      while (j < s.length && (s[j] === " " || s[j] === "\t")) j++;
      if (j >= s.length || s[j] === ",") {
        challenge.token68 = t68[0];
        this.#i = after;
        return challenge;
      }
    }

    for (;;) {
      const nameAt = this.#i;
      const name = this.#token();
      if (name === "") {
        if (this.#i < s.length && s[this.#i] !== ",") {
          throw new Malformed(`expected an auth-param, found ${describe(s[this.#i])}`, this.#i);
        }
        return challenge;
      }
      this.#skipWS();
      if (s[this.#i] !== "=") {
        // Not a param: either the next challenge's scheme (after a comma) or garbage.
        if (this.#afterComma(nameAt)) {
          this.#i = nameAt;
          return challenge;
        }
        throw new Malformed(`expected "=" after ${JSON.stringify(name)}`, this.#i);
      }
      this.#i++;
      this.#skipWS();
      const value = this.#value(name);
      const key = name.toLowerCase();
      if (key in challenge.params) {
        if (this.#strict) throw new Malformed(`duplicate auth-param ${JSON.stringify(key)}`, nameAt);
      } else {
        challenge.params[key] = value;
      }
      this.#skipWS();
      if (this.#i >= s.length) return challenge;
      if (s[this.#i] !== ",") throw new Malformed(`expected "," after the value of ${JSON.stringify(name)}, found ${describe(s[this.#i])}`, this.#i);
      this.#skipSeparators();
      if (this.#i >= s.length) return challenge;
    }
  }

  #value(name: string): string {
    const s = this.#s;
    if (s[this.#i] === '"') return this.#quoted();
    const at = this.#i;
    if (this.#strict) {
      const v = this.#token();
      if (v === "") throw new Malformed(`missing value for ${JSON.stringify(name)}`, at);
      return v;
    }
    // Lenient: anything up to the next separator (servers send realm=https://… unquoted).
    while (this.#i < s.length && !/[,\s"]/.test(s[this.#i]!)) this.#i++;
    return s.slice(at, this.#i);
  }

  #quoted(): string {
    const s = this.#s;
    const open = this.#i;
    this.#i++; // opening quote
    let v = "";
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === '"') {
        this.#i++;
        return v;
      }
      if (c === "\\") {
        if (this.#i + 1 >= s.length) break;
        v += s[this.#i + 1];
        this.#i += 2;
        continue;
      }
      v += c;
      this.#i++;
    }
    throw new Malformed("unterminated quoted-string", open);
  }

  #token(): string {
    const s = this.#s;
    const at = this.#i;
    while (this.#i < s.length && TCHAR.test(s[this.#i]!)) this.#i++;
    return s.slice(at, this.#i);
  }

  #skipWS(): void {
    while (this.#i < this.#s.length && (this.#s[this.#i] === " " || this.#s[this.#i] === "\t")) this.#i++;
  }

  /** Skip OWS and empty list elements (`, ,`). */
  #skipSeparators(): void {
    while (this.#i < this.#s.length && /[ \t,]/.test(this.#s[this.#i]!)) this.#i++;
  }

  /** True when the text before `pos` (ignoring OWS) ends with a comma. */
  #afterComma(pos: number): boolean {
    let j = pos - 1;
    while (j >= 0 && (this.#s[j] === " " || this.#s[j] === "\t")) j--;
    return j >= 0 && this.#s[j] === ",";
  }

  /**
   * Skip a broken challenge starting at `from`: move to the next comma (outside quotes) that is
   * followed by a token which is not a param name, i.e. something that can start a challenge.
   */
  #recover(from: number): void {
    const s = this.#s;
    let i = from;
    // Scan from the start of the broken challenge so quotes are tracked correctly; an
    // unterminated quote runs to the end, which is what we want.
    let inQuote = false;
    for (; i < s.length; i++) {
      const c = s[i];
      if (inQuote) {
        if (c === "\\") i++;
        else if (c === '"') inQuote = false;
        continue;
      }
      if (c === '"') {
        inQuote = true;
        continue;
      }
      if (c !== ",") continue;
      let j = i + 1;
      while (j < s.length && /[ \t,]/.test(s[j]!)) j++;
      const tokStart = j;
      while (j < s.length && TCHAR.test(s[j]!)) j++;
      if (j === tokStart) continue;
      let k = j;
      while (k < s.length && (s[k] === " " || s[k] === "\t")) k++;
      if (s[k] !== "=") {
        this.#i = tokStart;
        return;
      }
    }
    this.#i = s.length;
  }
}

function describe(c: string | undefined): string {
  return c === undefined ? "end of header" : JSON.stringify(c);
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}
