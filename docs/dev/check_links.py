"""Every relative link in every Markdown file resolves, and so does every repository path quoted
in backticks under docs/ (`docs/...`; globs allowed; `<name>` placeholders skipped).

    python docs/dev/check_links.py [--allow PATH ...]   # PATHs known to be missing (to be added)

Links are resolved from the linking file's folder, `#anchors` against the target's headings
(GitHub's slugs); quoted paths from the repository's root. Prints each miss; exit 1 if any.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
QUOTED = re.compile(r"`(docs/[^`\s<]*)`")


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(md: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def main(argv: list[str]) -> int:
    allow = set(argv[argv.index("--allow") + 1:]) if "--allow" in argv else set()
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.md"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    misses = checked = 0
    for name in files:
        md = ROOT / name
        if not md.is_file():
            continue
        text = md.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            shown = str(dest.relative_to(ROOT)) if dest.is_relative_to(ROOT) else str(dest)
            if not dest.exists():
                if shown not in allow:
                    print(f"{name}: link {target}: no {shown}")
                    misses += 1
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                print(f"{name}: link {target}: no heading #{anchor} in {shown}")
                misses += 1
        for quoted in QUOTED.findall(text):
            checked += 1
            path = quoted.split("::")[0].rstrip(".,;:)")
            if not (any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()) and path not in allow:
                print(f"{name}: quoted path {quoted}: not in the repository")
                misses += 1
    print(f"{len(files)} Markdown files, {checked} links and quoted paths, {misses} missing"
          + (f" (allowed to be missing: {', '.join(sorted(allow))})" if allow else ""))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
