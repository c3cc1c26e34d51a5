"""CLI commands for access to the HTTP API: ``keys create|list|revoke|roles`` and
``openapi`` (write or check the committed OpenAPI document).

JSON shapes: ``sloengine.key/v1`` (one key; ``key`` only when it is made),
``sloengine.keys/v1`` ({keys}), ``sloengine.roles/v1`` ({roles, permissions}).
Every key action is an entry in the audit trail. The DuckDB file has one writer: while
``sloengine run`` serves, manage keys over the API (POST/GET/DELETE /api/v1/keys).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.errors import ConfigError
from sloengine.model import ROLES

if TYPE_CHECKING:
    from sloengine.engine import KeyRow

# The engine and the API (FastAPI) are imported in the command bodies: every CLI start imports
# this module to register its commands, and most runs use none of these.

keys_app = typer.Typer(help="API keys of the HTTP API (shown once, stored as salted hashes).",
                       no_args_is_help=True)
DEFAULT_OPENAPI = Path("docs/openapi.json")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command()(openapi)


def _line(row: KeyRow) -> str:
    d = row.public()
    state = ("revoked " + str(d["revoked_at"])) if d["revoked_at"] else (
        f"expires {d['expires_at']}" if d["expires_at"] else "does not expire")
    return f"{d['id']}  {d['role']:<8} {d['name'] or '-':<24} created {d['created_at']}  {state}"


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option("--name", help="Who or what holds it.")] = "",
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Lifetime, e.g. 30d, 12h (default: does not expire).")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an API key with one role and print it ONCE (only its salted hash is kept)."""
    from sloengine.engine import Engine
    from sloengine.spec import parse_duration

    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    lifetime: timedelta | None = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            raise ConfigError(f"--expires: {exc}") from None
        if lifetime <= timedelta(0):
            raise ConfigError("--expires must be positive")
    with Engine(settings_from(config, db=db)) as engine:
        row, key = engine.create_key(role, name, engine.clock() + lifetime if lifetime
                                     else None)
    if as_json:
        print_json({"schema": "sloengine.key/v1", **row.public(), "key": key})
        return
    print(key)
    sys.stderr.write(f"API key {row.key_id} ({role}{', ' + name if name else ''}) — shown "
                     "once; send it as 'Authorization: Bearer <key>'\n")


@keys_app.command("list")
def list_(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every key: id, role, name, dates (never the key or its hash)."""
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        rows = engine.list_keys()
    if as_json:
        print_json({"schema": "sloengine.keys/v1", "keys": [r.public() for r in rows]})
        return
    for r in rows:
        print(_line(r))
    print(f"({len(rows)} key{'s' if len(rows) != 1 else ''})")


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (slo_<id>_...).")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key: from now on it answers 401."""
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        row = engine.revoke_key(key_id)
    if row is None:
        raise ConfigError(f"no API key {key_id!r}")
    if as_json:
        print_json({"schema": "sloengine.key/v1", **row.public()})
    else:
        print(f"revoked {_line(row)}")


@keys_app.command("roles")
def roles(as_json: JsonOpt = False) -> None:
    """The role → permission table."""
    from sloengine.api.access import PERMISSIONS, roles_table

    table = roles_table()
    if as_json:
        print_json({"schema": "sloengine.roles/v1", "roles": list(ROLES),
                    "permissions": {r: sorted(PERMISSIONS[r]) for r in ROLES}})
        return
    print(f"{'permission':<15} " + " ".join(f"{r:<8}" for r in ROLES))
    for row in table:
        print(f"{row['permission']:<15} " + " ".join(
            f"{'yes' if row[r] else '-':<8}" for r in ROLES))


def openapi(
    out: Annotated[Path, typer.Option(help="Where the document goes.")] = DEFAULT_OPENAPI,
    check: Annotated[bool, typer.Option(
        "--check", help="Only compare: exit 1 when the file differs from the code.")] = False,
) -> None:
    """Write the OpenAPI document of /api/v1 (the committed contract), or --check it."""
    from sloengine.api.app import openapi_document

    text = orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if check:
        same = out.exists() and out.read_text("utf-8") == text
        print(f"{out}: {'up to date' if same else 'DIFFERS from the code'}")
        raise typer.Exit(0 if same else 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, "utf-8")
    print(f"wrote {out}")
