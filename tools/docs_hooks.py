"""mkdocs hooks (mkdocs.yml `hooks:`): the parts of the documentation site generated from the code
when it is built, so that they cannot drift from it.

- `<!-- generated: cli -->` in a page: every `vmc-duel` command and option, walked from the
  parsers themselves (`vmc_duel.cli.build_parser`, the training and export commands included).
- `<!-- generated: openapi -->`: the HTTP API's endpoints and models, from the FastAPI app that
  `vmc-duel serve` runs (`server.app.make_api`); the whole schema goes into the site as
  `reference/openapi.json`.
- `<!-- generated: bounds -->`: every strategy knob and invariant of `configs/bounds.yaml`.
- A link or picture `repo/PATH` in a page (`../repo/PATH` one folder down) is the repository's
  file PATH, copied into the site: the screenshots and plots stay where the code writes them.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's packages, also where the project is not installed
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", message="builtin type", category=DeprecationWarning)  # Box2D's SWIG, on import
REPO_LINK = re.compile(r"\]\((?:\.\./)*repo/([^)\s#]+)")
MARKER = re.compile(r"<!-- generated: (\w+) -->")
HELP_WIDTH = "100"  # columns of the usage lines, whatever terminal builds the site


# -- the repository's pictures --------------------------------------------------------------------------
def on_files(files, config):
    from mkdocs.structure.files import File

    docs = Path(config["docs_dir"])
    wanted = {m.group(1) for page in docs.rglob("*.md") for m in REPO_LINK.finditer(page.read_text())}
    for rel in sorted(wanted):
        source = ROOT / rel
        if source.is_file() and ROOT in source.resolve().parents:  # else mkdocs reports the broken link
            files.append(File.generated(config, f"repo/{rel}", abs_src_path=str(source)))
    files.append(File.generated(config, "reference/openapi.json", content=json.dumps(openapi_schema(), indent=1)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


# -- command line -----------------------------------------------------------------------------------
def cli_parser() -> argparse.ArgumentParser:
    """The `vmc-duel` parser; the plugin commands registered by hand where the checkout is not installed
    (no entry points), so the reference is whole either way."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        from vmc_duel.cli import build_parser

        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, module in (("train", "train.cli"), ("export", "export.cli")):
            if name not in sub.choices:
                __import__(module, fromlist=["register"]).register(sub)
        return parser
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: (a.help or "").replace("%%", "%") for a in action._choices_actions}
            return [(name, p, helps.get(name, "")) for name, p in action.choices.items()]
    return []


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        invocation = formatter._format_action_invocation(action)
        default = action.default
        shown = (
            ""
            if default in (None, False, argparse.SUPPRESS) or isinstance(action, argparse._StoreTrueAction)
            else f"`{default}`"
        )
        what = formatter._expand_help(action) if action.help else ""
        rows.append(f"| `{_cell(invocation)}` | {shown.replace('|', chr(92) + '|')} | {_cell(what)} |")
    if not rows:
        return []
    return ["| option | default | what it does |", "|---|---|---|", *rows, ""]


def _command_section(parser: argparse.ArgumentParser, summary: str, level: int) -> list[str]:
    lines = [f"{'#' * level} `{parser.prog}`", ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."), ""]
    if parser.description and parser.description != summary:
        lines += [parser.description, ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    lines += _options_table(parser)
    for _name, child, child_summary in _subcommands(parser):
        lines += _command_section(child, child_summary, min(level + 1, 4))
    return lines


def cli_reference() -> str:
    parser = cli_parser()
    lines = [parser.description or "", "",
             "`vmc-duel` with no command, or with options only (`vmc-duel --seed 7`), runs `vmc-duel tui`.", "",
             "| command | what it does |", "|---|---|"]  # fmt: skip
    commands = _subcommands(parser)
    for name, child, summary in commands:
        anchor = re.sub(r"[^\w-]", "", child.prog.replace(" ", "-")).lower()
        lines.append(f"| [`{name}`](#{anchor}) | {_cell(summary)} |")
    lines.append("")
    for _name, child, summary in commands:
        lines += _command_section(child, summary, 2)
    return "\n".join(lines)


# -- HTTP API ---------------------------------------------------------------------------------------
_schema_cache: dict[str, Any] = {}


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI schema, as /openapi.json serves it when a token is set. make_api reads only the
    knob bounds when it builds the app; the race (runner) is started by the app's lifespan, never here."""
    if not _schema_cache:
        from engine.policy.knobs import load_bounds
        from server.app import make_api

        runner = SimpleNamespace(duel=SimpleNamespace(bounds=load_bounds()))
        _schema_cache.update(make_api(runner, token="documentation").openapi())
    return _schema_cache


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema]
    return f"{kind}" + (f" ({', '.join(bounds)})" if bounds else "")


def openapi_reference() -> str:
    schema = openapi_schema()
    lines = [f"**{schema['info']['title']}**, API version {schema['info']['version']}: {schema['info']['description']}",
             ""]  # fmt: skip
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            lines += [f"## {method.upper()} {path}", ""]
            if op.get("summary"):
                lines += [f"*{op['summary']}*", ""]
            if op.get("description"):
                lines += [op["description"], ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | default | what |", "|---|---|---|---|---|---|"]
                for p in params:
                    s = p.get("schema", {})
                    default = f"`{json.dumps(s['default'])}`" if "default" in s else ""
                    lines.append(f"| `{p['name']}` | {p['in']} | {_type(s)} | {'yes' if p.get('required') else 'no'} | "
                                 f"{default} | {_cell(p.get('description', s.get('description', '')))} |")  # fmt: skip
                lines.append("")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                lines += [f"Request body (JSON): {_type(body)}", ""]
            if op.get("security"):
                lines += ["Needs `Authorization: Bearer TOKEN` when the server has a token.", ""]
            lines += ["| answer | what | body |", "|---|---|---|"]
            for code, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                kinds = [f"{kind}: {_type(c['schema'])}" if c.get("schema") else kind for kind, c in content.items()]
                lines.append(f"| {code} | {_cell(answer.get('description', ''))} | {'; '.join(kinds)} |")
            lines.append("")
    lines += ["## Models", ""]
    for name, model in schema.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        if model.get("description"):
            lines += [_cell(model["description"]), ""]
        props = model.get("properties", {})
        if props:
            required = set(model.get("required", []))
            lines += ["| field | type | required | what |", "|---|---|---|---|"]
            for field, s in props.items():
                lines.append(f"| `{field}` | {_type(s)} | {'yes' if field in required else 'no'} | "
                             f"{_cell(s.get('description', s.get('title', '')))} |")  # fmt: skip
            lines.append("")
        elif model.get("type") or model.get("enum"):
            lines += [f"Type: {_type(model)}", ""]
    return "\n".join(lines)


# -- bounds.yaml ------------------------------------------------------------------------------------
def bounds_reference() -> str:
    import yaml

    path = ROOT / "configs" / "bounds.yaml"
    text = path.read_text()
    raw = yaml.safe_load(text)
    lines = ["## Knobs", "", "| knob | type | min | max | default | step | meaning |", "|---|---|---|---|---|---|---|"]

    def walk(node: dict[str, Any], prefix: str = "") -> None:
        for name, spec in node.items():
            if isinstance(spec, dict) and "type" not in spec:
                walk(spec, f"{prefix}{name}.")
                continue
            lines.append(f"| `{prefix}{name}` | {spec['type']} | {spec['min']} | {spec['max']} | {spec['default']} | "
                         f"{spec['step']} | {_cell(spec.get('meaning', ''))} |")  # fmt: skip

    walk(raw["knobs"])
    comments = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", text, flags=re.M))
    lines += ["", "## Invariants", "", "| invariant | value | what |", "|---|---|---|"]
    for name, value in raw.get("invariants", {}).items():
        lines.append(f"| `{name}` | {value} | {_cell(comments.get(name, ''))} |")
    return "\n".join(lines + [""])


GENERATORS = {"cli": cli_reference, "openapi": openapi_reference, "bounds": bounds_reference}
