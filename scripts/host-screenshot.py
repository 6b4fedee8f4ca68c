"""Screenshot of the host page, as docs/img/host-timeline.png was taken.

    seatflow demo --overbook            # a busy evening; prints the host page URL
    .venv/bin/python scripts/host-screenshot.py URL docs/img/host-timeline.png

Signs in with the dev stack's operator token (var/api-tokens.json, or
--token-file), waits for the board, and saves the page (Debian's chromium,
driven by Playwright, as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking"]


async def shoot(url: str, token: str, out: Path, width: int, height: int) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(url)
            await page.locator("#token").fill(token)
            await page.keyboard.press("Enter")
            await page.locator(".board-root").wait_for(timeout=20_000)
            await page.screenshot(path=str(out), full_page=False)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--token-file", type=Path, default=Path("var/api-tokens.json"))
    parser.add_argument("--role", default="operator")
    parser.add_argument("--size", default="1680x1180", help="viewport WIDTHxHEIGHT")
    args = parser.parse_args()
    tokens = json.loads(args.token_file.read_text())
    token = next(t["token"] for t in tokens if t["role"] == args.role)
    width, height = (int(n) for n in args.size.split("x"))
    asyncio.run(shoot(args.url, token, args.out, width, height))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
