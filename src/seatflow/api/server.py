"""Running the API with uvicorn: `seatflow api` and `python -m seatflow.api.server`
(what `seatflow dev up` starts)."""

from __future__ import annotations

import sys

import typer

from seatflow.config import ConfigError, Settings, load_settings


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"SEATFLOW_API_ADDRESS={address!r}: expected host:port, "
                          "e.g. 127.0.0.1:8000")
    return host.strip("[]"), int(port)


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from seatflow.api.app import create_app
    from seatflow.api.auth import parse_tokens
    from seatflow.logging import configure_logging

    tokens = parse_tokens(settings.api_tokens)
    if not tokens:
        raise ConfigError("SEATFLOW_API_TOKENS is empty: every request would be refused; "
                          "configure at least one token (see docs/api.md)")
    configure_logging(settings.log_format)
    app = create_app(settings, tokens)
    print(f"seatflow api: http://{host}:{port} (OpenAPI at /openapi.json, docs at /docs), "
          f"{len(tokens)} token(s)", flush=True)
    # Access log lines carry method, path and status, never headers (no tokens).
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=True,
                server_header=False)


def api_command(
    host: str | None = typer.Option(None, "--host", help="Bind address (default from "
                                    "SEATFLOW_API_ADDRESS, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535,
                                    help="Port (default from SEATFLOW_API_ADDRESS, 8000)."),
) -> None:
    """Serve the HTTP API for host applications (tokens from SEATFLOW_API_TOKENS)."""
    try:
        settings = load_settings()
        default_host, default_port = parse_address(settings.api_address)
        serve(settings, host or default_host, port or default_port)
    except ConfigError as exc:
        typer.echo(f"usage error: {exc}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    try:
        settings = load_settings()
        host, port = parse_address(settings.api_address)
        serve(settings, host, port)
    except ConfigError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
