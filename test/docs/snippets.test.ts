// Every ```ts block in the documentation must typecheck against the current sources, so a renamed
// option or export breaks this test instead of silently rotting the docs. A block whose info string is
// "ts nocheck" is an intentional fragment and is skipped (convention documented in docs/README.md).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The Markdown files whose snippets are checked (audit notes under docs/issue-*-audit.md are records, not docs). */
function markdownFiles(): string[] {
  const files = ["README.md", "examples/README.md", "bench/README.md"];
  for (const f of readdirSync(join(root, "docs"))) {
    if (f.endsWith(".md") && !/^issue-.*-audit\.md$/.test(f)) files.push(`docs/${f}`);
  }
  for (const p of readdirSync(join(root, "packages"))) {
    if (existsSync(join(root, "packages", p, "README.md"))) files.push(`packages/${p}/README.md`);
  }
  return files.filter((f) => existsSync(join(root, f))).sort();
}

interface Snippet {
  /** Markdown file relative to the repo root. */
  file: string;
  /** 1-based ordinal of the ```ts block in that file. */
  block: number;
  /** 1-based line of the first code line in the Markdown file. */
  line: number;
  code: string;
}

/** Extracts fenced ```ts / ```typescript blocks; "nocheck" in the info string skips a block. */
function extractSnippets(file: string, text: string): { checked: Snippet[]; skipped: number } {
  const lines = text.split("\n");
  const checked: Snippet[] = [];
  let skipped = 0;
  let block = 0;
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const info = open[4] ?? "";
    const body: string[] = [];
    const start = i + 1;
    for (i = start; i < lines.length && !lines[i]!.trimStart().startsWith(fence); i++) body.push(lines[i]!);
    block++;
    if (/\bnocheck\b/.test(info)) {
      skipped++;
      continue;
    }
    checked.push({ file, block, line: start + 1, code: body.join("\n") });
  }
  return { checked, skipped };
}

// Under examples/ so that workspace imports (@ferry/*) resolve exactly as they do for the examples;
// a dot directory so the repo-wide `pnpm typecheck` never picks the temporary files up.
const tmpBase = join(root, "examples", ".tmp");
mkdirSync(tmpBase, { recursive: true });
const workDir = mkdtempSync(join(tmpBase, "snippets-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/**
 * Typechecks each snippet as its own module in `dir` (created) and returns one line per error,
 * naming the Markdown file, the block's ordinal and the line in the Markdown file.
 */
function typecheckSnippets(snippets: readonly Snippet[], dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const byPath = new Map<string, Snippet>();
  for (const s of snippets) {
    const name = `${s.file.replace(/[^A-Za-z0-9]+/g, "_")}__block${s.block}.ts`;
    const path = join(dir, name);
    // `export {}` keeps a block without imports a module, so top-level names never clash across blocks.
    writeFileSync(path, `${s.code}\nexport {};\n`);
    byPath.set(resolve(path), s);
  }
  const tsconfig = join(dir, "tsconfig.json");
  writeFileSync(tsconfig, JSON.stringify({ extends: relative(dir, join(root, "tsconfig.base.json")), include: ["*.ts"] }));
  const parsed = ts.getParsedCommandLineOfConfigFile(tsconfig, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  if (!parsed) throw new Error("could not parse the generated tsconfig");
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const failures: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    const snippet = d.file ? byPath.get(resolve(d.file.fileName)) : undefined;
    if (!d.file || d.start === undefined) {
      failures.push(`(global) ${msg}`);
    } else if (snippet) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      failures.push(`${snippet.file} ts block #${snippet.block} (line ${snippet.line + line}:${character + 1}): ${msg}`);
    }
    // Errors inside the sources themselves are the typecheck's business, not the docs'.
  }
  return failures;
}

describe("documentation snippets", () => {
  const all: Snippet[] = [];
  let skipped = 0;
  for (const file of markdownFiles()) {
    const r = extractSnippets(file, readFileSync(join(root, file), "utf8"));
    all.push(...r.checked);
    skipped += r.skipped;
  }

  it("finds the ```ts blocks in the docs", () => {
    // Guards against the extractor silently matching nothing.
    expect(all.length).toBeGreaterThan(10);
    expect(skipped).toBeLessThanOrEqual(all.length);
  });

  it("every ```ts block typechecks", () => {
    const failures = typecheckSnippets(all, join(workDir, "docs"));
    expect(failures, failures.join("\n")).toEqual([]);
  });

  it("the extractor skips nocheck blocks and non-ts fences and records positions", () => {
    const md = ["# t", "```sh", "echo", "```", "```ts", "const a = 1;", "```", "```ts nocheck", "broken(", "```", "```typescript", "let b = 2;", "```"].join("\n");
    const r = extractSnippets("x.md", md);
    expect(r.skipped).toBe(1);
    expect(r.checked.map((s) => [s.block, s.line, s.code])).toEqual([
      [1, 6, "const a = 1;"],
      [3, 12, "let b = 2;"],
    ]);
  });

  it("reports a block that does not compile, naming file, block and line", () => {
    const bad: Snippet[] = [
      { file: "docs/fake.md", block: 1, line: 10, code: 'import { parseDigest } from "@ferry/core";\nconst d: number = parseDigest("x");' },
      { file: "docs/fake.md", block: 2, line: 20, code: 'import { noSuchExport } from "@ferry/core";' },
      { file: "docs/fake.md", block: 3, line: 30, code: 'import { parseDigest } from "@ferry/core";\nparseDigest("sha256:x");' },
    ];
    const failures = typecheckSnippets(bad, join(workDir, "self-test"));
    expect(failures.some((f) => f.startsWith("docs/fake.md ts block #1 (line 11:7)"))).toBe(true);
    expect(failures.some((f) => f.startsWith("docs/fake.md ts block #2 (line 20:"))).toBe(true);
    expect(failures.some((f) => f.includes("block #3"))).toBe(false);
  });

  it("every export of every package's src/index.ts is named in the docs", () => {
    // The project rule "docs for every public feature", checked by name: a new export that no
    // README or docs page mentions fails here, naming the package and the export.
    const docs = markdownFiles().map((f) => readFileSync(join(root, f), "utf8")).join("\n");
    const indexes = readdirSync(join(root, "packages"))
      .map((p) => join(root, "packages", p, "src", "index.ts"))
      .filter((f) => existsSync(f));
    const program = ts.createProgram({
      rootNames: indexes,
      options: {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        allowImportingTsExtensions: true,
        noEmit: true,
        skipLibCheck: true,
      },
    });
    const checker = program.getTypeChecker();
    const undocumented: string[] = [];
    let count = 0;
    for (const index of indexes) {
      const sf = program.getSourceFile(index);
      const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
      if (!moduleSymbol) throw new Error(`cannot read the exports of ${relative(root, index)}`);
      for (const e of checker.getExportsOfModule(moduleSymbol)) {
        count++;
        const name = e.getName();
        if (!new RegExp(`\\b${name.replace(/\$/g, "\\$")}\\b`).test(docs)) undocumented.push(`${relative(root, index)}: ${name}`);
      }
    }
    expect(count).toBeGreaterThan(100);
    expect(undocumented, undocumented.join("\n")).toEqual([]);
  });
});
